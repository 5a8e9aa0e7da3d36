"""Shared helpers for the trainer tests: a tiny random model and a small data-science repo."""

from __future__ import annotations

import json
import random
from pathlib import Path

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
    from ghostframe.server.random_model import build_random_model

    return build_random_model(path, shape="tiny", seed=seed)
