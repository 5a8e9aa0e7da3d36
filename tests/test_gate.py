"""The evaluation gate's verdicts and noise margin, on per-case scores."""

from __future__ import annotations

import numpy as np

from ghostframe.trainer.evaluation.gate import MIN_CASES, NO_BETTER, TOO_FEW, USE_IT, WORSE, judge, paired_bootstrap


def _predictions(exact, edit):
    return [{"id": f"c{i}", "exact": bool(e), "edit_sim": s} for i, (e, s) in enumerate(zip(exact, edit))]


def _system(rng, n, p_exact, edit_mean):
    exact = rng.random(n) < p_exact
    edit = np.clip(np.where(exact, 100, rng.normal(edit_mean, 15, n)), 0, 100)
    return exact, edit


def test_an_adapter_that_memorised_the_held_out_lines_wins():
    rng = np.random.default_rng(1)
    base = _predictions(*_system(rng, 200, 0.10, 30))
    memorised = _predictions([True] * 200, [100.0] * 200)
    assert judge(base, memorised).verdict == USE_IT


def test_a_random_adapter_loses():
    rng = np.random.default_rng(2)
    base = _predictions(*_system(rng, 200, 0.10, 30))
    noise = _predictions([False] * 200, rng.uniform(0, 10, 200))
    gate = judge(base, noise)
    assert gate.verdict == WORSE and gate.exact_match.high < 0 and gate.edit_similarity.high < 0


def test_the_same_model_twice_is_no_better_and_its_interval_holds_zero():
    rng = np.random.default_rng(3)
    base = _predictions(*_system(rng, 200, 0.10, 30))
    gate = judge(base, [dict(p) for p in base])
    assert gate.verdict == NO_BETTER
    assert gate.exact_match.low == gate.exact_match.high == 0


def test_a_small_gain_is_within_the_noise_but_the_same_gain_on_many_cases_is_not():
    """The noise margin shrinks with the number of cases, as a paired bootstrap should."""
    def case_pair(n, seed):
        rng = np.random.default_rng(seed)
        exact_base = rng.random(n) < 0.10
        flips = rng.random(n) < 0.05  # the adapter gets 5 % more lines exactly right
        exact_adapter = exact_base | flips
        edit_base = np.where(exact_base, 100.0, 30.0)
        return (_predictions(exact_base, edit_base),
                _predictions(exact_adapter, np.where(exact_adapter, 100.0, 30.0)))

    assert judge(*case_pair(40, 4)).verdict == NO_BETTER
    assert judge(*case_pair(4000, 4)).verdict == USE_IT


def test_too_few_held_out_lines_give_no_verdict_and_say_how_many():
    base = _predictions([False] * (MIN_CASES - 1), [10.0] * (MIN_CASES - 1))
    gate = judge(base, _predictions([True] * (MIN_CASES - 1), [100.0] * (MIN_CASES - 1)))
    assert gate.verdict == TOO_FEW and str(MIN_CASES - 1) in gate.reason


def test_bootstrap_interval_covers_the_mean_and_is_reproducible():
    rng = np.random.default_rng(5)
    base, adapter = rng.normal(30, 10, 300), rng.normal(33, 10, 300)
    gain = paired_bootstrap(base, adapter, seed=7)
    assert gain.low < gain.mean < gain.high
    assert paired_bootstrap(base, adapter, seed=7) == gain


def test_the_gate_cost_is_timed_on_cases_spread_over_prompt_sizes():
    from ghostframe.trainer.evaluation.cases import Case
    from ghostframe.trainer.evaluation.train_gate import timing_sample

    # Samples start with short prompts (lines near the top of their files); timing those alone
    # made a 30-minute budget take 35.
    cases = [Case("f.py", i, "", "x", "a = 1\n" * i, "") for i in range(100)]
    picked = timing_sample(cases, 4)
    assert [c.line for c in picked] == [12, 37, 62, 87]
    assert abs(sum(len(c.before) for c in picked) / 4 - sum(len(c.before) for c in cases) / 100) < 10
    snippets = Case("g.py", 0, "", "x", "", "", snippets=("b = 2\n" * 500,))
    assert timing_sample(cases[:3] + [snippets], 1) == [cases[2]] and timing_sample([snippets], 4) == [snippets]
