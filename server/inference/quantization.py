"""Make a loaded model cheaper to run for inference: merge the adapter, int8 weights on CPU.

Decoding reads every weight once per token, so on a CPU it is bound by memory traffic; int8
weights are a quarter of float32's bytes. They are quantised per output channel here and
multiplied with aten's own int8 weight-only kernel. The libraries' int8 did not do: torch's
`quantize_dynamic` quantises activations too, and their outliers broke the model's answers;
torchao's weight-only int8 is only fast under torch.compile (BENCHMARKS.md, "int8 weights and
quality", has the figures).

A prompt's prefill (many rows) runs as one dense matmul on weights dequantised on the fly,
in `wide_dtype`: bfloat16 only pays where the CPU multiplies bf16 in hardware; elsewhere
(AVX2-only CPUs, most laptops) it is emulated, and slower than float32. Dequantising per call
costs no memory (keeping float32 copies would add 4 bytes per weight to int8's 1).
"""

from __future__ import annotations

import functools
from typing import Any

import torch
import torch.nn.functional as F

# Rows (tokens) up to which the int8 kernel wins; its time grows per row, while a
# dequantised bf16 matmul amortises over many rows (a long prompt's prefill).
KERNEL_MAX_ROWS = 24


class Int8WeightLinear(torch.nn.Module):
    """nn.Linear with int8 weights (one scale per output channel) and bf16 arithmetic."""

    def __init__(self, linear: torch.nn.Linear, wide_dtype: torch.dtype = torch.float32):
        super().__init__()
        self.wide_dtype = wide_dtype  # what more than KERNEL_MAX_ROWS rows are multiplied in
        weight = linear.weight.detach().float()
        scale = weight.abs().amax(dim=1).clamp(min=1e-8) / 127
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.register_buffer("weight_int8", torch.round(weight / scale[:, None]).clamp(-127, 127).to(torch.int8))
        self.register_buffer("scale", scale.to(torch.bfloat16))
        self.bias = None if linear.bias is None else torch.nn.Parameter(linear.bias.detach().clone(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, x.shape[-1])
        if rows.shape[0] <= KERNEL_MAX_ROWS:
            out = torch._weight_int8pack_mm(rows.to(torch.bfloat16), self.weight_int8, self.scale)
        else:
            dtype = self.wide_dtype
            out = F.linear(rows.to(dtype), self.weight_int8.to(dtype) * self.scale.to(dtype)[:, None])
        out = out.reshape(*x.shape[:-1], self.out_features).to(x.dtype)
        return out if self.bias is None else out + self.bias

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, int8 weights, "
                f"prefill in {str(self.wide_dtype).removeprefix('torch.')}")


def merge_adapter(model: Any) -> Any:
    """Fold a LoRA adapter into the base weights: same function, no extra matmuls per layer."""
    from peft import PeftModel  # peft takes seconds to import: only when an adapter is merged

    return model.merge_and_unload() if isinstance(model, PeftModel) else model


Replaced = list  # (parent module, attribute name, the original nn.Linear), to undo a quantisation


def quantize_int8(model: torch.nn.Module, wide_dtype: torch.dtype = torch.float32,
                  replaced: Replaced | None = None) -> torch.nn.Module:
    """Replace every nn.Linear (lm_head included; a tied embedding stays as it is), in place.

    Pass a list as `replaced` to keep the original layers, so `restore_float` can undo it
    (the precision choice times both before it settles).
    """
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is torch.nn.Linear:
                setattr(parent, name, Int8WeightLinear(child, wide_dtype))
                if replaced is not None:
                    replaced.append((parent, name, child))
    return model


def restore_float(replaced: Replaced) -> None:
    """Put back the nn.Linear layers that `quantize_int8` replaced."""
    for parent, name, child in replaced:
        setattr(parent, name, child)
    replaced.clear()


def set_wide_dtype(model: torch.nn.Module, dtype: torch.dtype) -> None:
    """The dtype every int8 layer multiplies a prefill (more than KERNEL_MAX_ROWS rows) in."""
    for module in model.modules():
        if isinstance(module, Int8WeightLinear):
            module.wide_dtype = dtype


def wide_dtype(model: torch.nn.Module) -> torch.dtype | None:
    return next((m.wide_dtype for m in model.modules() if isinstance(m, Int8WeightLinear)), None)


@functools.cache
def int8_kernel_works() -> bool:
    """Whether this torch build runs the int8 kernel; checked rather than assumed."""
    try:
        probe = Int8WeightLinear(torch.nn.Linear(32, 8))
        return bool(torch.isfinite(probe(torch.ones(1, 32))).all())
    except (RuntimeError, NotImplementedError, AttributeError):
        return False


def is_int8(model: torch.nn.Module) -> bool:
    return any(isinstance(module, Int8WeightLinear) for module in model.modules())
