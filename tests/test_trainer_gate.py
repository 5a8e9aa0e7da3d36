"""Every ghostframe-train run ends with the evaluation gate; `--budget` plans the steps to fit,
gate included; the server refuses an adapter the gate did not approve unless forced."""

from __future__ import annotations

import argparse
import io
import json
import time
from contextlib import redirect_stderr
from pathlib import Path

import pytest

from ghostframe.server.inference.model_loading import ADAPTER_METADATA
from ghostframe.server.tools import lsp_client
from ghostframe.trainer.cli import build_parser, main
from ghostframe.trainer.evaluation.gate import TOO_FEW
from ghostframe.trainer.training.budget import (
    MEASURED_STEPS,
    MIN_GATE_CASES,
    SLACK,
    GateTiming,
    parse_duration,
    past_deadline,
    plan_budget,
)
from ghostframe.trainer.training.loss import CausalLMLoss
from ghostframe.trainer.training.metrics import read_metrics
from trainer_fixtures import module_model_and_repo, train_args

GATE_CASES = "6"  # a handful of held-out lines keeps the run quick (and gives "too few": no verdict)


tiny, repo = module_model_and_repo(files=24)


@pytest.fixture(scope="module")
def gated(tmp_path_factory, tiny, repo) -> tuple[Path, str]:
    """One real run, gate included; returns its output folder and what it printed."""
    out = tmp_path_factory.mktemp("gated") / "adapter"
    err = io.StringIO()
    with redirect_stderr(err):
        code = main(train_args(repo, tiny, out, 4, "--gate-cases", GATE_CASES, gate=True))
    assert code == 0, err.getvalue()[-3000:]
    return out, err.getvalue()


# --------------------------------------------------------------------------- the gate at the end of a run


def test_a_run_ends_with_the_gate_verdict_in_ghostframe_json_and_a_report(gated):
    out, printed = gated
    gate = json.loads((out / ADAPTER_METADATA).read_text())["gate"]
    assert gate["verdict"] == TOO_FEW  # 6 lines: the run says there are too few for a verdict, and how many
    assert gate["cases"] == int(GATE_CASES) and f"only {GATE_CASES} held-out lines" in gate["reason"]
    assert gate["report"] == "gate/report.md"
    assert (out / "gate" / "report.md").is_file() and (out / "gate" / "results.json").is_file()
    results = json.loads((out / "gate" / "results.json").read_text())
    assert [s["adapter"] for s in results["systems"]] == ["", str(out)]  # base vs. this run's adapter
    assert results["generation"]["max_prompt_tokens"] == 1024  # the server's default maxPromptTokens
    assert "gate: TOO FEW" in printed and "gate/report.md" in printed and "--force-adapter" in printed
    assert (out / "adapter_model.safetensors").is_file()  # kept, though marked


def test_the_gate_prompts_get_the_servers_default_context_and_keep_the_base_answers(gated):
    from ghostframe.trainer.config import TrainConfig
    from ghostframe.trainer.evaluation.train_gate import measure_gate_cost

    out, _ = gated
    results = json.loads((out / "gate" / "results.json").read_text())
    assert results["context"]["mode"] == "all"  # the server adds repository and data context by default
    assert results["context"]["indexed_files"] > 0 and results["context"]["cases_with_snippets"] > 0
    assert "Context: `all`" in (out / "gate" / "report.md").read_text()
    # Training again on the same code evaluates only the new adapter: every base answer is stored.
    timing = measure_gate_cost(TrainConfig.from_json_file(out / "work" / "config.json"))
    assert timing["available_cases"] == int(GATE_CASES) and timing["base_cached_cases"] == int(GATE_CASES)


def test_no_held_out_file_at_all_is_too_few_with_zero_lines(tmp_path, tiny, repo):
    out = tmp_path / "out"
    # With a tiny valid fraction no file of the repo is held out: the gate has nothing to measure.
    assert main(train_args(repo, tiny, out, 2, "--valid-fraction", "0.001", gate=True)) == 0
    gate = json.loads((out / ADAPTER_METADATA).read_text())["gate"]
    assert gate["verdict"] == TOO_FEW and gate["cases"] == 0 and "only 0 held-out lines" in gate["reason"]


def test_no_gate_leaves_the_adapter_unjudged(tmp_path, tiny, repo):
    out = tmp_path / "out"
    assert main(train_args(repo, tiny, out, 2)) == 0  # train_args passes --no-gate
    assert "gate" not in json.loads((out / ADAPTER_METADATA).read_text())
    assert not (out / "gate").exists()


# --------------------------------------------------------------------------- the server and a marked adapter


async def _status(server_args: list[str]) -> tuple[dict, list[str]]:
    """The server's status once its model is ready, and the messages it showed the user."""
    client = lsp_client.EditorClient(verbose=False)
    await client.start(server_args, settings={})
    try:
        await client.wait_ready(timeout=120)
        return dict(client.status), client.messages
    finally:
        await client.close()


@pytest.mark.slow
async def test_the_server_serves_the_base_model_and_says_why_for_a_marked_adapter(gated, tiny):
    out, _ = gated
    args = ["--model", str(tiny), "--adapter", str(out), "--device", "cpu"]
    refused, shown = await _status(args)
    assert refused["state"] == "ready" and refused["adapter"] is None, refused
    assert "--force-adapter" in refused["adapterRefused"] and "'too few'" in refused["adapterRefused"]
    told = [m for m in shown if "without your adapter" in m]
    assert told and "ghostframe.forceAdapter" in told[0] and "clear ghostframe.adapter" in told[0]
    forced, _ = await _status([*args, "--force-adapter"])
    assert forced["state"] == "ready" and forced["adapterRefused"] is None, forced
    assert Path(forced["adapter"]) == out.resolve()


# --------------------------------------------------------------------------- --budget


@pytest.mark.parametrize("text, seconds", [("90s", 90), ("20m", 1200), ("1.5h", 5400), (" 2 min", 120)])
def test_budget_durations(text, seconds):
    assert parse_duration(text) == seconds
    assert build_parser().parse_args(["--budget", text]).budget == seconds


@pytest.mark.parametrize("text", ["20", "20x", "-5m", "0s", "m", ""])
def test_a_bad_budget_is_a_usage_error(text, capsys):
    with pytest.raises(argparse.ArgumentTypeError):
        parse_duration(text)
    with pytest.raises(SystemExit) as stopped:
        build_parser().parse_args([f"--budget={text}"])
    assert stopped.value.code == 2 and "90s, 20m or 1.5h" in capsys.readouterr().err


GATE = GateTiming(available_cases=200, read_seconds=5.0, load_seconds=10.0, case_seconds=0.5)


def test_budget_gives_training_what_is_left_after_the_time_spent_and_the_gate():
    plan = plan_budget(1200, 100, [5.0, 2.0, 2.0, 2.0], eval_seconds=10, eval_every=100, gate=GATE)
    # left: 1200 - 100 spent - 10 final validation = 1090; the gate: 5 + 2 x (10 + 200 x 0.5) = 225;
    # each step 2 s (the first, slower one left out of the mean) + 10 s / 100 steps of validations.
    assert plan.step_seconds == 2.0 and plan.gate_cases == 200 and plan.gate_seconds == 225
    assert plan.max_steps == MEASURED_STEPS + (1090 - 225) // 2.1 == 415
    assert plan.expected_seconds == pytest.approx(1200, abs=2.1)


def test_budget_steps_follow_the_measured_step_time():
    fast = plan_budget(1200, 100, [5.0, 1.0, 1.0, 1.0], 10, 100, GATE)
    slow = plan_budget(1200, 100, [5.0, 4.0, 4.0, 4.0], 10, 100, GATE)
    assert fast.max_steps > 3.5 * (slow.max_steps - MEASURED_STEPS)
    assert slow.expected_seconds <= 1200 and fast.expected_seconds <= 1200


def test_a_costly_gate_evaluates_fewer_lines_but_enough_for_a_verdict():
    costly = GateTiming(200, 5.0, 10.0, case_seconds=5.0)  # 200 lines would take 2025 s
    plan = plan_budget(1200, 100, [2.0] * 4, 10, 100, costly)
    assert MIN_GATE_CASES < plan.gate_cases < 200
    assert plan.gate_seconds <= 0.5 * (1200 - 100 - 10) and plan.max_steps > MEASURED_STEPS
    tight = plan_budget(300, 100, [2.0] * 4, 10, 100, costly)
    assert tight.gate_cases == MIN_GATE_CASES


def test_stored_base_answers_leave_more_of_the_budget_to_training():
    stored = GateTiming(200, 5.0, 10.0, 0.5, base_cached_cases=200)
    plan = plan_budget(1200, 100, [5.0, 2.0, 2.0, 2.0], 10, 100, stored)
    assert plan.gate_seconds == 5 + 2 * 10 + 200 * 0.5  # only the adapter answers; both models still load
    assert plan.max_steps > plan_budget(1200, 100, [5.0, 2.0, 2.0, 2.0], 10, 100, GATE).max_steps
    assert plan.gate_base_cached == 200 and "200 base answers stored" in plan.describe()
    half = GateTiming(200, 5.0, 10.0, 0.5, base_cached_cases=100)
    assert half.seconds(200) == 5 + 2 * 10 + 200 * 1.5 * 0.5


def test_a_budget_already_spent_keeps_the_measured_steps_and_says_so():
    plan = plan_budget(60, 100, [2.0] * 4, 10, 100, GATE)
    assert plan.max_steps == MEASURED_STEPS and "over budget" in plan.describe()


def test_without_a_gate_training_gets_it_all():
    plan = plan_budget(1200, 100, [2.0] * 4, 10, 0, None)
    assert plan.gate_seconds == 0 and plan.max_steps == MEASURED_STEPS + (1200 - 110) // 2


def test_budget_and_max_steps_together_are_refused(tmp_path, tiny, repo, capsys):
    assert main(train_args(repo, tiny, tmp_path / "out", 4, "--budget", "1m")) == 1
    assert "--budget or --max-steps" in capsys.readouterr().err


@pytest.mark.slow
def test_a_budget_run_measures_plans_and_ends_with_the_gate(tmp_path, tiny, repo, capsys):
    out = tmp_path / "out"
    assert main(train_args(repo, tiny, out, None, "--budget", "2m", "--gate-cases", GATE_CASES, gate=True)) == 0
    printed = capsys.readouterr().err
    meta = json.loads((out / ADAPTER_METADATA).read_text())
    plan = meta["budget"]
    assert plan["budget_seconds"] == 120 and plan["measured_steps"] == MEASURED_STEPS
    assert plan["step_seconds"] > 0
    # What was spent before planning includes the step-0 validation and the measured steps.
    assert plan["spent_seconds"] >= plan["eval_seconds"] + (MEASURED_STEPS - 1) * plan["step_seconds"] - 0.05
    assert plan["gate_cases"] == int(GATE_CASES) and plan["gate_seconds"] > 0 and plan["gate_seconds_actual"] > 0
    assert plan["max_steps"] >= MEASURED_STEPS
    assert meta["resolved"]["max_steps"] == plan["max_steps"]
    assert meta["gate"]["verdict"] == TOO_FEW
    assert f"so {plan['max_steps']} steps" in printed and "gate: TOO FEW" in printed
    last = [r for r in read_metrics(out / "metrics.jsonl") if r["split"] == "train"][-1]
    if "ended_early_at_step" in plan:  # a loaded machine: the steps got slower than measured
        assert meta["metrics"]["steps"] == last["step"] == plan["ended_early_at_step"] < plan["max_steps"]
    else:  # the schedule was built for the planned count: the cosine reaches zero exactly at its last step
        assert meta["metrics"]["steps"] == last["step"] == plan["max_steps"]
        assert last["lr"] == pytest.approx(0.0, abs=1e-12)


def test_a_run_behind_its_plan_is_late_only_when_the_rest_no_longer_fits():
    plan = plan_budget(1200, 100, [5.0, 2.0, 2.0, 2.0], eval_seconds=10, eval_every=100, gate=GATE)
    on_time = [2.0] * 5
    assert not past_deadline(plan, 100, on_time)
    # At the planned speed, the last planned step still fits, and the one after it would not.
    training_end = plan.expected_seconds - plan.eval_seconds - plan.gate_seconds
    assert not past_deadline(plan, training_end - 2.0, on_time)
    assert past_deadline(plan, 1200 * SLACK - plan.eval_seconds - plan.gate_seconds, on_time)
    # Three times slower: validation and gate will be too, so training must end much earlier.
    slow = [6.0] * 5
    cut = 1200 * SLACK - 6.0 - 3 * (plan.eval_seconds + plan.gate_seconds)
    assert past_deadline(plan, cut + 1, slow) and not past_deadline(plan, cut - 1, slow)
    assert not past_deadline(plan, 0, [])
    # A validation after the next step counts too.
    assert past_deadline(plan, cut - 1, slow, validates=True)


@pytest.mark.slow
def test_a_budget_run_that_gets_slower_ends_training_early_and_still_ends_with_the_gate(tmp_path, tiny, repo,
                                                                                        monkeypatch, capsys):
    """After planning, every forward pass "takes" 20 s more (a clock that jumps, so the test does
    not depend on how loaded the machine running it is)."""
    out = tmp_path / "out"
    real_forward, real_clock = CausalLMLoss.forward, time.perf_counter
    jumped = [0.0]

    def slower_once_planned(self, *args, **kwargs):
        if (out / "work" / "budget.json").is_file():
            jumped[0] += 20.0  # another job took the CPU after the steps were timed
        return real_forward(self, *args, **kwargs)

    monkeypatch.setattr(CausalLMLoss, "forward", slower_once_planned)
    monkeypatch.setattr(time, "perf_counter", lambda: real_clock() + jumped[0])
    assert main(train_args(repo, tiny, out, None, "--budget", "20m", "--gate-cases", GATE_CASES, gate=True)) == 0
    printed = capsys.readouterr().err
    meta = json.loads((out / ADAPTER_METADATA).read_text())
    plan = meta["budget"]
    assert plan["max_steps"] > MEASURED_STEPS + 100, plan  # planned at the real speed
    assert MEASURED_STEPS <= plan["ended_early_at_step"] < MEASURED_STEPS + 60
    assert meta["metrics"]["steps"] == plan["ended_early_at_step"]
    assert meta["gate"]["verdict"] == TOO_FEW  # the gate still ran
    assert plan["total_seconds_actual"] <= plan["budget_seconds"] * SLACK + 20
    assert "training ends here" in printed and "the run took" in printed


@pytest.mark.slow
def test_a_run_on_a_json_lines_data_set_ends_with_the_gate_on_its_held_out_records(tmp_path, tiny, repo, capsys):
    """The course's recipe: a codeparrot-shaped data set (repo_name, path, content), filtered,
    scrubbed, deduplicated and split like folders, ends with the same gate on its held-out records."""
    from ghostframe.trainer.data.split import VALID, split_of

    records = tmp_path / "corpus.jsonl"
    with records.open("w") as sink:
        for path in sorted(repo.rglob("*.py")):
            sink.write(json.dumps({"repo_name": "someone/analysis", "path": path.relative_to(repo).as_posix(),
                                   "content": path.read_text()}) + "\n")
        sink.write(json.dumps({"repo_name": "someone/tools", "path": "cli.py", "content": "import os\n"}) + "\n")
    out = tmp_path / "out"
    args = train_args(repo, tiny, out, 4, "--gate-cases", GATE_CASES, gate=True)
    args[args.index(str(repo))] = "--dataset"
    args.insert(args.index("--dataset") + 1, str(records))
    assert main(args) == 0
    printed = capsys.readouterr().err
    meta = json.loads((out / ADAPTER_METADATA).read_text())
    assert meta["config"]["datasets"][0]["name_or_path"] == str(records) and meta["config"]["sources"] == []
    kept = (out / "work" / "data" / "train.jsonl").read_text() + (out / "work" / "data" / "valid.jsonl").read_text()
    assert "someone/analysis/" in kept and "someone/tools/cli.py" not in kept  # the filter ran on the records
    results = json.loads((out / "gate" / "results.json").read_text())
    held_out = {c["file"] for c in results["cases"]}
    assert held_out and all(split_of(f) == VALID for f in held_out)
    assert all(f.startswith("someone/analysis/") for f in held_out)
    assert meta["gate"]["verdict"] == TOO_FEW and "gate: TOO FEW" in printed
