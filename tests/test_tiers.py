"""`auto` serves the pinned model expected to save the most typing here, from measured rates and curves.

Rates and quality curves are injected, so the choice is tested without depending on this machine.
"""

from __future__ import annotations

import pytest

from conftest import TINY_GGUF, TINY_MODEL
from ghostframe.server.inference import llama_loading, model_loading, tiers, typing_value
from ghostframe.server.inference.default_model import PINNED_MODELS
from ghostframe.server.inference.model_loading import load_model
from ghostframe.server.inference.tiers import CANDIDATES, Rates, TierChoice, choose_tier, pick, value_of
from ghostframe.server.inference.typing_value import exact_at, timely_share, window_when_typing

# The 2-core AVX-512 CPU's measured rates (BENCHMARKS.md, "Which model each machine serves").
TWO_CORES = {"smollm2-135m": Rates(3.1, 10.1), "qwen2.5-coder-0.5b": Rates(6.0, 21.7),
             "qwen2.5-coder-1.5b": Rates(13.1, 36.7)}
FAST = Rates(prefill_ms_per_token=0.5, decode_ms_per_token=5.0)    # a fast CPU: every model answers in time
SLOW = Rates(prefill_ms_per_token=15.0, decode_ms_per_token=90.0)  # a model too slow for a person here


def rates(table: dict[str, Rates]):
    timed = []

    def measure(model: str, report=lambda _: None) -> Rates:
        timed.append(model)
        return table[model]

    return measure, timed


def test_a_later_answer_saves_less_and_a_longer_window_is_right_more_often():
    shares = [timely_share(ms) for ms in (100, 400, 800, 1200, 2000)]
    assert shares == sorted(shares, reverse=True) and shares[0] > 0.9 and shares[-1] < 0.05
    assert exact_at("smollm2-135m", 128) < exact_at("smollm2-135m", 300) < exact_at("smollm2-135m", 1024)
    assert exact_at("smollm2-135m", 64) == exact_at("smollm2-135m", 128)      # flat beyond the measured points
    assert window_when_typing(1.0) == typing_value.FULL_WINDOW and window_when_typing(20.0) < 200


def test_on_the_two_core_cpu_the_smallest_model_saves_the_most_and_nothing_larger_is_fetched():
    measure, timed = rates(TWO_CORES)
    model, _, why = pick(measure)
    assert model == "smollm2-135m" and timed == ["smollm2-135m"] and "not timed" in why


def test_where_every_model_answers_in_time_the_most_exact_one_wins():
    measure, timed = rates(dict.fromkeys(CANDIDATES, FAST))
    model, measured, why = pick(measure)
    assert model == "qwen2.5-coder-1.5b" and timed == list(CANDIDATES) and "smollm2-135m ~" in why


def test_a_model_a_person_would_not_wait_for_is_not_served_however_exact():
    measure, _ = rates({"smollm2-135m": FAST, "qwen2.5-coder-0.5b": FAST, "qwen2.5-coder-1.5b": SLOW})
    model, _, why = pick(measure)
    assert not SLOW.tolerable() and model == "qwen2.5-coder-0.5b" and "(too slow)" in why


def test_a_slow_machine_gets_the_smallest_and_downloads_nothing_larger():
    measure, timed = rates({"smollm2-135m": SLOW})
    model, _, why = pick(measure)
    assert model == "smollm2-135m" and timed == ["smollm2-135m"] and "none answers" in why


def test_the_curves_decide_between_models_of_the_same_speed(monkeypatch):
    """With equal rates, the model whose measured curve is higher wins; swap the curves and the choice follows."""
    flat = lambda e: ((128, e), (1024, e))  # noqa: E731
    monkeypatch.setattr(typing_value, "QUALITY", {"smollm2-135m": flat(40.0), "qwen2.5-coder-0.5b": flat(20.0),
                                                  "qwen2.5-coder-1.5b": flat(10.0)})
    monkeypatch.setattr(tiers, "LARGER_FASTER_THAN_SIZE", 1000.0)  # guess every larger one as fast: time them all
    measure, _ = rates(dict.fromkeys(CANDIDATES, FAST))
    assert pick(measure)[0] == "smollm2-135m"
    monkeypatch.setattr(typing_value, "QUALITY", {"smollm2-135m": flat(10.0), "qwen2.5-coder-0.5b": flat(40.0),
                                                  "qwen2.5-coder-1.5b": flat(20.0)})
    assert pick(measure)[0] == "qwen2.5-coder-0.5b"


def test_the_choice_is_cached_per_machine_and_a_busy_measurement_is_not(monkeypatch, tmp_path):
    monkeypatch.setenv("GHOSTFRAME_CACHE_DIR", str(tmp_path))
    measure, timed = rates(dict.fromkeys(CANDIDATES, FAST))
    monkeypatch.setattr(tiers, "busy", lambda: 9.0)
    busy = choose_tier(measure=measure, threads=2)
    assert busy.model == "qwen2.5-coder-1.5b" and "busy" in busy.how and not tiers.RATES.path.exists()
    monkeypatch.setattr(tiers, "busy", lambda: None)
    first = choose_tier(measure=measure, threads=2)
    assert first.how == "measured" and tiers.RATES.path.is_file()
    timed.clear()
    again = choose_tier(measure=measure, threads=2)
    assert again.how == "cached" and timed == [] and again.model == first.model and again.rates == first.rates
    monkeypatch.setattr(tiers, "cpu_name", lambda: "another CPU")  # a new machine (or a new CPU) measures again
    assert choose_tier(measure=measure, threads=2).how == "measured" and timed


def test_the_description_says_what_the_model_is_expected_to_save_and_why():
    rates_here = TWO_CORES["smollm2-135m"]
    choice = TierChoice("smollm2-135m", "measured", {"smollm2-135m": rates_here}, "saves the most typing here")
    text = choice.describe()
    expected = value_of("smollm2-135m", rates_here)
    assert text.startswith(f"smollm2-135m (measured: expected to write ~{expected.saved_pct:.0f} % of characters")
    assert "saves the most typing here" in text and "prefill 3.1 ms/token" in text and "decode 10.1 ms/token" in text
    assert choice.expected == expected and 0 < expected.saved_pct < 100


@pytest.mark.parametrize("constant, value", [("TOLERABLE_P50_MS", 250.0), ("TOLERABLE_P95_MS", 600.0)])
def test_a_retuned_limit_changes_the_choice_from_the_cached_rates(monkeypatch, tmp_path, constant, value):
    """The cache keeps what was measured, not what was decided: a change to what the choice depends on
    takes effect at once, without timing any model again."""
    monkeypatch.setenv("GHOSTFRAME_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(tiers, "busy", lambda: None)
    nearly = Rates(prefill_ms_per_token=2.0, decode_ms_per_token=12.0)  # p50 ~320 / p95 ~740 ms
    measure, timed = rates({"smollm2-135m": FAST, "qwen2.5-coder-0.5b": nearly, "qwen2.5-coder-1.5b": SLOW})
    monkeypatch.setattr(tiers, "LARGER_FASTER_THAN_SIZE", 1000.0)
    assert choose_tier(measure=measure, threads=2).model == "qwen2.5-coder-0.5b"
    timed.clear()
    monkeypatch.setattr(tiers, constant, value)
    retuned = choose_tier(measure=measure, threads=2)
    assert retuned.model == "smollm2-135m" and timed == [] and retuned.how == "cached"
    assert "qwen2.5-coder-0.5b ~" in retuned.reason and "(too slow)" in retuned.reason


def test_both_engines_resolve_auto_once_and_keep_how_it_was_chosen(monkeypatch):
    """`auto` is asked of tiers.auto_model once per load, and the TierChoice reaches the LoadedModel
    whichever engine runs it (the torch loader used to drop it). The pinned files are swapped for the
    tests' tiny models so nothing is fetched."""
    choice = TierChoice("smollm2-135m", "cached", {"smollm2-135m": FAST}, "saves the most typing here")
    asked = []
    monkeypatch.setattr(model_loading, "auto_model",
                        lambda device, report: asked.append(device) or (PINNED_MODELS[choice.model], choice))
    monkeypatch.setattr(model_loading, "resolve_model_path", lambda model, report, device: (str(TINY_MODEL), model))
    monkeypatch.setattr(llama_loading, "gguf_file", lambda model, report: (TINY_GGUF, model))
    on_torch = load_model(None, device="cpu", engine="torch")
    assert on_torch.tier is choice and on_torch.model_name == "smollm2-135m"
    on_llama = load_model("auto", device="cpu", engine="llama")
    try:
        assert on_llama.tier is choice and on_llama.model_name == "smollm2-135m" and on_llama.engine == "llama.cpp"
    finally:
        on_llama.model.close()
    assert asked == ["cpu", "cpu"]
    assert load_model(str(TINY_MODEL), device="cpu", engine="torch").tier is None and asked == ["cpu", "cpu"]


def test_a_larger_model_is_still_weighed_when_the_one_between_cannot_win(monkeypatch):
    """The middle model, guessed from the smallest, cannot save more; the largest, guessed from the same
    rates, can: it is timed and served, and the middle one is never fetched."""
    flat = lambda e: ((128, e), (1024, e))  # noqa: E731
    monkeypatch.setattr(typing_value, "QUALITY", {"smollm2-135m": flat(20.0), "qwen2.5-coder-0.5b": flat(20.0),
                                                  "qwen2.5-coder-1.5b": flat(60.0)})
    measure, timed = rates({"smollm2-135m": FAST, "qwen2.5-coder-1.5b": FAST})
    model, _, why = pick(measure)
    assert model == "qwen2.5-coder-1.5b" and timed == ["smollm2-135m", "qwen2.5-coder-1.5b"]
    assert "qwen2.5-coder-0.5b not timed" in why
