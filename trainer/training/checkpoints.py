"""Checkpoints that survive SIGKILL, a full disk and a corrupt file.

A checkpoint is a folder `step-NNNNNNNN` holding the trainable weights (safetensors),
the optimizer and scheduler state, the RNG states and the run's counters. It is
written under a `.partial` name and renamed when complete, so a folder with the final
name is always whole; a failed write (out of disk space) removes only its own partial
folder, and older checkpoints are pruned only after a newer one is complete.

Nothing in a checkpoint can carry code: weights are safetensors, counters are JSON, and
`training_state.pt` holds only tensors and plain types (the RNG states as lists of ints)
and is read with `torch.load(weights_only=True)`, which refuses any other pickled object,
so a tampered run folder cannot run code on --resume.
"""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

PREFIX = "step-"


class CheckpointError(RuntimeError):
    """A checkpoint could not be written or read; the message says what is intact and what to do."""


@dataclass
class TrainingProgress:
    step: int = 0
    tokens_seen: int = 0
    elapsed_seconds: float = 0.0


def checkpoint_dirs(root: Path) -> list[Path]:
    """Complete checkpoints, oldest first."""
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and p.name.startswith(PREFIX) and p.name[len(PREFIX):].isdigit()]
    return sorted(found, key=lambda p: int(p.name[len(PREFIX):]))


def _rng_state() -> dict:
    """Every RNG's state as tensors and plain lists, which weights_only loading accepts."""
    import numpy as np

    version, internal, gauss = random.getstate()
    kind, keys, position, has_gauss, cached = np.random.get_state()
    state = {
        "python": [version, list(internal), gauss],
        "numpy": [kind, keys.tolist(), int(position), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    import numpy as np

    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), position, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _read_progress(path: Path) -> TrainingProgress:
    """progress.json, checked: a step that is not this folder's, or counters of the wrong type, are damage."""
    data = json.loads((path / "progress.json").read_text())
    if not isinstance(data, dict) or set(data) != {"step", "tokens_seen", "elapsed_seconds"}:
        raise ValueError("progress.json does not hold step, tokens_seen and elapsed_seconds")
    step, tokens, seconds = data["step"], data["tokens_seen"], data["elapsed_seconds"]
    counters_ok = all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (step, tokens))
    if not counters_ok or isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
        raise ValueError(f"progress.json has counters of the wrong type or sign: {data}")
    if step != int(path.name[len(PREFIX):]):
        raise ValueError(f"progress.json says step {step} in the folder of step {path.name[len(PREFIX):]}")
    return TrainingProgress(step, tokens, float(seconds))


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().to("cpu").contiguous() for name, p in model.named_parameters() if p.requires_grad}


def save_checkpoint(
    root: Path, model: torch.nn.Module, optimizer: Any, scheduler: Any, progress: TrainingProgress, keep: int = 2
) -> Path:
    """Write checkpoint for `progress.step` atomically and prune to the newest `keep`."""
    final = root / f"{PREFIX}{progress.step:08d}"
    partial = root / f"{final.name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    try:
        partial.mkdir(parents=True)
        save_file(trainable_state(model), str(partial / "trainable.safetensors"))
        torch.save(
            {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": _rng_state()},
            partial / "training_state.pt",
        )
        (partial / "progress.json").write_text(json.dumps(progress.__dict__))
        shutil.rmtree(final, ignore_errors=True)
        os.replace(partial, final)
    except OSError as exc:
        shutil.rmtree(partial, ignore_errors=True)
        previous = checkpoint_dirs(root)
        intact = f"the last finished checkpoint {previous[-1]} is intact" if previous else "no earlier checkpoint exists"
        reason = "out of disk space" if exc.errno == errno.ENOSPC else f"{type(exc).__name__}: {exc}"
        raise CheckpointError(
            f"Could not save the checkpoint for step {progress.step} in {root} ({reason}); {intact}. "
            "Free some space (or point --output elsewhere) and run the same command with --resume."
        ) from exc
    for old in checkpoint_dirs(root)[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(path: Path, model: torch.nn.Module, optimizer: Any, scheduler: Any) -> TrainingProgress:
    """Restore a checkpoint into model, optimizer and scheduler, raising CheckpointError if it is damaged."""
    try:
        weights = load_file(str(path / "trainable.safetensors"))
        # weights_only: tensors and plain types only; a pickled object (code) is refused, not run.
        state = torch.load(path / "training_state.pt", map_location="cpu", weights_only=True)
        progress = _read_progress(path)
        params = dict(model.named_parameters())
        expected = {name for name, p in params.items() if p.requires_grad}
        if set(weights) != expected:
            raise ValueError(f"it holds {len(weights)} tensors where this model trains {len(expected)}")
        with torch.no_grad():
            for name, tensor in weights.items():
                params[name].copy_(tensor)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        _set_rng_state(state["rng"])
    except Exception as exc:
        raise CheckpointError(f"Checkpoint {path} is damaged or does not fit this run: {type(exc).__name__}: {exc}") from exc
    return progress
