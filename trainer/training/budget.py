"""`--budget 20m`: how many optimizer steps fit a wall-clock budget, from measured timings, and
what those steps buy (training tokens, epochs of the user's data: `RunSize`).

Nothing is guessed: the run first takes a few real training steps (they count), times
them, times the gate on one held-out case (see evaluation.gate_cost), and then gives
training whatever the budget has left after the time already spent, the final
validation and the gate. Whether that is enough to pass the gate is training.forecast's.
"""

from __future__ import annotations

import argparse
import math
import re
from dataclasses import asdict, dataclass

MEASURED_STEPS = 4          # timed before planning; the first pays one-time costs and is left out of the mean
GATE_SHARE = 0.5            # the gate may take at most this share of what is left; beyond it, fewer cases
MIN_GATE_CASES = 30         # below this the gate gives no verdict (evaluation.gate.MIN_CASES)
RECENT_STEPS = 5            # the step time that decides whether the run is behind its plan
SLACK = 1.02                # the share of the budget a run may end up using before it is called late

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h)\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}


def parse_duration(text: str) -> float:
    """Seconds in "90s", "20m" or "1.5h" (an argparse type: a bad value is a usage error)."""
    found = _DURATION.match(str(text))
    if not found or float(found.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration; write it like 90s, 20m or 1.5h")
    return float(found.group(1)) * _UNIT_SECONDS[found.group(2).lower()]


def format_duration(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 90 else f"{seconds:.0f} s"


def budget_option(seconds: float) -> str:
    """The `--budget` value that gives at least `seconds`, rounded up to what a person would type
    (whole minutes, or tenths of an hour from 90 minutes on)."""
    if seconds >= 90 * 60:
        return f"{math.ceil(seconds / 360 - 1e-9) / 10:g}h"
    return f"{max(1, math.ceil(seconds / 60 - 1e-9))}m"


@dataclass(frozen=True)
class RunSize:
    """What a run's optimizer steps amount to in the user's own data: training tokens and epochs.

    Epochs, not steps or tokens, are what carry over between machines, models and tokenizers:
    the measured recipe curves (training.forecast) are read in them.
    """

    steps: int
    tokens_per_step: int     # the packed block length x batch x grad-accum x devices
    train_tokens: int        # tokens of the packed training split (its blocks x the block length)

    @property
    def tokens(self) -> int:
        return self.steps * self.tokens_per_step

    @property
    def epochs(self) -> float:
        return self.tokens / self.train_tokens if self.train_tokens else 0.0

    def steps_for(self, epochs: float) -> int:
        """The steps that reach `epochs` of this training data at this step size."""
        return max(1, math.ceil(epochs * self.train_tokens / self.tokens_per_step - 1e-9))

    def describe(self) -> str:
        return (f"{self.steps} steps of {self.tokens_per_step:,} tokens = {self.tokens:,} training tokens, "
                f"{self.epochs:.2f} epochs of the {self.train_tokens:,} train tokens")


@dataclass(frozen=True)
class GateTiming:
    """What the gate will cost, measured: it reads the held-out files once, then for each of
    its two systems (base, adapter) loads the model, warms it up and completes every case
    (the base model only those whose answer no earlier run stored)."""

    available_cases: int     # held-out lines the gate would evaluate (already capped at --gate-cases)
    read_seconds: float      # reading the sources, sampling the cases and adding their context
    load_seconds: float      # loading one system and its warm-up completion
    case_seconds: float      # one completion by one system
    base_cached_cases: int = 0  # of the available cases, those whose base answers earlier runs stored

    def answers_per_case(self) -> float:
        """Completions per gate case: the adapter's, plus the base model's where none is stored."""
        cached = min(self.base_cached_cases, self.available_cases) / self.available_cases if self.available_cases else 0
        return 2 - cached

    def seconds(self, cases: int) -> float:
        return self.read_seconds + 2 * self.load_seconds + cases * self.answers_per_case() * self.case_seconds


@dataclass(frozen=True)
class BudgetPlan:
    budget_seconds: float
    spent_seconds: float         # data preparation, model load, measured steps and gate timing, before planning
    measured_steps: int
    step_seconds: float          # mean of the measured steps after the first
    eval_seconds: float          # one validation pass (the step-0 one, measured)
    gate_cases: int              # held-out lines the gate will evaluate
    gate_seconds: float          # the gate's estimated cost for them (0 without a gate)
    max_steps: int               # the run's step count, measured steps included
    expected_seconds: float      # spent + training + validations + gate, if the estimates hold
    gate_base_cached: int = 0    # held-out lines whose base answers earlier runs stored
    # What the steps buy, and what a longer budget would cost (0: not known, as in plans made before these were kept).
    tokens_per_step: int = 0     # the packed block length x batch x grad-accum x devices
    train_tokens: int = 0        # tokens of the packed training split
    eval_every: int = 0          # steps between validations
    gate_all_seconds: float = 0.0  # the gate on every available held-out line (more than gate_seconds when cut)

    def to_dict(self) -> dict:
        return {k: round(v, 2) if isinstance(v, float) else v for k, v in asdict(self).items()}

    @property
    def size(self) -> RunSize:
        return RunSize(self.max_steps, self.tokens_per_step, self.train_tokens)

    def seconds_for(self, steps: int) -> float:
        """The budget that would plan `steps` steps on this machine, from the same measurements:
        the time spent before planning, the steps at the measured rate with their validations, the
        final validation and the gate on all its lines (a longer budget keeps them all)."""
        per_step = self.step_seconds + (self.eval_seconds / self.eval_every if self.eval_every else 0.0)
        extra = max(0, steps - self.measured_steps)
        return self.spent_seconds + extra * per_step + self.eval_seconds + max(self.gate_seconds,
                                                                              self.gate_all_seconds)

    def describe(self) -> str:
        stored = f", {self.gate_base_cached} base answers stored by earlier runs" if self.gate_base_cached else ""
        gate = (f"the gate on {self.gate_cases} held-out lines{stored} ≈ {format_duration(self.gate_seconds)}"
                if self.gate_seconds else "no gate")
        over = "" if self.expected_seconds <= self.budget_seconds * SLACK else \
            " (over budget: the time already spent and the gate leave no room for more steps)"
        size = self.size
        bought = (f" ({size.tokens:,} tokens, {size.epochs:.2f} epochs of the {size.train_tokens:,} train tokens)"
                  if size.train_tokens and size.tokens_per_step else "")
        return (f"budget {format_duration(self.budget_seconds)}: {format_duration(self.spent_seconds)} spent on "
                f"data, model and measuring; {self.step_seconds:.2f} s per step (measured over "
                f"{self.measured_steps} steps), so {self.max_steps} steps{bought}; {gate}; "
                f"expected total {format_duration(self.expected_seconds)}{over}")


def plan_budget(budget_seconds: float, spent_seconds: float, measured_step_seconds: list[float],
                eval_seconds: float, eval_every: int, gate: GateTiming | None,
                tokens_per_step: int = 0, train_tokens: int = 0) -> BudgetPlan:
    """The step count that makes spent + training + validations + gate ≈ the budget.

    The gate keeps its cases unless it would take more than GATE_SHARE of what is left, then
    it evaluates fewer (never fewer than MIN_GATE_CASES, so it can still give a verdict).
    `tokens_per_step` and `train_tokens` let the plan say what its steps buy (RunSize).
    """
    measured = len(measured_step_seconds)
    timed = measured_step_seconds[1:] or measured_step_seconds
    step_seconds = sum(timed) / len(timed)
    left = budget_seconds - spent_seconds - eval_seconds  # the final validation always runs
    cases, gate_seconds = 0, 0.0
    if gate is not None:
        cases = gate.available_cases
        affordable = (GATE_SHARE * left - gate.read_seconds - 2 * gate.load_seconds) \
            / (gate.answers_per_case() * gate.case_seconds) if gate.case_seconds > 0 else cases
        if gate.seconds(cases) > GATE_SHARE * left:
            cases = min(cases, max(MIN_GATE_CASES, math.floor(affordable)))
        gate_seconds = gate.seconds(cases)
    per_step = step_seconds + (eval_seconds / eval_every if eval_every else 0.0)
    extra = max(0, math.floor((left - gate_seconds) / per_step)) if per_step > 0 else 0
    max_steps = measured + extra
    expected = spent_seconds + extra * per_step + eval_seconds + gate_seconds
    return BudgetPlan(budget_seconds, spent_seconds, measured, step_seconds, eval_seconds, cases,
                      gate_seconds, max_steps, expected, min(gate.base_cached_cases, cases) if gate else 0,
                      tokens_per_step, train_tokens, eval_every,
                      gate.seconds(gate.available_cases) if gate else 0.0)


def past_deadline(plan: BudgetPlan, elapsed_seconds: float, recent_step_seconds: list[float],
                  validates: bool = False) -> bool:
    """True when one more step (and the validation after it, if `validates`) would leave too
    little of the budget for the final validation and the gate: the machine became slower after
    planning (another job started, the laptop throttled, checkpoints took longer than thought).

    Their costs are scaled by how much slower the recent steps are than the measured ones, since
    what slowed training down slows them too.
    """
    recent = recent_step_seconds[-RECENT_STEPS:]
    if not recent:
        return False
    step = sum(recent) / len(recent)
    slowdown = max(1.0, step / plan.step_seconds) if plan.step_seconds > 0 else 1.0
    still_to_do = step + ((1 + validates) * plan.eval_seconds + plan.gate_seconds) * slowdown
    return elapsed_seconds + still_to_do > plan.budget_seconds * SLACK
