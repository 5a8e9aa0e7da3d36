"""Which pinned model `auto` serves: on a CPU, the largest that keeps a typing session at typing speed.

Machines differ widely: a 2-core cloud VM and an 8-core laptop, AVX2 or AVX-512. So the choice
is measured, not guessed: each candidate, smallest first, is loaded in the llama.cpp engine and
timed (prefill per prompt token, decode per new token, best of two); its typing session is
estimated from those rates (`Rates.typing_ms`, calibrated against `ghostframe bench typing`:
BENCHMARKS.md, "Which model each machine serves"), and the largest candidate whose estimate meets
the targets wins. A larger candidate is only downloaded and timed when the one below it fits with
room to spare.

What is cached is what was measured, not what was decided: the rates, per model file, CPU, its
flags, thread count and llama.cpp build (delete `tier-rates.json` in the cache to measure again; a
measurement taken while other programs kept the CPU busy is used but not cached). The choice is
made from them on every load, so retuning a target or the engine's cold budget takes effect at
once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from importlib import metadata
from typing import Callable

from ghostframe.server.inference import llama_runtime
from ghostframe.server.inference.default_model import PINNED_MODELS, PinnedModel, default_model_for, pinned_gguf_path
from ghostframe.server.inference.engine import COLD_BUDGET_SECONDS
from ghostframe.server.inference.llama_runtime import LlamaRuntime, RuntimeConfig, physical_cores
from ghostframe.server.inference.machine import busy, cpu_flags, cpu_name
from ghostframe.server.inference.progress import Reporter
from ghostframe.server.inference.user_cache import MeasurementCache

RATES = MeasurementCache("tier-rates.json")
# The goal a typing session must meet (per keystroke, through the server).
TARGET_P50_MS = 300.0
TARGET_P95_MS = 800.0
# Smallest first; each is tried only when the one before it fits.
CANDIDATES = ("smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b")
# A larger model costs more than its size ratio suggests only rarely; one whose estimate, scaled
# from the model below it by file size, is more than this many times over the target is not tried.
TRY_LARGER_UP_TO = 3.0
# What a keystroke costs. The typical answered keystroke (p50) comes soon after arriving at a place
# (a move, a new line), when the pause has not yet warmed all of its window: its request prefills
# some 64 tokens, not just the typed ones, then decodes a typical suggestion; the slow tail (p95)
# is a request whose prefill is capped by the engine's cold budget, with a long suggestion.
# Calibrated with `ghostframe bench typing` (BENCHMARKS.md, "Which model each machine serves").
KEYSTROKE_PREFILL_TOKENS = 64
SUGGESTION_TOKENS = 16
SLOW_PREFILL_TOKENS = 256
SLOW_SUGGESTION_TOKENS = 20
# What is timed per candidate (the rates' cache key holds these).
TIMED_PREFILL_TOKENS = 256
TIMED_DECODE_TOKENS = 16


@dataclass(frozen=True)
class Rates:
    """A model's speed on this machine in the llama.cpp engine."""

    prefill_ms_per_token: float
    decode_ms_per_token: float

    def typing_ms(self) -> tuple[float, float]:
        """Estimated (p50, p95) ms per keystroke of a typing session (see the constants above; a cold
        request's prefill is capped by the engine's cold budget)."""
        p50 = self.prefill_ms_per_token * KEYSTROKE_PREFILL_TOKENS + self.decode_ms_per_token * SUGGESTION_TOKENS
        slow_prefill = min(self.prefill_ms_per_token * SLOW_PREFILL_TOKENS, COLD_BUDGET_SECONDS * 1000)
        p95 = slow_prefill + self.decode_ms_per_token * SLOW_SUGGESTION_TOKENS
        return round(p50, 1), round(p95, 1)

    def fits(self) -> bool:
        p50, p95 = self.typing_ms()
        return p50 <= TARGET_P50_MS and p95 <= TARGET_P95_MS


@dataclass(frozen=True)
class TierChoice:
    """The model auto serves here, how that was decided, and the rates behind it."""

    model: str
    how: str                                               # measured | cached | measured on a busy CPU ...
    rates: dict[str, Rates] = field(default_factory=dict)  # the candidates it was decided on
    reason: str = ""

    def describe(self) -> str:
        """"qwen2.5-coder-0.5b (measured: ... ; the largest model within p50 300 / p95 800 ms here)"."""
        timed = "; ".join(f"{name}: prefill {r.prefill_ms_per_token:.1f} ms/token, decode {r.decode_ms_per_token:.1f} "
                          f"ms/token, typing p50 ~{r.typing_ms()[0]:.0f} / p95 ~{r.typing_ms()[1]:.0f} ms"
                          for name, r in self.rates.items())
        return f"{self.model} ({self.how}: {self.reason}" + (f"; {timed}" if timed else "") + ")"


Measure = Callable[[str, Reporter], Rates]


def measure_rates(model: str, report: Reporter = lambda _: None) -> Rates:
    """Time `model` (a pinned name) in the llama.cpp engine: best of two prefills and decodes."""
    gguf = pinned_gguf_path(PINNED_MODELS[model], report)
    report(f"timing {PINNED_MODELS[model].display_name} on this CPU")
    runtime = LlamaRuntime(RuntimeConfig(gguf, slots=1, slot_tokens=TIMED_PREFILL_TOKENS + TIMED_DECODE_TOKENS + 8))
    try:
        prompt = [(i * 7919 + 13) % 30000 + 100 for i in range(TIMED_PREFILL_TOKENS)]  # ordinary tokens of every vocabulary
        prefill, decode = float("inf"), float("inf")
        for _ in range(2):
            timings = runtime.timed(prompt, TIMED_DECODE_TOKENS)
            prefill = min(prefill, timings["prompt_ms"] / max(1, timings["prompt_n"]))
            decode = min(decode, timings["predicted_ms"] / max(1, timings["predicted_n"] - 1))
    finally:
        runtime.close()
    return Rates(round(prefill, 2), round(decode, 2))


def _llama_cpp_build() -> str:
    try:
        return metadata.version("xllamacpp")
    except metadata.PackageNotFoundError:
        return "?"


def _rates_key(model: str, threads: int) -> str:
    """What a model's rates depend on: the file, the CPU, the threads, llama.cpp, and what is timed."""
    return RATES.key([PINNED_MODELS[model].gguf_sha256, cpu_name(), cpu_flags(), threads, _llama_cpp_build(),
                      TIMED_PREFILL_TOKENS, TIMED_DECODE_TOKENS])


def _cached_rates(key: str) -> Rates | None:
    entry = RATES.get(key) or {}
    try:
        return Rates(float(entry["prefill_ms_per_token"]), float(entry["decode_ms_per_token"]))
    except (KeyError, TypeError, ValueError):
        return None


def pick(rates_of: Callable[[str], Rates]) -> tuple[str, dict[str, Rates], str]:
    """(model, the rates timed, why): the largest candidate that fits, trying each only when the one
    below fits and its size-scaled estimate is within TRY_LARGER_UP_TO of the target."""
    timed: dict[str, Rates] = {}
    chosen = CANDIDATES[0]
    for index, model in enumerate(CANDIDATES):
        if index:
            below = timed[CANDIDATES[index - 1]]
            scale = PINNED_MODELS[model].size_mb / PINNED_MODELS[CANDIDATES[index - 1]].size_mb
            if below.typing_ms()[0] * scale > TRY_LARGER_UP_TO * TARGET_P50_MS:
                return chosen, timed, (f"the largest model within p50 {TARGET_P50_MS:.0f} / p95 {TARGET_P95_MS:.0f} "
                                       f"ms here; {model} would be ~{scale:.0f}x slower")
        timed[model] = rates_of(model)
        if not timed[model].fits():
            why = "the smallest model; none fits" if index == 0 else "the largest model that fits"
            return chosen, timed, (f"{why} p50 {TARGET_P50_MS:.0f} / p95 {TARGET_P95_MS:.0f} ms here; "
                                   f"{model} is over")
        chosen = model
    return chosen, timed, f"the largest pinned model, within p50 {TARGET_P50_MS:.0f} / p95 {TARGET_P95_MS:.0f} ms here"


def choose_tier(report: Reporter = lambda _: None, measure: Measure = measure_rates,
                threads: int | None = None) -> TierChoice:
    """The pinned model `auto` means on this CPU, decided from rates measured once per machine (see the
    module docstring)."""
    threads = threads or physical_cores()
    measured: list[str] = []
    busy_loads: list[float] = []

    def rates_of(model: str) -> Rates:
        key = _rates_key(model, threads)
        if (rates := _cached_rates(key)) is not None:
            return rates
        if not measured:
            report("measuring which model this machine runs at typing speed (first run only)")
        measured.append(model)
        rates = measure(model, report)
        if (load := busy()) is None:
            RATES.put(key, {"model": model, **asdict(rates)})
        else:  # other programs skewed the timings: use them now, measure again next time
            busy_loads.append(load)
        return rates

    model, rates, reason = pick(rates_of)
    how = ("cached" if not measured else "measured" if not busy_loads
           else f"measured on a busy CPU (load {max(busy_loads):.1f}), not cached")
    choice = TierChoice(model, how, rates, reason)
    report(f"serving {choice.describe()}")
    return choice


def is_auto(model: str | None) -> bool:
    """Whether a --model value leaves the choice to `auto_model` (empty or "auto")."""
    return not model or model == "auto"


def auto_model(device: str, report: Reporter = lambda _: None) -> tuple[PinnedModel, TierChoice | None]:
    """The pinned model `auto` means on `device`, with the TierChoice when this machine was measured for
    it. On a CPU that runs llama.cpp it is the largest model the CPU runs at typing speed, for every
    engine, so a model trained or evaluated by default is the one that serves; on a GPU, or where
    llama.cpp cannot run to measure, the per-device default (default_model.DEFAULT_BY_DEVICE)."""
    if device == "cpu" and llama_runtime.available() is None:
        tier = choose_tier(report)
        return PINNED_MODELS[tier.model], tier
    return default_model_for(device), None
