"""What a timing was measured on: reports from the bench and the evaluation quote it.

The CPU's vector extensions decide which precision is fast (int8 weights, float32 or
bfloat16: see precision.py), so they are reported next to every number.
"""

from __future__ import annotations

import functools
import os
import platform
from pathlib import Path

# /proc/cpuinfo flag -> the name reports use; the ones that change which precision wins.
CPU_FLAGS = {"avx2": "AVX2", "avx512f": "AVX-512", "avx512_bf16": "AVX512-BF16", "amx_bf16": "AMX-BF16",
             "amx_int8": "AMX-INT8", "avx512_vnni": "AVX512-VNNI", "avx_vnni": "AVX-VNNI"}


def _cpuinfo() -> list[str]:
    try:
        return Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []


def cpu_name() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux)."""
    for line in _cpuinfo():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


@functools.cache
def cpu_flags() -> tuple[str, ...]:
    """The precision-relevant vector extensions this CPU has, e.g. ("AVX2",) or ("AVX2", "AVX-512", "AMX-BF16").

    Read from /proc/cpuinfo; elsewhere (macOS, Windows) from torch's view of the CPU, which
    only knows the widest vector unit it dispatches to.
    """
    for line in _cpuinfo():
        if line.startswith("flags"):
            have = set(line.split(":", 1)[1].split())
            return tuple(name for flag, name in CPU_FLAGS.items() if flag in have)
    try:
        import torch  # seconds to import, and this module is read where no model runs: only off Linux

        capability = torch.backends.cpu.get_cpu_capability()  # "AVX2", "AVX512", "DEFAULT", ...
    except (ImportError, AttributeError):
        return ()
    return {"AVX2": ("AVX2",), "AVX512": ("AVX2", "AVX-512")}.get(capability, ())


def busy() -> float | None:
    """The 1-minute load average when it exceeds the CPU count (timings are then unreliable), else None."""
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return None
    return load if load > (os.cpu_count() or 1) else None


def native_bf16() -> bool:
    """Whether the CPU multiplies bfloat16 in hardware (AVX512-BF16 or AMX); without it bf16 is emulated."""
    return any(flag in cpu_flags() for flag in ("AVX512-BF16", "AMX-BF16"))


def cpu_description() -> str:
    """"AMD EPYC (2 cores; AVX2)": the CPU as one line for reports and the status."""
    flags = ", ".join(cpu_flags()) or "no AVX2"
    return f"{cpu_name()} ({os.cpu_count()} cores; {flags})"


def environment(threads: int | None = None) -> dict:
    """Machine, CPU and its flags, torch threads, GPU name (None without CUDA) and versions."""
    import torch  # seconds to import: only when a report asks

    return {
        "machine": platform.machine(), "processor": cpu_name(), "cpu_flags": list(cpu_flags()),
        "cpu_count": os.cpu_count(), "torch_threads": threads or torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(), "torch": torch.__version__,
    }
