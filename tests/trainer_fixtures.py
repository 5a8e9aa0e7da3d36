"""Shared helpers for the trainer tests: a tiny random model and a small data-science repo."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

SNIPPETS = [
    "df = pd.read_csv('{name}.csv')\ndf = df.dropna()\nprint(df.head())\n",
    "X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.{n}, random_state={n})\n",
    "model = RandomForestClassifier(n_estimators={n}0)\nmodel.fit(X_train, y_train)\ny_pred = model.predict(X_test)\n",
    "fig, ax = plt.subplots(figsize=({n}, 4))\nsns.histplot(df['{name}'], ax=ax)\nplt.show()\n",
    "def load_{name}(path):\n    frame = pd.read_csv(path)\n    return frame[frame['{name}'] > {n}]\n",
    "scores = cross_val_score(LogisticRegression(C={n}), X, y, cv=5)\nprint(scores.mean())\n",
    "df['{name}_total'] = df['price'] * df['quantity'] + {n}\ngrouped = df.groupby('{name}').sum()\n",
    "class {title}Model:\n    def fit(self, X, y=None):\n        self.mean_ = X.mean() + {n}\n        return self\n",
    "print(accuracy_score(y_test, y_pred), classification_report(y_test, y_pred))\n",
    "for col in ['{name}', 'price', 'quantity']:\n    df[col] = df[col].fillna({n})\n",
]
NAMES = ["sales", "users", "churn", "revenue", "clicks", "orders", "visits", "prices", "stock", "weather",
         "traffic", "energy", "loans", "claims", "returns", "ratings", "tickets", "sessions", "emails", "leads"]
HEADER = "import pandas as pd\nimport matplotlib.pyplot as plt\nimport seaborn as sns\nfrom sklearn.model_selection import train_test_split\n\n"


def data_science_file(seed: int, snippets: int = 12) -> str:
    """A plausible, distinct data-science script (distinct enough to survive near-dedup)."""
    rng = random.Random(seed)
    parts = [HEADER]
    for _ in range(snippets):
        name = rng.choice(NAMES) + str(rng.randint(0, 99))
        parts.append(rng.choice(SNIPPETS).format(name=name, title=name.title(), n=rng.randint(1, 9)))
    return "\n".join(parts)


def notebook_json(cells: list[tuple[str, str]]) -> str:
    """An nbformat-4 notebook with (cell_type, source) cells."""
    return json.dumps({
        "nbformat": 4, "nbformat_minor": 5, "metadata": {},
        "cells": [{"cell_type": kind, "metadata": {}, "source": source.splitlines(keepends=True),
                   **({"outputs": [], "execution_count": None} if kind == "code" else {})}
                  for kind, source in cells],
    })


def make_repo(root: Path, files: int = 40) -> Path:
    """A small repo of distinct data-science scripts plus a notebook, a .gitignore and some junk."""
    (root / "analysis").mkdir(parents=True)
    for i in range(files):
        (root / "analysis" / f"script_{i:02d}.py").write_text(data_science_file(i))
    (root / "notebooks").mkdir()
    (root / "notebooks" / "explore.ipynb").write_text(notebook_json([
        ("markdown", "# Exploration"), ("code", "%matplotlib inline\nimport pandas as pd"),
        ("code", data_science_file(1000)),
    ]))
    (root / ".gitignore").write_text("scratch/\n")
    (root / "scratch").mkdir()
    (root / "scratch" / "tmp.py").write_text(data_science_file(2000))
    (root / ".venv" / "lib").mkdir(parents=True)
    (root / ".venv" / "lib" / "vendored.py").write_text(data_science_file(3000))
    (root / "setup.py").write_text("from setuptools import setup\nsetup(name='x')\n")  # no keyword
    return root


def build_tiny_model(path: Path, seed: int = 0) -> Path:
    from ghostframe.server.testing.random_model import build_random_model

    return build_random_model(path, shape="tiny", seed=seed)


def module_model_and_repo(files: int):
    """Module-scoped `tiny` (a random-weight model) and `repo` fixtures for a test module's runs:
    `tiny, repo = module_model_and_repo(files=16)` at its top."""

    @pytest.fixture(scope="module")
    def tiny(tmp_path_factory) -> Path:
        return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny")

    @pytest.fixture(scope="module")
    def repo(tmp_path_factory) -> Path:
        return make_repo(tmp_path_factory.mktemp("repos") / "repo", files=files)

    return tiny, repo


# --------------------------------------------------------------------------- faults for the resume tests
# Injected from outside the product code: a real SIGINT, a real failed write, a real SIGKILL.


def interrupt_at_step(monkeypatch, step: int) -> None:
    """Press Ctrl-C (a real SIGINT to this process) as optimizer step `step` finishes."""
    import os
    import signal

    from torch.optim.lr_scheduler import LRScheduler

    original = LRScheduler.step

    def step_then_interrupt(self, *args, **kwargs):
        original(self, *args, **kwargs)
        if self.last_epoch == step:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(LRScheduler, "step", step_then_interrupt)


def disk_full_at_save(monkeypatch, step: int) -> None:
    """Make the checkpoint write for `step` fail as a full disk does (ENOSPC)."""
    import errno
    import os

    from ghostframe.trainer.training import checkpoints

    original = checkpoints.save_file

    def save_file(tensors, filename, *args, **kwargs):
        if f"{checkpoints.PREFIX}{step:08d}.partial" in str(filename):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(filename))
        return original(tensors, filename, *args, **kwargs)

    monkeypatch.setattr(checkpoints, "save_file", save_file)


# `python -c KILL_AFTER_SAVE STEP ARGS...`: ghostframe-train, SIGKILLed right after checkpoint STEP is saved.
KILL_AFTER_SAVE = """
import os, signal, sys
import ghostframe.trainer.training.loop as loop
from ghostframe.trainer.cli import main
step, original = int(sys.argv[1]), loop.save_checkpoint
def save_then_die(*args, **kwargs):
    where = original(*args, **kwargs)
    if where.name == f"step-{step:08d}":
        os.kill(os.getpid(), signal.SIGKILL)
    return where
loop.save_checkpoint = save_then_die
sys.exit(main(sys.argv[2:]))
"""


def free_port() -> int:
    """A TCP port nothing listens on now (for torch.distributed's rendezvous)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def train_args(repo: Path, tiny: Path, output: Path, steps: int | None = 12, *extra: str,
               gate: bool = False) -> list[str]:
    """ghostframe-train options for a quick run of the tiny model on the small repo (without the
    evaluation gate unless `gate`: the tests of the gate run it; `steps` None leaves --max-steps out)."""
    return [str(repo), "--output", str(output), "--model", str(tiny), "--context-length", "64",
            "--batch-size", "4", *(["--max-steps", str(steps)] if steps else []), "--lr", "1e-2",
            "--eval-every", "4", "--save-every", "4", "--log-every", "2", "--eval-batches", "4", "--quiet",
            *([] if gate else ["--no-gate"]), *extra]
