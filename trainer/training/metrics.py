"""Where the numbers go: a JSON-lines file, TensorBoard events, and a loss plot at the end.

`metrics.jsonl` has one object per line: {"step", "split": "train"|"valid", "loss", ...}, and one
{"step", "split": "forecast", "verdict", "epochs", "text"} when the run says what its steps buy
(training.forecast), so that an editor following the file can tell the user before training ends.
On resume, lines after the checkpoint's step (written before the kill) are dropped so
the file reads like one uninterrupted run; TensorBoard gets the same via purge_step.
"""

from __future__ import annotations

import json
import math
from pathlib import Path


def perplexity(loss: float) -> float:
    return math.exp(min(loss, 50.0))


class MetricsLog:
    def __init__(self, jsonl_path: Path, tensorboard_dir: Path | None, resume_step: int = 0, enabled: bool = True):
        self.path = jsonl_path
        self.enabled = enabled
        self._writer = None
        if not enabled:
            return
        if resume_step and jsonl_path.is_file():
            kept = [line for line in jsonl_path.read_text().splitlines() if line and json.loads(line)["step"] <= resume_step]
            jsonl_path.write_text("".join(line + "\n" for line in kept))
        elif jsonl_path.exists():
            jsonl_path.unlink()
        if tensorboard_dir is not None:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._writer = SummaryWriter(str(tensorboard_dir), purge_step=resume_step or None)
            except ImportError:  # tensorboard is optional at run time
                self._writer = None

    def log(self, step: int, split: str, **values: float) -> None:
        if not self.enabled:
            return
        self._append({"step": step, "split": split, **values})
        if self._writer is not None:
            for key, value in values.items():
                self._writer.add_scalar(f"{split}/{key}", value, step)

    def event(self, step: int, split: str, **fields) -> None:
        """A record that is not a curve (text, verdicts): the JSON-lines file only, not TensorBoard."""
        if self.enabled:
            self._append({"step": step, "split": split, **fields})

    def _append(self, record: dict) -> None:
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def read_metrics(jsonl_path: Path) -> list[dict]:
    if not jsonl_path.is_file():
        return []
    return [json.loads(line) for line in jsonl_path.read_text().splitlines() if line]


def plot_losses(jsonl_path: Path, png_path: Path) -> Path | None:
    """Plot train and valid loss against step into `png_path` (None when there is nothing to plot)."""
    records = read_metrics(jsonl_path)
    train = [(r["step"], r["loss"]) for r in records if r["split"] == "train" and "loss" in r]
    valid = [(r["step"], r["loss"]) for r in records if r["split"] == "valid" and "loss" in r]
    if not train and not valid:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    if train:
        ax.plot(*zip(*train), label="train loss", alpha=0.8)
    if valid:
        ax.plot(*zip(*valid), "o-", label="valid loss")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("cross-entropy (nats/token)")
    ax.set_title("ghostframe-train")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(png_path, dpi=110)
    plt.close(fig)
    return png_path
