"""Before training: what this run's steps buy, and whether the evaluation gate is likely to say "use it".

A `--budget 30m` run of the 1.5B model on a slow CPU would spend its 30 minutes on a handful of
steps and end in "no better"; the user should hear that before, not after. So the run states what
it will do in the user's own data (steps, training tokens, epochs: budget.RunSize) and compares it
with the recipe curves measured on a real repository (`MEASURED`, from BENCHMARKS.md, section
"Training"): for one model and the context the gate's prompts get, the exact-match gain the gate
measured after so many epochs, and whether it passed. A run that buys the epochs at which its
model's curve passed is likely to pass too; one that buys fewer is told what would instead: a
longer budget (from the step time this machine just measured), a smaller served model whose
curve passed, or a GPU. A model with no measured curve gets no verdict, only the nearest measured
model's passing point for scale: nothing is extrapolated across models.

Epochs are the unit because they carry over between tokenizers and step sizes. Whether they carry
over between repositories of different sizes is not measured: every curve here is one repository.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ghostframe.server.inference.default_model import PINNED_MODELS, pinned_named
from ghostframe.trainer.config import TrainConfig
from ghostframe.trainer.training.budget import BudgetPlan, RunSize, budget_option, format_duration

LIKELY, UNLIKELY, NO_CURVE, NO_GATE = "likely", "unlikely", "no curve", "no gate"
# A run that buys this share of a passing point's epochs counts as reaching it: a point is one run,
# no sharper than its gate's noise, and the same steps come to a few per cent more or fewer epochs
# when the data pipeline or the tokenizer packs the same files differently.
REACHED = 0.9
# Past this many times the most epochs ever measured, the forecast says that more was not measured.
BEYOND = 2.0


@dataclass(frozen=True)
class Point:
    """One gate measured after a recipe's run (or one of its checkpoints): the epochs of training
    data it had seen, the exact-match gain over the base model in points with its 95 % interval,
    whether the gate passed it ("use it": both exact match and edit similarity above zero), and how
    many held-out lines it evaluated on which engine (its answers, and so its noise, depend on both)."""

    epochs: float
    steps: int
    gain: float
    low: float
    high: float
    passed: bool
    lines: int = 200       # held-out lines the gate evaluated
    engine: str = "torch"  # the engine the gate ran on, as LoadedModel.engine and ghostframe.json name it


@dataclass(frozen=True)
class Curve:
    """One recipe measured on one model, judged by a gate whose prompts got one context."""

    model: str            # the pinned name (default_model.PINNED_MODELS)
    fingerprint: str      # model_loading.base_model_fingerprint of the pinned weights, however they are given
    parameters: int       # of the base model, for comparing step costs between models
    gate_context: str     # none | repo | data | all
    recipe: dict          # the training options that made the points (keys of recipe_of)
    data: str
    source: str           # the BENCHMARKS.md section with the command, the machine and the commit
    points: tuple[Point, ...]

    @property
    def display_name(self) -> str:
        return PINNED_MODELS[self.model].display_name

    def passing(self) -> Point | None:
        """The point with the fewest epochs whose gate passed."""
        return next((p for p in sorted(self.points, key=lambda p: p.epochs) if p.passed), None)

    def most_epochs(self) -> float:
        return max(p.epochs for p in self.points)


# ghostframe-train's CPU defaults (config.DEFAULT_BATCH_SIZE, DEFAULT_LORA_LR, the LoRA fields' defaults).
CPU_RECIPE = {"context_length": 1024, "batch_size": 1, "grad_accum": 1, "devices": 1, "learning_rate": 4e-4,
              "full": False, "lora_r": 16, "lora_alpha": 32, "lora_layers": 0, "lora_targets": "all-linear",
              "keytoken_weight": 0.0}
# imbalanced-learn 0.14.2's sdist: 124 train files, packed into 277 blocks of 1,024 SmolLM2 tokens (283,648
# tokens; 266 blocks since the hygiene filters of commit 1f3a0e2) or 230 blocks of Qwen2.5 tokens; the
# gate's 200 held-out lines come from its 12 valid files.
IMBALANCED_LEARN = "imbalanced-learn, 283,648 train tokens"
IMBALANCED_LEARN_QWEN = "imbalanced-learn, 235,520 train tokens"

# The measured recipe curves: the one place their numbers live. Source: BENCHMARKS.md, section
# "Training" (each curve's `source` names its subsection, where the command, the machine and the
# commit are). Epochs are steps x 1,024 tokens over the train blocks ghostframe-train packs
# imbalanced-learn into with the model's tokenizer, except where BENCHMARKS.md states the epochs itself.
MEASURED: tuple[Curve, ...] = (
    # `ghostframe-train $IMBALANCED_LEARN --output OUT --budget 30m`, the gate with the server's context.
    # On an AVX2 CPU (gate on torch): 112 steps (0.40 epochs), exact match +4.5 (+1.5 ... +8.0), edit
    # similarity +3.0 (+0.1 ... +6.0): USE IT. On an AVX-512 CPU (gate on llama.cpp, dearer, so fewer steps
    # and 144 lines): 84 steps (0.32 epochs), +3.5 (-0.7 ... +7.6): no better.
    Curve("smollm2-135m", "9a7a053d6e06e033", 134_515_008, "all", CPU_RECIPE, IMBALANCED_LEARN,
          "BENCHMARKS.md#the-default---budget-30m-run",
          (Point(0.32, 84, 3.5, -0.7, 7.6, passed=False, lines=144, engine="llama.cpp"),
           Point(0.40, 112, 4.5, 1.5, 8.0, passed=True))),
    # The "all, 1,024" recipe (--max-steps 150, so its step 100 is a checkpoint mid-schedule), gated
    # without context (--gate-context none); BENCHMARKS.md gives 0.56 epochs at 150 steps. No better at both.
    Curve("smollm2-135m", "9a7a053d6e06e033", 134_515_008, "none", CPU_RECIPE, IMBALANCED_LEARN,
          "BENCHMARKS.md#what-training-buys-on-a-cpu",
          (Point(0.37, 100, 3.0, -1.0, 7.0, passed=False), Point(0.56, 150, 3.0, -1.0, 7.0, passed=False))),
    # `... --model qwen2.5-coder-0.5b --budget 30m` and `--budget 60m` on the AVX-512 CPU, gate on llama.cpp:
    # 32 steps (0.14 epochs), +9.5 (+1.6 ... +19.1) on 63 lines: USE IT; 68 steps (0.30 epochs), +6.5 (+0.7 ...
    # +12.3) on 154 lines: USE IT (on the 30m run's 63 lines +6.3: the curve is flat within its noise).
    Curve("qwen2.5-coder-0.5b", "5e7889268a67d7fd", 630_167_424, "all", CPU_RECIPE, IMBALANCED_LEARN_QWEN,
          "BENCHMARKS.md#budget-runs-per-model",
          (Point(0.14, 32, 9.5, 1.6, 19.1, passed=True, lines=63, engine="llama.cpp"),
           Point(0.30, 68, 6.5, 0.7, 12.3, passed=True, lines=154, engine="llama.cpp"))),
)

# LoRA training tokens per second on one CPU, by pinned model (`ghostframe-train --benchmark --model M
# --benchmark-steps 4 --context-length 1024 --batch-size 1`, 2-core AVX-512 CPU): what one model's step
# costs against another's. Their ratio, not the parameter count, scales a step time measured here to
# another model (by parameters SmolLM2 would be 3.7x faster than the 0.5B; measured, 2.8x).
CPU_TOKENS_PER_SECOND = {"smollm2-135m": 127.0, "qwen2.5-coder-0.5b": 44.8, "qwen2.5-coder-1.5b": 18.5}
CPU_SOURCE = "BENCHMARKS.md#training-throughput-per-model-on-a-cpu"

# Training tokens per second on a GPU, by pinned model: `ghostframe-train --benchmark
# --benchmark-random-shape smollm2-135m --batch-size 16 --context-length 1024` on an H100 (random
# weights of the model's shape, bf16, no --compile; BENCHMARKS.md#throughput-on-an-h100).
GPU_TOKENS_PER_SECOND = {"smollm2-135m": 85_276}
GPU_SOURCE = "BENCHMARKS.md#throughput-on-an-h100"

RECIPE_OPTIONS = {"context_length": "--context-length", "batch_size": "--batch-size", "grad_accum": "--grad-accum",
                  "devices": "processes", "learning_rate": "--lr", "full": "--full", "lora_r": "--lora-r",
                  "lora_alpha": "--lora-alpha", "lora_layers": "--lora-layers", "lora_targets": "--lora-targets",
                  "keytoken_weight": "--keytoken-weight"}


def recipe_of(cfg: TrainConfig, devices: int) -> dict:
    """This run's values of the options a curve's recipe fixes (cfg with the device's defaults filled in)."""
    return {"context_length": cfg.context_length, "batch_size": cfg.batch_size, "grad_accum": cfg.grad_accum,
            "devices": devices, "learning_rate": cfg.resolved_learning_rate(), "full": cfg.full,
            "lora_r": cfg.lora_r, "lora_alpha": cfg.lora_alpha, "lora_layers": cfg.lora_layers,
            "lora_targets": cfg.lora_targets, "keytoken_weight": cfg.keytoken_weight}


def recipe_differences(measured: dict, run: dict) -> list[str]:
    """Where this run's recipe is not the curve's ("--batch-size 8 (the curve: 1)"): its forecast is rougher."""
    return [f"{RECIPE_OPTIONS.get(k, k)} {run[k]:g} (the curve: {v:g})" if isinstance(v, float)
            else f"{RECIPE_OPTIONS.get(k, k)} {run[k]} (the curve: {v})"
            for k, v in measured.items() if k in run and run[k] != v]


@dataclass(frozen=True)
class Forecast:
    """What was said before training, kept so that the gate's verdict can be compared with it."""

    verdict: str                    # LIKELY | UNLIKELY | NO_CURVE | NO_GATE
    size: RunSize
    model: str                      # this run's model, as the trainer names it
    gate_context: str | None        # the gate's prompts' context (None: no gate follows)
    text: str                       # what is printed before training
    curve: Curve | None = None      # this model's curve for that context, when one was measured
    reference: Point | None = None  # the point judged against (this model's, or for scale another's)
    reference_model: str | None = None
    instead: dict = field(default_factory=dict)   # what would pass instead, where computed
    differences: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        """For ghostframe.json's `forecast`, beside the gate's actual verdict."""
        return {
            "verdict": self.verdict, "model": self.model, "gate_context": self.gate_context,
            "steps": self.size.steps, "tokens_per_step": self.size.tokens_per_step, "tokens": self.size.tokens,
            "train_tokens": self.size.train_tokens, "epochs": round(self.size.epochs, 3),
            "curve": {"model": self.curve.model, "gate_context": self.curve.gate_context,
                      "source": self.curve.source} if self.curve else None,
            "reference": {"model": self.reference_model, **asdict(self.reference)} if self.reference else None,
            "instead": self.instead, "recipe_differences": list(self.differences), "text": self.text,
        }


def _points(value: float) -> str:
    """A gain as BENCHMARKS.md writes it: signed, one decimal, a true minus sign."""
    return f"{value:+.1f}".replace("-", "\N{MINUS SIGN}")


def _gain(point: Point) -> str:
    return (f"{_points(point.gain)} exact-match points (95 % {_points(point.low)} … {_points(point.high)}; "
            f"{point.lines} held-out lines, gate on {point.engine})")


def _gated(gate_context: str) -> str:
    return "gated without context" if gate_context == "none" else f"gated with {gate_context} context"


def _buys(plan: BudgetPlan | None) -> str:
    return "this budget buys" if plan is not None else "this run trains"


def _fewer_lines(point: Point, plan: BudgetPlan | None) -> str:
    """A note when the budget cut the gate to fewer held-out lines than the gate that measured `point`:
    the noise margin widens as 1/sqrt(lines), so the same gain may no longer pass."""
    if plan is None or not 0 < plan.gate_cases < point.lines:
        return ""
    return (f"\n  note: the gate will evaluate {plan.gate_cases} held-out lines, the curve's {point.lines}: "
            f"its noise margin is about {(point.lines / plan.gate_cases) ** 0.5:.1f}x wider, so the same gain "
            "may read as no better")


def _find_curve(curves: tuple[Curve, ...], fingerprint: str, gate_context: str) -> Curve | None:
    return next((c for c in curves if c.fingerprint == fingerprint and c.gate_context == gate_context), None)


def _smaller_passing(curves: tuple[Curve, ...], parameters: int, gate_context: str, fingerprint: str) -> Curve | None:
    """The largest model smaller than this one whose curve, with this gate context, passed."""
    smaller = [c for c in curves if c.gate_context == gate_context and c.passing() and c.fingerprint != fingerprint
               and c.parameters < parameters]
    return max(smaller, key=lambda c: c.parameters, default=None)


def _for_scale(curves: tuple[Curve, ...], parameters: int, gate_context: str) -> Curve | None:
    """For a model without a curve: the passing curve of the model nearest in size, with this gate context."""
    passing = [c for c in curves if c.gate_context == gate_context and c.passing()]
    return min(passing, key=lambda c: abs(c.parameters - parameters), default=None)


def step_cost_ratio(smaller: Curve, model_name: str, parameters: int) -> tuple[float, str]:
    """What one of `smaller`'s training steps costs against one of this model's, and how that was
    found: from the measured CPU training rates when both are pinned models with one, otherwise
    by parameter count (which flatters small models: their steps are not that much cheaper)."""
    this = pinned_named(model_name)
    rate = CPU_TOKENS_PER_SECOND.get(this.name) if this else None
    small_rate = CPU_TOKENS_PER_SECOND.get(smaller.model)
    if rate and small_rate:
        return rate / small_rate, f"by their measured training rates on a CPU, {CPU_SOURCE}"
    return smaller.parameters / parameters, "by parameter count; no training rate was measured for this model"


def ways_out(size: RunSize, target: Point, model_fingerprint: str, model_name: str, parameters: int,
             gate_context: str, device: str, plan: BudgetPlan | None, curves: tuple[Curve, ...],
             gpu_rate: int | None) -> tuple[dict, list[str]]:
    """What would reach `target`'s epochs instead: more steps (a longer --budget, from the measured
    step time, or --max-steps), a smaller served model whose curve passed, a GPU. Returns what is
    recorded and the lines that say it."""
    instead, lines = {}, []
    steps = size.steps_for(target.epochs)
    if plan is not None and plan.step_seconds > 0:
        seconds = plan.seconds_for(steps)
        instead.update(budget=budget_option(seconds), budget_seconds=round(seconds, 1), steps=steps)
        lines.append(f"a longer budget: --budget {instead['budget']} (about {steps} steps at the measured "
                     f"{plan.step_seconds:.2f} s per step reach {target.epochs:.2f} epochs; validations and the "
                     "gate on all its lines included)")
    else:
        instead.update(max_steps=steps)
        lines.append(f"more steps: --max-steps {steps} ({target.epochs:.2f} epochs)")
    smaller = _smaller_passing(curves, parameters, gate_context, model_fingerprint)
    if smaller is not None:
        point = smaller.passing()
        small_steps = size.steps_for(point.epochs)
        instead["smaller_model"] = smaller.model
        say = (f"a smaller served model: {smaller.display_name} (--model {smaller.model}, and the same model in "
               f"the server): its recipe passed at {point.epochs:.2f} epochs, gaining {_gain(point)}")
        if plan is not None and plan.step_seconds > 0 and parameters:
            ratio, measured = step_cost_ratio(smaller, model_name, parameters)
            train_seconds = small_steps * plan.step_seconds * ratio
            instead["smaller_model_train_seconds"] = round(train_seconds, 1)
            say += (f"; its steps cost about 1/{1 / ratio:.1f} of this model's ({measured}), so "
                    f"about {format_duration(train_seconds)} of training here")
        lines.append(say)
    elif parameters:
        lines.append("a smaller served model: no smaller model has a measured curve")
    if not device.startswith("cuda"):
        if gpu_rate:
            gpu_seconds = steps * size.tokens_per_step / gpu_rate
            instead.update(gpu_tokens_per_second=gpu_rate, gpu_train_seconds=round(gpu_seconds, 1))
            lines.append(f"a CUDA GPU (ghostframe-train uses one when there is one): this model's shape trains at "
                         f"{gpu_rate:,} tokens/s on an H100 ({GPU_SOURCE}), so {target.epochs:.2f} epochs take "
                         f"about {format_duration(gpu_seconds)} of training there")
        else:
            instead["gpu_tokens_per_second"] = None
            lines.append("a CUDA GPU (ghostframe-train uses one when there is one): no training rate was measured "
                         "for this model on one (ghostframe-train --benchmark there measures it)")
    return instead, lines


def forecast(size: RunSize, fingerprint: str, model_name: str, parameters: int, gate_context: str | None,
             recipe: dict, device: str = "cpu", plan: BudgetPlan | None = None,
             curves: tuple[Curve, ...] | None = None) -> Forecast:
    """The forecast for a run of `size` on the model with this fingerprint, judged by a gate whose
    prompts get `gate_context` (None: no gate follows the run); `plan` gives the measured step time
    a longer budget is computed from (without it, more steps are counted in --max-steps). `curves`
    default to MEASURED."""
    curves = MEASURED if curves is None else curves
    if gate_context is None:
        return Forecast(NO_GATE, size, model_name, None, "forecast: none; no evaluation gate follows this run (--no-gate)")
    own = _find_curve(curves, fingerprint, gate_context)
    gpu_rate = GPU_TOKENS_PER_SECOND.get(own.model) if own else None
    if own is None:
        return _no_curve(size, fingerprint, model_name, parameters, gate_context, recipe, device, plan, curves)
    differences = tuple(recipe_differences(own.recipe, recipe))
    note = (f"\n  note: this run's recipe is not the curve's: {'; '.join(differences)}; the forecast is rougher"
            if differences else "")
    passing = own.passing()
    note += _fewer_lines(passing or max(own.points, key=lambda p: p.lines), plan)
    source = f"[{own.source}, {own.data}]"
    buys = _buys(plan)
    if passing is not None and size.epochs >= REACHED * passing.epochs:
        beyond = (f" That is more than {BEYOND:g}x the most epochs measured ({own.most_epochs():.2f}); whether more "
                  "still helps was not measured." if size.epochs > BEYOND * own.most_epochs() else "")
        text = (f"forecast: LIKELY to pass the gate. {own.display_name}'s measured recipe gained {_gain(passing)} "
                f"at {passing.epochs:.2f} epochs, and its gate said use it {source}; {buys} "
                f"{size.epochs:.2f} epochs.{beyond}{note}")
        return Forecast(LIKELY, size, model_name, gate_context, text, own, passing, own.model, {}, differences)
    if passing is None:
        best = max(own.points, key=lambda p: (p.gain, p.epochs))
        other = next((c for c in curves if c.fingerprint == fingerprint and c.passing()), None)
        elsewhere = (f" {_gated(other.gate_context).capitalize()}, the same model passed at "
                     f"{other.passing().epochs:.2f} epochs [{other.source}]." if other else "")
        text = (f"forecast: UNLIKELY to pass the gate. {own.display_name}'s measured recipe, {_gated(gate_context)}, "
                f"never passed: at most {_gain(best)} at {best.epochs:.2f} epochs, up to "
                f"{own.most_epochs():.2f} epochs measured {source}; whether more epochs pass was not measured; "
                f"{buys} {size.epochs:.2f} epochs.{elsewhere}{note}")
        return Forecast(UNLIKELY, size, model_name, gate_context, text, own, best, own.model, {}, differences)
    instead, lines = ways_out(size, passing, fingerprint, model_name, parameters or own.parameters, gate_context,
                              device, plan, curves, gpu_rate)
    text = (f"forecast: UNLIKELY to pass the gate. {buys.capitalize()} {size.epochs:.2f} epochs; {own.display_name}'s "
            f"measured recipe first passed at {passing.epochs:.2f} epochs, gaining {_gain(passing)} {source}. "
            "Instead:" + "".join(f"\n  - {line}" for line in lines) + note)
    return Forecast(UNLIKELY, size, model_name, gate_context, text, own, passing, own.model, instead, differences)


def _no_curve(size: RunSize, fingerprint: str, model_name: str, parameters: int, gate_context: str, recipe: dict,
              device: str, plan: BudgetPlan | None, curves: tuple[Curve, ...]) -> Forecast:
    """No measured curve for this model: no verdict, the nearest measured model's passing point for scale."""
    scale = _for_scale(curves, parameters, gate_context)
    if scale is None:
        text = (f"forecast: none; no curve was measured for {model_name} {_gated(gate_context)}, nor for any "
                f"other model, so none is guessed; {_buys(plan)} "
                f"{size.epochs:.2f} epochs.")
        return Forecast(NO_CURVE, size, model_name, gate_context, text)
    point = scale.passing()
    text = (f"forecast: none; no curve was measured for {model_name}, so none is guessed. For scale: "
            f"{scale.display_name}'s measured recipe passed at {point.epochs:.2f} epochs, gaining {_gain(point)} "
            f"[{scale.source}, {scale.data}]; {_buys(plan)} {size.epochs:.2f} epochs.")
    instead = {}
    if size.epochs < REACHED * point.epochs:
        instead, lines = ways_out(size, point, fingerprint, model_name, parameters, gate_context, device, plan,
                                  curves, None)
        text += f" To give it {point.epochs:.2f} epochs, or to train a model with a curve:" + "".join(
            f"\n  - {line}" for line in lines)
    text += _fewer_lines(point, plan)
    return Forecast(NO_CURVE, size, model_name, gate_context, text, None, point, scale.model, instead,
                    tuple(recipe_differences(scale.recipe, recipe)))


def base_parameters(model) -> int:
    """The base model's parameter count (LoRA's own weights left out), for comparing step costs."""
    return sum(p.numel() for name, p in model.named_parameters() if "lora_" not in name)
