"""ghostframe's cache folder, and the two ways things are kept there across runs.

Several processes (servers, a trainer, an evaluation) may fill the same cache at once. What is made
once — a fetched model, a converted folder, a tokenizer, an exported LoRA — is made under a file lock
and moved into place in one step (`build_once`); measurements of this machine are small JSON files
rewritten under a lock and replaced in one step (`MeasurementCache`). Either way no reader sees half
of anything, and a failed attempt leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

from filelock import FileLock
from platformdirs import user_cache_dir

from ghostframe.server.inference.machine import cpu_flags, cpu_name


def cache_dir() -> Path:
    """Where ghostframe keeps models it fetched or converted and what it measured (GHOSTFRAME_CACHE_DIR
    overrides)."""
    path = Path(os.environ.get("GHOSTFRAME_CACHE_DIR") or user_cache_dir("ghostframe"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def build_once(target: Path, build: Callable[[Path], Any]) -> Path:
    """`target` (a file or a folder), made by `build(path)` when it does not exist yet.

    Under a lock, so that processes racing for it make it once; at a temporary path beside it that
    is moved to `target` only when `build` returns, so that nobody reads it half made.
    """
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{target}.lock"):
        if target.exists():
            return target
        work = Path(tempfile.mkdtemp(prefix=f"{target.name}-", suffix=".partial", dir=target.parent))
        try:
            build(work / target.name)
            os.replace(work / target.name, target)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return target


class MeasurementCache:
    """One JSON file of measurements taken on this machine, an entry per key (`key`: a hash of
    everything the measurement depends on). Delete the file to measure again."""

    def __init__(self, file_name: str):
        self.file_name = file_name

    @staticmethod
    def key(parts: list) -> str:
        return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:24]

    @property
    def path(self) -> Path:
        return cache_dir() / self.file_name

    def entries(self) -> dict[str, dict]:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}

    def get(self, key: str) -> dict | None:
        return self.entries().get(key)

    def put(self, key: str, entry: dict) -> None:
        """Keep `entry` (with the CPU it was measured on, for a person reading the file) beside other
        processes' entries. A cache that cannot be written only means measuring again next time."""
        path = self.path
        try:
            with FileLock(f"{path}.lock"):
                entries = {**self.entries(), key: {**entry, "cpu": cpu_name(), "cpu_flags": list(cpu_flags())}}
                partial = path.with_suffix(".partial")
                partial.write_text(json.dumps(entries, indent=1))
                os.replace(partial, path)
        except OSError:
            pass
