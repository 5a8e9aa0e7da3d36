"""Checkpoints that survive SIGKILL, a full disk and a corrupt file.

A checkpoint is a folder `step-NNNNNNNN` holding the trainable weights (safetensors),
the optimizer and scheduler state, the RNG states and the run's counters. It is
written under a `.partial` name and renamed when complete, so a folder with the final
name is always whole; a failed write (out of disk space) removes only its own partial
folder, and older checkpoints are pruned only after a newer one is complete.
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
FAULT_ENV = "GHOSTFRAME_TRAIN_FAULT"  # test hook: "kill-after-save:N", "disk-full-at-save:N", "interrupt-at-step:N"


class CheckpointError(RuntimeError):
    """A checkpoint could not be written or read; the message says what is intact and what to do."""


@dataclass
class TrainingProgress:
    step: int = 0
    tokens_seen: int = 0
    elapsed_seconds: float = 0.0


def fault(kind: str, step: int) -> bool:
    """True when the test hook asks for fault `kind` at `step`."""
    wanted = os.environ.get(FAULT_ENV, "")
    return wanted == f"{kind}:{step}"


def checkpoint_dirs(root: Path) -> list[Path]:
    """Complete checkpoints, oldest first."""
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and p.name.startswith(PREFIX) and p.name[len(PREFIX):].isdigit()]
    return sorted(found, key=lambda p: int(p.name[len(PREFIX):]))


def _rng_state() -> dict:
    import numpy as np

    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    import numpy as np

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


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
        if fault("disk-full-at-save", progress.step):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(partial))
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
        state = torch.load(path / "training_state.pt", map_location="cpu", weights_only=False)
        progress = TrainingProgress(**json.loads((path / "progress.json").read_text()))
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
