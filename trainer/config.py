"""The run's configuration: one dataclass, saved as JSON beside the checkpoints.

Each field declares its command-line option beside it (`option(...)`), so the command
line and the saved configuration cannot drift apart; the model options take their help
and choices from the one declaration in `server.inference.model_options`. On --resume
the saved configuration is the truth; options that would change the result (model,
data, optimisation) must match it, bookkeeping options may differ.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from ghostframe.server.inference.context import CONTEXT_MODES
from ghostframe.server.inference.model_options import ModelOptions
from ghostframe.server.inference.source_files.hygiene import DEFAULT_KEYWORDS, DEFAULT_MAX_FILE_BYTES
from ghostframe.trainer.data.corpus import CorpusOptions, DatasetSource
from ghostframe.trainer.data.dedup import DEFAULT_NEAR_THRESHOLD
from ghostframe.trainer.training.budget import parse_duration
from ghostframe.trainer.training.loss import DEFAULT_CHUNK_TOKENS, DEFAULT_KEYTOKENS
from ghostframe.trainer.data.split import DEFAULT_VALID_FRACTION, training_valid_fraction

# Options that may change between a run and its --resume (they do not change the result).
RESUMABLE_CHANGES = frozenset(
    {"sources", "datasets", "resume", "overwrite", "eval_every", "save_every", "log_every",
     "keep_checkpoints", "device", "compile", "num_proc", "quiet", "output", "gate", "gate_cases",
     "gate_prompt_tokens", "gate_context"}
)


def option(default, help: str, *flags: str, group: str = "training", factory=None, **argparse_kwargs):
    """A TrainConfig field and its command-line option, declared together (`cli.build_parser` reads them).

    `flags` default to --field-name; `argparse_kwargs` (type, action, choices, metavar) go to add_argument.
    """
    metadata = {"cli": {"help": help, "flags": flags, "group": group, "argparse": argparse_kwargs}}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def comma_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _threshold(value: str) -> float | None:
    return float(value) or None  # 0 disables


_MODEL_OPTIONS = {f.name: f for f in dataclasses.fields(ModelOptions)}


# Measured on the 2-core AVX2 CPU (README, "What training buys on a CPU"): LoRA at 4e-4 on one
# 1,024-token block per step. A GPU keeps batches of 8 (its throughput benchmark; quality not measured there).
DEFAULT_BATCH_SIZE = {"cpu": 1, "cuda": 8}
DEFAULT_LORA_LR = 4e-4
DEFAULT_FULL_LR = 5e-5


@dataclass
class TrainConfig:
    output: str = option("", "folder for the adapter, metrics and checkpoints", "--output", "-o", group="run")
    sources: list[str] = option(None, "folders (git checkouts or plain) with .py and .ipynb files",
                                group="positional", factory=list)
    datasets: list[dict] = field(default_factory=list)  # DatasetSource fields, from the --dataset options
    model: str | None = option(None, _MODEL_OPTIONS["model"].metadata["help"], group="model")  # None: embedded
    device: str = option(_MODEL_OPTIONS["device"].default, _MODEL_OPTIONS["device"].metadata["help"],
                         group="model", choices=_MODEL_OPTIONS["device"].metadata["choices"])
    engine: str = option(_MODEL_OPTIONS["engine"].default, "what runs the model in the evaluation gate: auto is "
                         "the engine the server uses on this machine (training itself always runs in torch)",
                         group="model", choices=_MODEL_OPTIONS["engine"].metadata["choices"])
    # data
    keywords: list[str] = option(
        None, f"comma-separated: keep files mentioning any of them (default: {','.join(DEFAULT_KEYWORDS)})",
        group="data", factory=lambda: list(DEFAULT_KEYWORDS), type=comma_list)
    filter_keywords: bool = option(True, "keep every file, data science or not", "--no-filter", group="data",
                                   action="store_false")
    max_file_bytes: int = option(DEFAULT_MAX_FILE_BYTES, "skip larger files", group="data", type=int)
    near_dedup_threshold: float | None = option(DEFAULT_NEAR_THRESHOLD, "MinHash Jaccard; 0 disables", group="data",
                                                type=_threshold)
    valid_fraction: float = option(DEFAULT_VALID_FRACTION, "share of files (by path hash) kept for validation",
                                   group="data", type=training_valid_fraction)
    context_length: int = option(1024, "tokens per training block", group="data", type=int)
    # optimisation
    batch_size: int | None = option(
        None, "blocks per device per micro-batch (default: 8 on a GPU; 1 on the CPU, where more and smaller "
        "steps learned more per minute)", type=int)
    grad_accum: int = option(1, "micro-batches per optimizer step", type=int)
    max_steps: int | None = option(None, "optimizer steps (default: one pass over the data)", type=int)
    budget: float | None = option(
        None, "wall-clock time for the whole run, like 90s, 20m or 1.5h: picks the steps from measured step "
        "and gate timings so that data, training and the gate fit (instead of --max-steps)",
        type=parse_duration, metavar="TIME")
    learning_rate: float | None = option(None, f"default {DEFAULT_LORA_LR:g} (LoRA) or {DEFAULT_FULL_LR:g} (--full)",
                                         "--learning-rate", "--lr", type=float)
    weight_decay: float = option(0.01, "AdamW weight decay", type=float)
    warmup_steps: int | None = option(None, "default 5%% of the steps", type=int)
    max_grad_norm: float = option(1.0, "gradient clipping norm (0: none)", type=float)
    seed: int = option(42, "seed of the weights' init, dropout and data order", type=int)
    full: bool = option(False, "full fine-tuning instead of LoRA", action="store_true")
    lora_r: int = option(16, "LoRA rank", type=int)
    lora_alpha: int = option(32, "LoRA alpha", type=int)
    lora_dropout: float = option(0.05, "LoRA dropout", type=float)
    lora_targets: str = option(
        "all-linear", "comma-separated module names, or all-linear (every attention and MLP projection)")
    lora_layers: int = option(
        0, "adapt only the top N decoder layers (0: all). Backward then stops at the lowest adapted layer, "
        "so a step costs less: the layers below only run forward", type=int)
    keytoken_weight: float = option(
        0.0, "key tokens (plt, pd, sk, fit, predict...) weigh 1 + W in the loss, after the HF course (which "
        "weighs whole samples; per token it also works at batch size 1)",
        type=float)
    keytokens: list[str] = option(None, "comma-separated key words for --keytoken-weight",
                                  factory=lambda: list(DEFAULT_KEYTOKENS), type=comma_list)
    chunk_tokens: int = option(DEFAULT_CHUNK_TOKENS, "tokens per loss chunk; 0 uses the model's own loss", type=int)
    compile: bool = option(False, "torch.compile the decoder (CUDA)", action="store_true")
    # the evaluation gate
    gate: bool = option(True, "skip the evaluation gate at the end (the adapter is then not judged, nor marked)",
                        "--no-gate", group="gate", action="store_false")
    gate_cases: int = option(200, "held-out lines the gate evaluates (fewer: faster, wider noise margin)",
                             group="gate", type=int)
    gate_prompt_tokens: int | None = option(None, "prompt tokens per gate case (default: the server's "
                                            "maxPromptTokens)", group="gate", type=int)
    gate_context: str | None = option(None, "what the gate's prompts get besides the file (default: what the "
                                      "server adds by default, repository and data context)", group="gate",
                                      choices=CONTEXT_MODES)
    # bookkeeping
    eval_every: int = option(100, "steps between validations", group="bookkeeping", type=int)
    eval_batches: int = option(50, "valid batches per evaluation (0: all)", group="bookkeeping", type=int)
    save_every: int = option(100, "steps between checkpoints", group="bookkeeping", type=int)
    log_every: int = option(10, "steps between train-loss lines", group="bookkeeping", type=int)
    keep_checkpoints: int = option(2, "checkpoints kept in the run folder", group="bookkeeping", type=int)
    num_proc: int | None = option(None, "processes for tokenization", group="bookkeeping", type=int)
    resume: bool = option(False, "continue the run in --output from its last checkpoint", group="bookkeeping",
                          action="store_true")
    overwrite: bool = option(False, "discard an earlier run in --output", group="bookkeeping", action="store_true")
    quiet: bool = option(False, "no progress bar", group="bookkeeping", action="store_true")

    def for_device(self, device: str) -> "TrainConfig":
        """This configuration with the device's defaults filled in where no value was given."""
        if self.batch_size is not None:
            return self
        return dataclasses.replace(self, batch_size=DEFAULT_BATCH_SIZE["cuda" if device.startswith("cuda") else "cpu"])

    def resolved_learning_rate(self) -> float:
        return self.learning_rate or (DEFAULT_FULL_LR if self.full else DEFAULT_LORA_LR)

    def corpus_options(self) -> CorpusOptions:
        return CorpusOptions.from_config(dataclasses.asdict(self))

    def dataset_sources(self) -> list[DatasetSource]:
        return [DatasetSource(**d) for d in self.datasets]

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
