"""`ghostframe-train`: the command line. Logs and progress go to stderr; exit 0 on success,
1 on an error with a message, 130 after Ctrl-C (a checkpoint is saved first)."""

from __future__ import annotations

import argparse
import json
import sys

from ghostframe.trainer.config import TrainConfig
from ghostframe.trainer.hygiene import DEFAULT_KEYWORDS, DEFAULT_MAX_FILE_BYTES
from ghostframe.trainer.split import DEFAULT_VALID_FRACTION

EPILOG = """examples:
  ghostframe-train ~/src/analysis ~/src/notebooks --output ~/adapters/mine
  ghostframe-train --dataset huggingface-course/codeparrot-ds-train --dataset-streaming \\
      --dataset-limit 50000 --output out --max-steps 2000
  ghostframe-train --output ~/adapters/mine --resume        # after a crash or Ctrl-C
  accelerate launch --num_processes 4 -m ghostframe.trainer SRC --output out   # several GPUs
  ghostframe-train --benchmark --batch-size 16              # throughput only
then: ghostframe-server --adapter ~/adapters/mine
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ghostframe-train",
        description="Fine-tune the completion model on your own data-science code (LoRA by default).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("sources", nargs="*", help="folders (git checkouts or plain) with .py and .ipynb files")
    p.add_argument("--output", "-o", help="folder for the adapter, metrics and checkpoints")
    p.add_argument("--model", help="base model: folder, .gguf or hub id (default: the embedded SmolLM2-135M-Instruct)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])

    d = p.add_argument_group("data")
    d.add_argument("--dataset", action="append", default=[], metavar="NAME_OR_PATH",
                   help="a Hugging Face data set of code: hub name, save_to_disk folder, or .jsonl/.parquet/.csv file")
    d.add_argument("--dataset-split", default="train")
    d.add_argument("--dataset-text-column", default="content")
    d.add_argument("--dataset-streaming", action="store_true", help="stream the data set instead of downloading it")
    d.add_argument("--dataset-limit", type=int, help="read at most this many records of each data set")
    d.add_argument("--keywords", default=",".join(DEFAULT_KEYWORDS),
                   help="comma-separated: keep files mentioning any of them (default: %(default)s)")
    d.add_argument("--no-filter", action="store_true", help="keep every file, data science or not")
    d.add_argument("--max-file-bytes", type=int, default=DEFAULT_MAX_FILE_BYTES)
    d.add_argument("--near-dedup-threshold", type=float, default=0.85, help="MinHash Jaccard; 0 disables")
    d.add_argument("--valid-fraction", type=float, default=DEFAULT_VALID_FRACTION)
    d.add_argument("--context-length", type=int, default=1024)

    t = p.add_argument_group("training")
    t.add_argument("--max-steps", type=int, help="optimizer steps (default: one pass over the data)")
    t.add_argument("--batch-size", type=int, default=8, help="blocks per device per micro-batch")
    t.add_argument("--grad-accum", type=int, default=1, help="micro-batches per optimizer step")
    t.add_argument("--learning-rate", "--lr", type=float, help="default 2e-4 (LoRA) or 5e-5 (--full)")
    t.add_argument("--weight-decay", type=float, default=0.01)
    t.add_argument("--warmup-steps", type=int, help="default 5%% of the steps")
    t.add_argument("--seed", type=int, default=42)
    t.add_argument("--full", action="store_true", help="full fine-tuning instead of LoRA")
    t.add_argument("--lora-r", type=int, default=16)
    t.add_argument("--lora-alpha", type=int, default=32)
    t.add_argument("--lora-dropout", type=float, default=0.05)
    t.add_argument("--lora-targets", default="all-linear",
                   help="comma-separated module names, or all-linear (every attention and MLP projection)")
    t.add_argument("--keytoken-weight", type=float, default=0.0,
                   help="weigh samples by 1 + W x (key tokens plt, pd, sk, fit, predict... in them), as in the HF course")
    t.add_argument("--chunk-tokens", type=int, default=4096, help="tokens per loss chunk; 0 uses the model's own loss")
    t.add_argument("--compile", action="store_true", help="torch.compile the decoder (CUDA)")

    b = p.add_argument_group("bookkeeping")
    b.add_argument("--eval-every", type=int, default=100)
    b.add_argument("--eval-batches", type=int, default=50, help="valid batches per evaluation (0: all)")
    b.add_argument("--save-every", type=int, default=100)
    b.add_argument("--log-every", type=int, default=10)
    b.add_argument("--keep-checkpoints", type=int, default=2)
    b.add_argument("--num-proc", type=int, help="processes for tokenization")
    b.add_argument("--resume", action="store_true", help="continue the run in --output from its last checkpoint")
    b.add_argument("--overwrite", action="store_true", help="discard an earlier run in --output")
    b.add_argument("--quiet", action="store_true", help="no progress bar")

    m = p.add_argument_group("benchmark")
    m.add_argument("--benchmark", action="store_true", help="print training tokens/s (and MFU on CUDA) and exit")
    m.add_argument("--benchmark-steps", type=int, default=10)
    m.add_argument("--benchmark-random-shape", choices=["tiny", "smollm2-135m"],
                   help="benchmark a random-weight model of this shape instead of --model")
    return p


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    datasets = [
        {"name_or_path": name, "split": args.dataset_split, "text_column": args.dataset_text_column,
         "streaming": args.dataset_streaming, "limit": args.dataset_limit}
        for name in args.dataset
    ]
    return TrainConfig(
        output=args.output or "", sources=list(args.sources), datasets=datasets, model=args.model,
        device=args.device, keywords=[k.strip() for k in args.keywords.split(",") if k.strip()],
        filter_keywords=not args.no_filter, max_file_bytes=args.max_file_bytes,
        near_dedup_threshold=args.near_dedup_threshold or None, valid_fraction=args.valid_fraction,
        context_length=args.context_length, batch_size=args.batch_size, grad_accum=args.grad_accum,
        max_steps=args.max_steps, learning_rate=args.learning_rate, weight_decay=args.weight_decay,
        warmup_steps=args.warmup_steps, seed=args.seed, full=args.full, lora_r=args.lora_r,
        lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout, lora_targets=args.lora_targets,
        keytoken_weight=args.keytoken_weight, chunk_tokens=args.chunk_tokens, compile=args.compile,
        eval_every=args.eval_every, eval_batches=args.eval_batches, save_every=args.save_every,
        log_every=args.log_every, keep_checkpoints=args.keep_checkpoints, num_proc=args.num_proc,
        resume=args.resume, overwrite=args.overwrite, quiet=args.quiet,
    )


# TrainConfig fields whose command-line options have other names.
FIELD_OPTIONS = {
    "filter_keywords": ("no_filter",),
    "datasets": ("dataset", "dataset_split", "dataset_text_column", "dataset_streaming", "dataset_limit"),
    "keytokens": (),
}


def explicit_options(argv: list[str] | None) -> set[str]:
    """The options the user actually typed (argparse destinations), defaults left out."""
    parser = build_parser()
    for action in parser._actions:
        action.default = argparse.SUPPRESS
    return set(vars(parser.parse_args(argv)))


def merge_with_saved_run(cfg: TrainConfig, typed: set[str]) -> TrainConfig:
    """On --resume, options not typed again come from the run's saved configuration.

    So `ghostframe-train --output OUT --resume` continues a run whatever options started it,
    while a typed option that changes the result is still refused by the trainer.
    """
    import dataclasses
    from pathlib import Path

    saved_file = Path(cfg.output).expanduser() / "work" / "config.json"
    if not (cfg.resume and saved_file.is_file()):
        return cfg
    saved = TrainConfig.from_json_file(saved_file)
    for f in dataclasses.fields(TrainConfig):
        if f.name in ("output", "resume", "overwrite"):
            continue
        if not typed & set(FIELD_OPTIONS.get(f.name, (f.name,))):
            setattr(cfg, f.name, getattr(saved, f.name))
    return cfg


def quiet_libraries() -> None:
    """Keep stderr to our own progress bar: no per-file bars from datasets or weight loading."""
    import warnings

    import datasets

    from ghostframe.server.cli import quiet_transformers

    datasets.disable_progress_bars()
    quiet_transformers()
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = merge_with_saved_run(config_from_args(args), explicit_options(argv))
    quiet_libraries()
    from ghostframe.server.model_loading import ModelLoadError
    from ghostframe.trainer.checkpoints import CheckpointError
    from ghostframe.trainer.corpus import CorpusError

    try:
        if args.benchmark:
            from ghostframe.trainer.benchmark import run_benchmark

            result = run_benchmark(cfg, steps=args.benchmark_steps, random_shape=args.benchmark_random_shape)
            print(json.dumps(result, indent=2))
            return 0
        if not args.output:
            build_parser().error("--output is required")
        from ghostframe.trainer.training import Interrupted, TrainingError, train

        try:
            train(cfg)
        except Interrupted as exc:
            print(f"ghostframe-train: {exc}", file=sys.stderr)
            return 130
        except TrainingError as exc:
            print(f"ghostframe-train: error: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("ghostframe-train: stopped without saving; the last finished checkpoint is intact. "
                  f"To continue: ghostframe-train --output {args.output} --resume", file=sys.stderr)
            return 130
    except (CorpusError, CheckpointError, ModelLoadError) as exc:
        print(f"ghostframe-train: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
