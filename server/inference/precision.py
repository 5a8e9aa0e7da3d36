"""Which precision a model runs in on this CPU: int8 weights, float32 or bfloat16, measured once.

Which one is fastest depends on the CPU more than on the model. Int8 weights read a quarter
of float32's bytes per decoded token, but a bfloat16 matmul is only fast where the CPU has
AVX512-BF16 or AMX (elsewhere it is emulated), and some torch builds lack the int8 kernel.
So with `auto` the loaded model is timed on each candidate (a short prefill and a few decode
steps), the fastest for a typical request is kept, and the choice is cached per model and CPU
in the user cache (delete `precision-choices.json` there to measure again; a measurement
taken while other programs kept the CPU busy is used but not cached). The server, the
bench and the evaluation all go through `choose_precision`.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from ghostframe.server.inference import quantization
from ghostframe.server.inference.machine import busy, cpu_flags, cpu_name, native_bf16
from ghostframe.server.inference.model_options import PRECISIONS
from ghostframe.server.inference.progress import Reporter
from ghostframe.server.inference.user_cache import MeasurementCache

CHOICES = MeasurementCache("precision-choices.json")
# A typical request in a typing session: about 16 forward passes of 1-4 tokens (decode steps
# and draft checks), plus its share of prefills (a file opened, a region edited, the window
# moving), counted as 128 tokens. The candidate with the lowest estimate wins.
DECODE_STEPS_PER_REQUEST = 16
PREFILL_TOKENS_PER_REQUEST = 128
# What is timed per candidate; the best of two repeats, since other programs share the CPU.
TIMED_PREFILL_TOKENS = 128
TIMED_DECODE_STEPS = 4
TIMED_REPEATS = 2
# Below this a forward pass is mostly Python overhead: timings say nothing about the weights,
# so such models (the tests' tiny ones) take int8 without measuring, deterministically.
MIN_PARAMETERS_TO_MEASURE = 20_000_000


@dataclass(frozen=True)
class PrecisionChoice:
    """What the weights run in, why, and the timings behind it."""

    precision: str                  # int8 | float32 | bfloat16
    prefill: str                    # the dtype a prompt's prefill multiplies in (int8: dequantised weights)
    how: str                        # measured | cached | asked | default | GPU | no int8 kernel
    timings: dict[str, dict[str, float]] = field(default_factory=dict)  # candidate -> ms figures

    def describe(self) -> str:
        """"int8 (prefill in float32; measured: int8 A < float32 B ms per typical request)"."""
        detail = self.how
        if self.timings:
            ranked = sorted(self.timings.items(), key=lambda item: item[1]["request_ms"])
            detail += ": " + " < ".join(f"{name} {t['request_ms']:.0f}" for name, t in ranked) + " ms per typical request"
        prefill = f"prefill in {self.prefill}; " if self.precision == "int8" else ""
        return f"{self.precision} ({prefill}{detail})"


def _dtype(name: str):
    return {"float32": torch.float32, "bfloat16": torch.bfloat16}[name]


def default_prefill() -> str:
    """bf16 for int8 prefills where the CPU has it natively, else float32."""
    return "bfloat16" if native_bf16() else "float32"


def parameter_count(model: Any) -> int:
    return sum(p.numel() for p in model.parameters()) + sum(
        b.numel() for m in model.modules() if isinstance(m, quantization.Int8WeightLinear) for b in m.buffers())


def time_model(model: Any, prefill_tokens: int = TIMED_PREFILL_TOKENS, decode_steps: int = TIMED_DECODE_STEPS,
               repeats: int = TIMED_REPEATS) -> dict[str, float]:
    """Best-of-`repeats` milliseconds: prefill per token, one decode step, and a typical request."""
    from transformers import DynamicCache  # transformers takes seconds to import: only when timing

    vocab = model.config.vocab_size
    ids = torch.tensor([[(i * 7919 + 13) % vocab for i in range(prefill_tokens)]], device=model.device)
    prefill, decode = float("inf"), float("inf")
    with torch.inference_mode():
        for _ in range(repeats):
            cache = DynamicCache()
            started = time.perf_counter()
            logits = model(input_ids=ids, cache=cache, use_cache=True).logits
            prefill = min(prefill, time.perf_counter() - started)
            token = logits[:, -1:].argmax(-1)
            for _ in range(decode_steps):
                started = time.perf_counter()
                token = model(input_ids=token, cache=cache, use_cache=True).logits[:, -1:].argmax(-1)
                decode = min(decode, time.perf_counter() - started)
    per_token, step = prefill * 1000 / prefill_tokens, decode * 1000
    return {"prefill_ms_per_token": round(per_token, 3), "decode_ms": round(step, 2),
            "request_ms": round(per_token * PREFILL_TOKENS_PER_REQUEST + step * DECODE_STEPS_PER_REQUEST, 1)}


def _cache_key(fingerprint: str, model: Any) -> str:
    return CHOICES.key([fingerprint, parameter_count(model), cpu_name(), cpu_flags(), torch.get_num_threads(),
                        torch.__version__])


def _apply(model: Any, precision: str, prefill: str) -> Any:
    if precision == "int8":
        return quantization.quantize_int8(model, _dtype(prefill))
    return model.to(_dtype(precision)) if precision == "bfloat16" else model.to(torch.float32)


def measure(model: Any, report: Reporter = lambda _: None) -> tuple[Any, PrecisionChoice]:
    """Time every candidate this CPU could win with on `model` (float32, in place) and keep the fastest."""
    timings: dict[str, dict[str, float]] = {}
    report("timing float32 on this CPU")
    timings["float32"] = time_model(model)
    if native_bf16():
        report("timing bfloat16 on this CPU")
        timings["bfloat16"] = time_model(copy.deepcopy(model).to(_dtype("bfloat16")))
    replaced: quantization.Replaced = []
    if quantization.int8_kernel_works():
        report("timing int8 weights on this CPU")
        quantization.quantize_int8(model, _dtype("float32"), replaced)
        timings["int8"] = time_model(model)
        if native_bf16():
            quantization.set_wide_dtype(model, _dtype("bfloat16"))
            timings["int8+bf16 prefill"] = time_model(model)
    best = min(timings, key=lambda name: timings[name]["request_ms"])
    precision, prefill = {"int8+bf16 prefill": ("int8", "bfloat16"), "int8": ("int8", "float32")}.get(best, (best, best))
    if precision == "int8":
        quantization.set_wide_dtype(model, _dtype(prefill))
    else:
        quantization.restore_float(replaced)
        model = _apply(model, precision, prefill)
    return model, PrecisionChoice(precision, prefill, "measured", timings)


def choose_precision(model: Any, device: str, requested: str = "auto", fingerprint: str = "",
                     report: Reporter = lambda _: None) -> tuple[Any, PrecisionChoice]:
    """Convert a float32 `model` (on `device`) to the requested or the fastest precision.

    A GPU keeps the dtype it was loaded in. `requested` is one of PRECISIONS.
    """
    requested = (requested or "auto").lower()
    if requested not in PRECISIONS:
        raise ValueError(f"Unknown precision {requested!r}: use one of {', '.join(PRECISIONS)}.")
    if device != "cpu":
        name = str(next(model.parameters()).dtype).removeprefix("torch.")
        return model, PrecisionChoice(name, name, "GPU")
    has_linear = any(type(m) is torch.nn.Linear for m in model.modules())
    if requested in ("float32", "bfloat16"):
        return _apply(model, requested, requested), PrecisionChoice(requested, requested, "asked")
    if not has_linear:
        return model, PrecisionChoice("float32", "float32", "no linear layers")
    if not quantization.int8_kernel_works():
        report("this torch build has no int8 CPU kernel; running in float32")
        return model, PrecisionChoice("float32", "float32", "no int8 kernel")
    if requested == "int8":
        report("quantizing to int8")
        return _apply(model, "int8", default_prefill()), PrecisionChoice("int8", default_prefill(), "asked")
    if parameter_count(model) < MIN_PARAMETERS_TO_MEASURE:
        return _apply(model, "int8", default_prefill()), PrecisionChoice("int8", default_prefill(), "default")
    key = _cache_key(fingerprint, model)
    if (entry := CHOICES.get(key)) and entry.get("precision") in PRECISIONS[1:]:
        choice = PrecisionChoice(entry["precision"], entry["prefill"], "cached", entry.get("timings", {}))
        report(f"running in {choice.describe()}")
        return _apply(model, choice.precision, choice.prefill), choice
    report("measuring which precision is fastest on this CPU (first run only)")
    model, choice = measure(model, report)
    if (load := busy()) is None:
        CHOICES.put(key, asdict(choice))
    else:  # other programs skewed the timings: use them now, measure again next time
        choice = dataclasses.replace(choice, how=f"measured on a busy CPU (load {load:.1f}), not cached")
    report(f"running in {choice.describe()}")
    return model, choice
