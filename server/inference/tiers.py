"""Which pinned model `auto` serves: on a CPU, the one that saves its user the most typing here.

Machines differ widely: a 2-core cloud VM and an 8-core laptop, AVX2 or AVX-512. A larger model is
right more often but answers later, and an answer that comes after the next keystroke is never seen.
So the choice is measured, not guessed: each candidate, smallest first, is loaded in the llama.cpp
engine and timed (prefill per prompt token, decode per new token, best of two); its typing session is
estimated from those rates (`Rates.typing_ms`, calibrated against `ghostframe bench typing`), and
`typing_value` turns rates and the model's measured exactness into the share of characters its
suggestions are expected to write. The model expected to save the most wins, among those a person
would tolerate (`TOLERABLE_P50_MS`, `TOLERABLE_P95_MS`). A larger candidate is only downloaded and
timed when, from the rates of the one below scaled by file size (optimistically), it could save more.

What is cached is what was measured, not what was decided: the rates, per model file, CPU, its
flags, thread count and llama.cpp build (delete `tier-rates.json` in the cache to measure again; a
measurement taken while other programs kept the CPU busy is used but not cached). The choice is
made from them on every load, so a retuned limit or curve takes effect at once.
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
from ghostframe.server.inference.typing_value import Value, expected_value
from ghostframe.server.inference.user_cache import MeasurementCache

RATES = MeasurementCache("tier-rates.json")
# What a person tolerates per keystroke (through the server): beyond it the editor feels stuck,
# whatever the suggestions are worth.
TOLERABLE_P50_MS = 1000.0
TOLERABLE_P95_MS = 2000.0
# Smallest first; each is tried only when, guessed from the one before it, it could save more.
CANDIDATES = ("smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b")
# Guessing a larger model's rates from the one below: its file-size ratio, divided by this. Measured,
# larger pinned models run 2-3x faster than their size ratio says (quantisation and width differ);
# an optimistic guess only costs a download, a pessimistic one would hide the better model.
LARGER_FASTER_THAN_SIZE = 3.0
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

    def tolerable(self) -> bool:
        p50, p95 = self.typing_ms()
        return p50 <= TOLERABLE_P50_MS and p95 <= TOLERABLE_P95_MS

    def scaled(self, factor: float) -> Rates:
        return Rates(self.prefill_ms_per_token * factor, self.decode_ms_per_token * factor)


def value_of(model: str, rates: Rates) -> Value:
    """What `model` is expected to save with these rates (typing_value: exactness x answers in time)."""
    return expected_value(model, rates.prefill_ms_per_token, rates.typing_ms()[0])


@dataclass(frozen=True)
class TierChoice:
    """The model auto serves here, how that was decided, and the rates behind it."""

    model: str
    how: str                                               # measured | cached | measured on a busy CPU ...
    rates: dict[str, Rates] = field(default_factory=dict)  # the candidates it was decided on
    reason: str = ""

    @property
    def expected(self) -> Value | None:
        """What the served model is expected to save here (None: it was not timed)."""
        rates = self.rates.get(self.model)
        return value_of(self.model, rates) if rates is not None else None

    def describe(self) -> str:
        """"smollm2-135m (measured: expected to write ~8 % of characters ...; saves the most here; ...)"."""
        timed = "; ".join(f"{name}: prefill {r.prefill_ms_per_token:.1f} ms/token, decode {r.decode_ms_per_token:.1f} "
                          f"ms/token, typing p50 ~{r.typing_ms()[0]:.0f} / p95 ~{r.typing_ms()[1]:.0f} ms, "
                          f"~{value_of(name, r).saved_pct:.0f} % saved" for name, r in self.rates.items())
        expected = f"expected to write {self.expected.describe()}; " if self.expected else ""
        return f"{self.model} ({self.how}: {expected}{self.reason}" + (f"; {timed}" if timed else "") + ")"


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
    """(model, the rates timed, why): of the candidates a person would tolerate here, the one expected
    to save the most typing (the smallest when none is tolerable). A larger candidate is timed only when
    its guess from the largest one timed below it (LARGER_FASTER_THAN_SIZE) could beat the best so far;
    one that could not is passed over, and the next is still guessed (a much better model may win where
    a slightly better one cannot)."""
    timed: dict[str, Rates] = {}
    best: str | None = None
    passed_over: list[str] = []
    for index, model in enumerate(CANDIDATES):
        if index and best is None:
            break  # the smallest is too slow for a person here: a larger one is slower
        if index:
            below = list(timed)[-1]
            scale = PINNED_MODELS[model].size_mb / PINNED_MODELS[below].size_mb / LARGER_FASTER_THAN_SIZE
            guess = timed[below].scaled(max(scale, 1.0))
            if not guess.tolerable() or value_of(model, guess).saved_pct <= value_of(best, timed[best]).saved_pct:
                passed_over.append(f"{model} not timed: at best ~{value_of(model, guess).saved_pct:.0f} % here")
                continue
        timed[model] = rates_of(model)
        if timed[model].tolerable() and (best is None or
                                         value_of(model, timed[model]).saved_pct > value_of(best, timed[best]).saved_pct):
            best = model
    if best is None:
        return CANDIDATES[0], timed, (f"the smallest model; none answers within p50 {TOLERABLE_P50_MS:.0f} / "
                                      f"p95 {TOLERABLE_P95_MS:.0f} ms here")
    others = [f"{name} ~{value_of(name, r).saved_pct:.0f} %" + ("" if r.tolerable() else " (too slow)")
              for name, r in timed.items() if name != best]
    return best, timed, "; ".join(["saves the most typing here" + (f" ({', '.join(others)})" if others else ""),
                                   *passed_over])


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
            report("measuring which model saves the most typing on this machine (first run only)")
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
    it. On a CPU that runs llama.cpp it is the model expected to save the most typing here, for every
    engine, so a model trained or evaluated by default is the one that serves; on a GPU, or where
    llama.cpp cannot run to measure, the per-device default (default_model.DEFAULT_BY_DEVICE)."""
    if device == "cpu" and llama_runtime.available() is None:
        tier = choose_tier(report)
        return PINNED_MODELS[tier.model], tier
    return default_model_for(device), None
