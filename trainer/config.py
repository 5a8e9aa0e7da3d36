"""The run's configuration: one dataclass, saved as JSON beside the checkpoints.

On --resume the saved configuration is the truth; options that would change the
result (model, data, optimisation) must match it, bookkeeping options may differ.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from ghostframe.trainer.dedup import DEFAULT_NEAR_THRESHOLD
from ghostframe.trainer.hygiene import DEFAULT_KEYWORDS, DEFAULT_MAX_FILE_BYTES
from ghostframe.trainer.loss import DEFAULT_CHUNK_TOKENS, DEFAULT_KEYTOKENS
from ghostframe.trainer.split import DEFAULT_VALID_FRACTION

# Options that may change between a run and its --resume (they do not change the result).
RESUMABLE_CHANGES = frozenset(
    {"sources", "datasets", "resume", "overwrite", "eval_every", "save_every", "log_every",
     "keep_checkpoints", "device", "compile", "num_proc", "quiet", "output"}
)


@dataclass
class TrainConfig:
    output: str
    sources: list[str] = field(default_factory=list)
    datasets: list[dict] = field(default_factory=list)  # DatasetSource fields
    model: str | None = None  # None: the embedded default model
    device: str = "auto"
    # data
    keywords: list[str] = field(default_factory=lambda: list(DEFAULT_KEYWORDS))
    filter_keywords: bool = True
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    near_dedup_threshold: float | None = DEFAULT_NEAR_THRESHOLD
    valid_fraction: float = DEFAULT_VALID_FRACTION
    context_length: int = 1024
    # optimisation
    batch_size: int = 8  # blocks per device per micro-batch
    grad_accum: int = 1
    max_steps: int | None = None  # None: one pass over the train blocks
    learning_rate: float | None = None  # None: 2e-4 for LoRA, 5e-5 for --full
    weight_decay: float = 0.01
    warmup_steps: int | None = None  # None: 5% of max_steps
    max_grad_norm: float = 1.0
    seed: int = 42
    full: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_targets: str = "all-linear"  # every attention and MLP projection (not the output head)
    keytoken_weight: float = 0.0
    keytokens: list[str] = field(default_factory=lambda: list(DEFAULT_KEYTOKENS))
    chunk_tokens: int = DEFAULT_CHUNK_TOKENS
    compile: bool = False
    # bookkeeping
    eval_every: int = 100
    eval_batches: int = 50  # cap on valid batches per evaluation (0: all)
    save_every: int = 100
    log_every: int = 10
    keep_checkpoints: int = 2
    num_proc: int | None = None
    resume: bool = False
    overwrite: bool = False
    quiet: bool = False

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)

    @classmethod
    def from_json_file(cls, path: Path) -> "TrainConfig":
        data = json.loads(path.read_text())
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def differences(self, other: "TrainConfig") -> list[str]:
        """Result-changing options that differ between two configurations."""
        out = []
        for f in dataclasses.fields(self):
            if f.name in RESUMABLE_CHANGES:
                continue
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if mine != theirs:
                out.append(f"{f.name}: saved {theirs!r}, now {mine!r}")
        return out
