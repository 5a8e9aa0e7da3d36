"""Which pinned model `auto` serves on this CPU: the largest that keeps a typing session at typing speed.

Machines differ by 10x: a 2-core cloud VM and an 8-core laptop, AVX2 or AVX-512. So the choice
is measured, not guessed: each candidate, smallest first, is loaded in the llama.cpp engine and
timed (prefill per prompt token, decode per new token, best of two); its typing session is
estimated from those rates (`Rates.typing_ms`, calibrated against `ghostframe bench typing`),
and the largest candidate whose estimate meets the targets wins. A larger candidate is only
downloaded and timed when the one below it fits with room to spare. The choice is cached per
model file, CPU, its flags, thread count and llama.cpp build (delete `tier-choices.json` in the
cache to measure again); a measurement taken while other programs kept the CPU busy is used but
not cached.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from typing import Callable

from filelock import FileLock

from ghostframe.server.inference.default_model import PINNED_MODELS, cache_dir
from ghostframe.server.inference.machine import busy, cpu_flags, cpu_name

Reporter = Callable[[str], None]
CACHE_FILE = "tier-choices.json"
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
# Calibrated with `ghostframe bench typing` (BENCHMARKS.md, "Which model each machine serves"): the
# estimates fall within 0.8-1.35x of the measured p50 and p95 of the three pinned models on a 2-core CPU.
KEYSTROKE_PREFILL_TOKENS = 64
SUGGESTION_TOKENS = 16
SLOW_PREFILL_TOKENS = 256
SLOW_SUGGESTION_TOKENS = 20
TIMED_PREFILL_TOKENS = 256
TIMED_DECODE_TOKENS = 16


@dataclass(frozen=True)
class Rates:
    """A model's speed on this machine in the llama.cpp engine."""

    prefill_ms_per_token: float
    decode_ms_per_token: float

    def typing_ms(self) -> tuple[float, float]:
        """Estimated (p50, p95) ms per keystroke of a typing session (see the constants above; a cold
        request's prefill is capped by the engine's cold budget, engine.COLD_BUDGET_SECONDS)."""
        from ghostframe.server.inference.engine import COLD_BUDGET_SECONDS

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
    rates: dict[str, Rates] = field(default_factory=dict)  # the candidates that were timed
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
    from ghostframe.server.inference.default_model import pinned_gguf_path
    from ghostframe.server.inference.llama_runtime import LlamaRuntime, RuntimeConfig

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


def _cache_key(threads: int) -> str:
    import xllamacpp

    parts = [[PINNED_MODELS[m].gguf_sha256 for m in CANDIDATES], cpu_name(), cpu_flags(), threads,
             getattr(xllamacpp, "__version__", "?"), KEYSTROKE_PREFILL_TOKENS, SLOW_PREFILL_TOKENS]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:24]


def _read_cache() -> dict:
    try:
        return json.loads((cache_dir() / CACHE_FILE).read_text())
    except (OSError, ValueError):
        return {}


def _write_cache(key: str, choice: TierChoice) -> None:
    path = cache_dir() / CACHE_FILE
    try:
        with FileLock(str(path) + ".lock"):
            entries = _read_cache()
            entries[key] = {**asdict(choice), "cpu": cpu_name(), "cpu_flags": list(cpu_flags())}
            partial = path.with_suffix(".partial")
            partial.write_text(json.dumps(entries, indent=1))
            os.replace(partial, path)
    except OSError:
        pass  # a read-only cache only means measuring again next time


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
    """The pinned model `auto` means on this CPU, measured once per machine (see the module docstring)."""
    from ghostframe.server.inference.llama_runtime import physical_cores

    key = _cache_key(threads or physical_cores())
    if (entry := _read_cache().get(key)) and entry.get("model") in CANDIDATES:
        choice = TierChoice(entry["model"], "cached", {k: Rates(**v) for k, v in entry.get("rates", {}).items()},
                            entry.get("reason", ""))
        report(f"serving {choice.describe()}")
        return choice
    report("measuring which model this machine runs at typing speed (first run only)")
    model, rates, reason = pick(lambda name: measure(name, report))
    choice = TierChoice(model, "measured", rates, reason)
    if (load := busy()) is None:
        _write_cache(key, choice)
    else:
        choice = dataclasses.replace(choice, how=f"measured on a busy CPU (load {load:.1f}), not cached")
    report(f"serving {choice.describe()}")
    return choice
