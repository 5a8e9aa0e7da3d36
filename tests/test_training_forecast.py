"""What a run's steps buy (tokens, epochs) and the forecast of its gate, said before training:
likely where the planned epochs reach the measured curve's passing point, unlikely with the ways
out where not, no verdict for a model without a curve; the numbers come from BENCHMARKS.md."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from ghostframe.server.inference.default_model import PINNED_MODELS, cache_dir
from ghostframe.server.inference.model_loading import ADAPTER_METADATA
from ghostframe.trainer.cli import build_parser, config_from_args
from ghostframe.trainer.training import forecast as forecasting
from ghostframe.trainer.training.budget import (
    MEASURED_STEPS,
    GateTiming,
    RunSize,
    budget_option,
    parse_duration,
    plan_budget,
)
from ghostframe.trainer.training.forecast import (
    CPU_RECIPE,
    LIKELY,
    MEASURED,
    NO_CURVE,
    NO_GATE,
    REACHED,
    UNLIKELY,
    Curve,
    Point,
    forecast,
)
from ghostframe.trainer.training.metrics import read_metrics
from test_readme import github_anchor
from trainer_fixtures import module_model_and_repo, train_args

ROOT = Path(__file__).resolve().parents[1]
SMOLLM2 = next(c for c in MEASURED if c.model == "smollm2-135m" and c.gate_context == "all")
SMOLLM2_PARAMETERS = SMOLLM2.parameters
PASSING = SMOLLM2.passing()
TRAIN_TOKENS = 277 * 1024
GATE = GateTiming(available_cases=200, read_seconds=20.0, load_seconds=5.0, case_seconds=1.0)
# A made-up curve of a larger model that passed later (the tests' own numbers, not a measurement).
BIG = Curve("qwen2.5-coder-1.5b", "big0000000000000", 1_543_714_304, "all", CPU_RECIPE, "test data", "TEST",
            (Point(0.8, 200, 6.0, 2.0, 10.0, passed=True),))

tiny, repo = module_model_and_repo(files=16)


def smollm2_plan(budget_seconds: float, step_seconds: float = 9.4):
    """A --budget plan for SmolLM2 on imbalanced-learn-sized data: one 1,024-token block per step."""
    return plan_budget(budget_seconds, 80.0, [12.0] + [step_seconds] * (MEASURED_STEPS - 1), 60.0, 100, GATE,
                       tokens_per_step=1024, train_tokens=TRAIN_TOKENS)


def smollm2_forecast(size: RunSize, plan=None, gate_context: str = "all", recipe: dict = CPU_RECIPE,
                     device: str = "cpu", curves=None):
    return forecast(size, SMOLLM2.fingerprint, "SmolLM2-135M-Instruct", SMOLLM2_PARAMETERS, gate_context, recipe,
                    device, plan, curves)


# --------------------------------------------------------------------------- what the steps buy


def test_a_plan_says_the_tokens_and_epochs_its_steps_buy():
    plan = plan_budget(1200, 100, [5.0, 2.0, 2.0, 2.0], 10, 100, GATE, tokens_per_step=4 * 2 * 512,
                       train_tokens=100_000)
    assert plan.size.steps == plan.max_steps
    assert plan.size.tokens == plan.max_steps * 4096
    assert plan.size.epochs == pytest.approx(plan.max_steps * 4096 / 100_000)
    described = plan.describe()
    assert f"so {plan.max_steps} steps ({plan.max_steps * 4096:,} tokens, {plan.size.epochs:.2f} epochs of the " \
           "100,000 train tokens)" in described
    assert plan.to_dict()["tokens_per_step"] == 4096 and plan.to_dict()["train_tokens"] == 100_000


def test_steps_for_epochs_is_the_fewest_steps_that_reach_them():
    size = RunSize(1, tokens_per_step=1024, train_tokens=TRAIN_TOKENS)
    steps = size.steps_for(0.40)
    assert replace(size, steps=steps).epochs >= 0.40 > replace(size, steps=steps - 1).epochs
    assert size.steps_for(1.0) == 277


def test_a_plan_made_before_tokens_were_kept_still_loads_and_says_no_tokens():
    old = {k: v for k, v in smollm2_plan(1800).to_dict().items()
           if k not in ("tokens_per_step", "train_tokens", "eval_every", "gate_all_seconds")}
    from ghostframe.trainer.training.budget import BudgetPlan

    plan = BudgetPlan(**old)  # a resumed run reads the budget.json it wrote
    assert plan.size.epochs == 0 and "epochs" not in plan.describe()


@pytest.mark.parametrize("seconds, option", [(60, "1m"), (61, "2m"), (1640, "28m"), (89 * 60, "89m"),
                                             (5400, "1.5h"), (16392, "4.6h")])
def test_a_budget_option_rounds_up_to_what_a_person_types(seconds, option):
    assert budget_option(seconds) == option
    assert parse_duration(option) >= seconds


def test_the_longer_budget_named_plans_the_steps_it_promises():
    short = smollm2_plan(600)
    needed = short.size.steps_for(PASSING.epochs)
    assert short.max_steps < needed
    longer = smollm2_plan(parse_duration(budget_option(short.seconds_for(needed))))
    assert longer.max_steps >= needed
    assert smollm2_plan(short.seconds_for(needed) - 2 * short.step_seconds).max_steps < needed  # and is not loose


# --------------------------------------------------------------------------- the forecast


def test_likely_when_the_planned_epochs_reach_the_passing_point():
    plan = smollm2_plan(1800)
    assert plan.size.epochs >= PASSING.epochs
    said = smollm2_forecast(plan.size, plan)
    assert said.verdict == LIKELY and said.reference == PASSING
    assert said.text.startswith("forecast: LIKELY to pass the gate")
    assert ("+4.5 exact-match points (95 % +1.5 … +8.0; 200 held-out lines, gate on torch) at 0.40 epochs"
            in said.text)
    assert f"this budget buys {plan.size.epochs:.2f} epochs" in said.text
    assert SMOLLM2.source in said.text and "Instead" not in said.text


@pytest.mark.parametrize("share, verdict", [(1.0, LIKELY), (REACHED + 0.01, LIKELY), (REACHED - 0.05, UNLIKELY),
                                            (0.6, UNLIKELY), (0.25, UNLIKELY)])
def test_the_verdict_turns_at_the_passing_point(share, verdict):
    steps = int(share * PASSING.epochs * TRAIN_TOKENS / 1024)
    assert smollm2_forecast(RunSize(steps, 1024, TRAIN_TOKENS)).verdict == verdict


def test_unlikely_names_a_longer_budget_a_smaller_model_and_a_gpu():
    """A larger model whose curve passed later than this budget reaches."""
    big = BIG
    plan = plan_budget(1800, 300, [120.0, 100.0, 100.0, 100.0], 600, 100, GateTiming(200, 20, 60, 14),
                       tokens_per_step=1024, train_tokens=239 * 1024)
    said = forecast(plan.size, big.fingerprint, "Qwen2.5-Coder-1.5B-Instruct", big.parameters, "all", CPU_RECIPE,
                    "cpu", plan, (big, SMOLLM2))
    assert said.verdict == UNLIKELY
    steps = plan.size.steps_for(0.8)
    assert said.instead["steps"] == steps and said.instead["budget"] == budget_option(plan.seconds_for(steps))
    assert f"--budget {said.instead['budget']} (about {steps} steps at the measured 100.00 s per step" in said.text
    assert said.instead["smaller_model"] == "smollm2-135m" and "--model smollm2-135m" in said.text
    # Its steps cost what the measured CPU training rates say, not what the parameter counts would.
    rates = forecasting.CPU_TOKENS_PER_SECOND
    ratio = rates["qwen2.5-coder-1.5b"] / rates["smollm2-135m"]
    assert said.instead["smaller_model_train_seconds"] == pytest.approx(
        plan.size.steps_for(PASSING.epochs) * 100.0 * ratio, abs=0.1)
    assert f"cost about 1/{1 / ratio:.1f} of this model's (by their measured training rates on a CPU" in said.text
    assert "a CUDA GPU" in said.text and said.instead["gpu_tokens_per_second"] is None  # none measured for it
    # The same run on a GPU is not told to get one.
    on_gpu = forecast(plan.size, big.fingerprint, "Qwen2.5-Coder-1.5B-Instruct", big.parameters, "all", CPU_RECIPE,
                      "cuda", plan, (big, SMOLLM2))
    assert "CUDA GPU" not in on_gpu.text and "gpu_tokens_per_second" not in on_gpu.instead


def test_a_model_without_a_measured_training_rate_scales_by_parameter_count():
    """A local model (not pinned) has no measured rate: its smaller model's step cost is by parameters, said so."""
    plan = plan_budget(1800, 300, [120.0, 100.0, 100.0, 100.0], 600, 100, GateTiming(200, 20, 60, 14),
                       tokens_per_step=1024, train_tokens=239 * 1024)
    said = forecast(plan.size, BIG.fingerprint, "my-local-model", BIG.parameters, "all", CPU_RECIPE, "cpu", plan,
                    (BIG, SMOLLM2))
    ratio = SMOLLM2.parameters / BIG.parameters
    assert said.instead["smaller_model_train_seconds"] == pytest.approx(
        plan.size.steps_for(PASSING.epochs) * 100.0 * ratio, abs=0.1)
    assert "by parameter count; no training rate was measured for this model" in said.text


def test_every_pinned_model_has_a_measured_cpu_training_rate_in_benchmarks():
    section = benchmarks_section(forecasting.CPU_SOURCE.split("#")[1])
    assert set(forecasting.CPU_TOKENS_PER_SECOND) == set(PINNED_MODELS)
    for name, rate in forecasting.CPU_TOKENS_PER_SECOND.items():
        assert f"| {PINNED_MODELS[name].display_name.removesuffix('-Instruct')} | {rate:g} |" in section, name


def test_unlikely_without_a_budget_counts_more_steps_and_the_measured_gpu_rate():
    said = smollm2_forecast(RunSize(50, 1024, TRAIN_TOKENS))
    steps = RunSize(50, 1024, TRAIN_TOKENS).steps_for(PASSING.epochs)
    assert said.verdict == UNLIKELY and f"--max-steps {steps} (0.40 epochs)" in said.text
    assert said.instead["gpu_tokens_per_second"] == forecasting.GPU_TOKENS_PER_SECOND["smollm2-135m"]
    assert said.instead["gpu_train_seconds"] == pytest.approx(steps * 1024 / 85_276, abs=0.1)
    assert "no smaller model has a measured curve" in said.text
    # A larger model's curve is never offered as the smaller one.
    assert "no smaller model has a measured curve" in smollm2_forecast(RunSize(50, 1024, TRAIN_TOKENS),
                                                                       curves=(SMOLLM2, BIG)).text


def test_a_model_without_a_curve_gets_no_verdict_only_the_measured_one_for_scale():
    qwen = PINNED_MODELS["qwen2.5-coder-1.5b"]
    said = forecast(RunSize(4, 1024, 239 * 1024), "4dad3c321d70e731", qwen.display_name, 1_543_714_304, "all",
                    CPU_RECIPE)
    assert said.verdict == NO_CURVE and said.curve is None
    assert said.text.startswith(f"forecast: none; no curve was measured for {qwen.display_name}, so none is guessed")
    assert "LIKELY" not in said.text
    # For scale, the passing curve of the model nearest in size, which is also the smaller model offered.
    assert "Qwen2.5-Coder-0.5B-Instruct's measured recipe passed at 0.14 epochs" in said.text
    assert "--model qwen2.5-coder-0.5b" in said.text
    enough = forecast(RunSize(200, 1024, 239 * 1024), "4dad3c321d70e731", qwen.display_name, 1_543_714_304, "all",
                      CPU_RECIPE)
    assert enough.verdict == NO_CURVE and enough.instead == {} and "To give it" not in enough.text


def test_a_gate_context_nothing_was_measured_with_gets_no_verdict():
    said = smollm2_forecast(RunSize(500, 1024, TRAIN_TOKENS), gate_context="data")
    assert said.verdict == NO_CURVE and "nor for any other model, so none is guessed" in said.text


def test_a_curve_that_never_passed_is_unlikely_whatever_the_epochs():
    said = smollm2_forecast(RunSize(10 * 277, 1024, TRAIN_TOKENS), gate_context="none")
    assert said.verdict == UNLIKELY and "gated without context, never passed" in said.text
    assert "up to 0.56 epochs measured" in said.text and "Gated with all context, the same model passed" in said.text


def test_no_gate_no_forecast():
    said = smollm2_forecast(RunSize(10, 1024, TRAIN_TOKENS), gate_context=None)
    assert said.verdict == NO_GATE and "--no-gate" in said.text


def test_a_gate_cut_to_fewer_lines_than_the_curves_is_said():
    plan = smollm2_plan(1800)
    assert plan.gate_cases == 200 and "noise margin" not in smollm2_forecast(plan.size, plan).text
    cut = replace(plan, gate_cases=50)
    assert "the gate will evaluate 50 held-out lines, the curve's 200: its noise margin is about 2.0x wider" \
        in smollm2_forecast(cut.size, cut).text


def test_the_noise_note_compares_with_the_lines_of_the_point_judged_against():
    """The 0.5B passed on a gate of 63 lines: a run whose gate has 63 is not told its margin is wider."""
    qwen = next(c for c in MEASURED if c.model == "qwen2.5-coder-0.5b" and c.gate_context == "all")
    point = qwen.passing()
    plan = plan_budget(1800, 300, [25.0, 21.0, 21.0, 21.0], 60, 100, GateTiming(200, 20, 10, 5.5),
                       tokens_per_step=1024, train_tokens=230 * 1024)
    assert plan.size.epochs >= REACHED * point.epochs
    for lines, noted in ((point.lines, False), (point.lines // 2, True)):
        said = forecast(plan.size, qwen.fingerprint, qwen.display_name, qwen.parameters, "all", CPU_RECIPE, "cpu",
                        replace(plan, gate_cases=lines))
        assert said.verdict == LIKELY and said.reference == point
        assert ("noise margin" in said.text) == noted


def test_a_different_recipe_and_epochs_beyond_the_measured_are_said():
    gpu_recipe = {**CPU_RECIPE, "batch_size": 8, "learning_rate": 1e-3}
    said = smollm2_forecast(RunSize(277, 8192, TRAIN_TOKENS), recipe=gpu_recipe, device="cuda")
    assert said.verdict == LIKELY
    assert "--batch-size 8 (the curve: 1)" in said.text and "--lr 0.001 (the curve: 0.0004)" in said.text
    assert "whether more still helps was not measured" in said.text
    assert "not the curve's" not in smollm2_forecast(RunSize(277, 1024, TRAIN_TOKENS)).text


def test_the_record_has_the_numbers_and_the_verdict():
    plan = smollm2_plan(600)
    record = json.loads(json.dumps(smollm2_forecast(plan.size, plan).to_dict()))
    assert record["verdict"] == UNLIKELY and record["steps"] == plan.max_steps
    assert record["tokens"] == plan.max_steps * 1024 and record["train_tokens"] == TRAIN_TOKENS
    assert record["epochs"] == round(plan.max_steps * 1024 / TRAIN_TOKENS, 3)
    assert record["reference"] == {"model": "smollm2-135m", "epochs": 0.40, "steps": 112, "gain": 4.5, "low": 1.5,
                                   "high": 8.0, "passed": True, "lines": 200, "engine": "torch"}
    assert record["instead"]["budget"] and record["curve"]["source"] == SMOLLM2.source


# --------------------------------------------------------------------------- the measured numbers


def benchmarks_section(anchor: str) -> str:
    """The text under the BENCHMARKS.md heading with this anchor, up to the next heading (code blocks skipped)."""
    lines, inside, fenced = [], False, False
    for line in (ROOT / "BENCHMARKS.md").read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        heading = None if fenced else re.match(r"#{1,6}\s+(.*?)\s*$", line)
        if heading:
            if inside:
                break
            inside = github_anchor(heading.group(1)) == anchor
        elif inside:
            lines.append(line)
    return "\n".join(lines)


@pytest.mark.parametrize("curve", MEASURED, ids=lambda c: f"{c.model}-{c.gate_context}")
def test_every_measured_point_is_in_its_benchmarks_section(curve):
    path, anchor = curve.source.split("#")
    assert path == "BENCHMARKS.md"
    section = benchmarks_section(anchor)
    assert section, curve.source
    for point in curve.points:
        interval = f"{forecasting._points(point.low)} … {forecasting._points(point.high)}"
        assert f"{forecasting._points(point.gain)}" in section and interval in section, point
        assert str(point.steps) in section
    if curve.passing():
        assert "USE IT" in section
    assert curve.fingerprint and curve.parameters


def test_the_gpu_rate_is_in_its_benchmarks_section():
    assert f"{forecasting.GPU_TOKENS_PER_SECOND['smollm2-135m']:,}" in benchmarks_section(
        forecasting.GPU_SOURCE.split("#")[1])


@pytest.mark.slow  # reads the real pinned weights
@pytest.mark.parametrize("curve", MEASURED, ids=lambda c: f"{c.model}-{c.gate_context}")
def test_a_curve_names_the_fingerprint_of_its_pinned_weights(curve):
    gguf = cache_dir() / "models" / PINNED_MODELS[curve.model].gguf_file_name
    if not gguf.is_file():
        pytest.skip(f"{gguf.name} is not in the cache")
    from ghostframe.server.inference.gguf_adapter import read_base_gguf

    assert read_base_gguf(gguf).fingerprint == curve.fingerprint


# --------------------------------------------------------------------------- said before training, recorded after


def tiny_fingerprint(model_dir: Path) -> str:
    import torch

    from ghostframe.server.inference.model_loading import base_model_fingerprint, load_tokenizer_and_model

    return base_model_fingerprint(load_tokenizer_and_model(str(model_dir), torch.float32, "tiny")[1])


def run_tiny(tmp_path: Path, tiny: Path, repo: Path, *options: str, steps: int | None = 2):
    from ghostframe.trainer.training.loop import train

    cfg = config_from_args(build_parser().parse_args(train_args(repo, tiny, tmp_path / "out", steps, *options)))
    said: list[str] = []
    train(cfg, report=said.append, gate_context="all")
    return "\n".join(said), json.loads((tmp_path / "out" / ADAPTER_METADATA).read_text())


@pytest.mark.slow
def test_the_text_before_training_has_the_numbers_and_ghostframe_json_keeps_them(tmp_path, tiny, repo, monkeypatch):
    """A curve made up for the tiny model (it passed at 3 epochs), so its run gets a verdict."""
    curve = Curve("smollm2-135m", tiny_fingerprint(tiny), 10_000_000, "all", CPU_RECIPE, "test data", "TEST",
                  (Point(3.0, 300, 5.0, 1.0, 9.0, passed=True),))
    monkeypatch.setattr(forecasting, "MEASURED", (curve,))
    printed, meta = run_tiny(tmp_path, tiny, repo, "--grad-accum", "2")
    record = meta["forecast"]
    tokens_per_step = 4 * 2 * 64  # batch x grad-accum x block (one process)
    assert record["tokens_per_step"] == tokens_per_step and record["steps"] == 2
    assert record["train_tokens"] > 0 and record["train_tokens"] % 64 == 0
    epochs = 2 * tokens_per_step / record["train_tokens"]
    assert f"2 steps of {tokens_per_step} tokens = {2 * tokens_per_step:,} training tokens, {epochs:.2f} epochs of " \
           f"the {record['train_tokens']:,} train tokens" in printed
    assert record["verdict"] == UNLIKELY and f"This run trains {epochs:.2f} epochs" in printed
    needed = RunSize(2, tokens_per_step, record["train_tokens"]).steps_for(3.0)
    assert f"--max-steps {needed} (3.00 epochs)" in printed and record["instead"]["max_steps"] == needed
    assert "the curve: 1024" in printed  # the tiny run's 64-token blocks are not the curve's recipe
    assert printed.index("forecast: UNLIKELY") < printed.index("adapter written to")
    # metrics.jsonl has it before the first step, for an editor that follows the run (the VS Code command)
    history = read_metrics(tmp_path / "out" / "metrics.jsonl")
    said = [r for r in history if r["split"] == "forecast"]
    assert [(r["step"], r["verdict"], r["text"]) for r in said] == [(0, UNLIKELY, record["text"])]
    assert history.index(said[0]) < next(i for i, r in enumerate(history) if r["split"] == "train")


@pytest.mark.slow
def test_a_budget_run_plans_then_says_what_its_steps_buy(tmp_path, tiny, repo, capsys):
    _, meta = run_tiny(tmp_path, tiny, repo, "--budget", "3s", steps=None)
    printed = capsys.readouterr().err  # the plan is written above the progress bar, on stderr
    plan, record = meta["budget"], meta["forecast"]
    assert plan["tokens_per_step"] == 4 * 64 and plan["train_tokens"] == record["train_tokens"] > 0
    assert record["steps"] == plan["max_steps"] >= MEASURED_STEPS
    assert f"so {plan['max_steps']} steps ({plan['max_steps'] * 256:,} tokens, {record['epochs']:.2f} epochs" in printed
    assert record["verdict"] == NO_CURVE and "no curve was measured for tiny" in printed
    assert f"this budget buys {record['epochs']:.2f} epochs" in printed
    assert printed.index("forecast: none") > printed.index(f"so {plan['max_steps']} steps")
    said = [r for r in read_metrics(tmp_path / "out" / "metrics.jsonl") if r["split"] == "forecast"]
    assert [(r["step"], r["verdict"], r["steps"]) for r in said] == [(MEASURED_STEPS, NO_CURVE, plan["max_steps"])]


def test_the_base_model_is_counted_without_loras_weights(tiny):
    import torch
    from peft import LoraConfig, get_peft_model

    from ghostframe.server.inference.model_loading import load_tokenizer_and_model

    model = load_tokenizer_and_model(str(tiny), torch.float32, "tiny")[1]
    base = sum(p.numel() for p in model.parameters())
    adapted = get_peft_model(model, LoraConfig(r=4, target_modules="all-linear"))
    assert sum(p.numel() for p in adapted.parameters()) > base == forecasting.base_parameters(adapted)


@pytest.mark.parametrize("options, context", [([], "all"), (["--gate-context", "repo"], "repo"), (["--no-gate"], None)])
def test_the_command_forecasts_the_gate_it_will_run(tmp_path, monkeypatch, options, context):
    """ghostframe-train hands the training the context its gate's prompts will get (the server's by default)."""
    from ghostframe.trainer import cli
    from ghostframe.trainer.training import loop

    seen = {}
    monkeypatch.setattr(loop, "train", lambda cfg, **kwargs: seen.update(kwargs) or {})
    assert cli.main([str(tmp_path), "--output", str(tmp_path / "out"), *options]) == 0
    assert seen["gate_context"] == context


def test_the_gate_says_what_the_forecast_said(tmp_path, monkeypatch):
    from ghostframe.trainer import cli
    from ghostframe.trainer.evaluation import train_gate
    from ghostframe.trainer.evaluation.gate import TOO_FEW, judge

    (tmp_path / ADAPTER_METADATA).write_text(json.dumps({"forecast": {"verdict": UNLIKELY}}))
    monkeypatch.setattr(train_gate, "finish_with_gate", lambda cfg, cases, report: judge([], []))
    said: list[str] = []
    cli.end_with_gate(config_from_args(build_parser().parse_args(["--output", str(tmp_path)])), said.append)
    assert f"before training the forecast said {UNLIKELY} to pass; the gate says {TOO_FEW}" in said
