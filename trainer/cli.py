"""`ghostframe-train`: the command line. Logs and progress go to stderr; exit 0 on success,
1 on an error with a message, 130 after Ctrl-C (a checkpoint is saved first)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

from ghostframe.trainer.config import TrainConfig

EPILOG = """examples:
  ghostframe-train ~/src/analysis ~/src/notebooks --output ~/adapters/mine
  ghostframe-train --dataset huggingface-course/codeparrot-ds-train --dataset-streaming \\
      --dataset-limit 50000 --output out --max-steps 2000
  ghostframe-train ~/src/analysis --output ~/adapters/mine --budget 20m   # steps that fit 20 minutes
  ghostframe-train --output ~/adapters/mine --resume        # after a crash or Ctrl-C
  accelerate launch --num_processes 4 -m ghostframe.trainer SRC --output out   # several GPUs
  ghostframe-train --benchmark --batch-size 16              # throughput only
Every run ends with the evaluation gate: base model vs. the new adapter on the run's held-out
lines, with the server's prompt settings. Its verdict (use it / no better / worse / too few) is
printed, recorded in ghostframe.json, and reported in OUTPUT/gate/report.md; the server loads only
an adapter the gate says to use (or any with --force-adapter).
then: ghostframe-server --adapter ~/adapters/mine
"""


GROUP_TITLES = {"positional": None, "run": None, "model": "model", "data": "data", "training": "training",
                "gate": "evaluation gate", "bookkeeping": "bookkeeping"}


def _add_config_options(parser: argparse.ArgumentParser, typed_only: bool) -> None:
    """One option per TrainConfig field, from the `option(...)` declared with the field."""
    groups = {None: parser}
    for f in dataclasses.fields(TrainConfig):
        cli = f.metadata.get("cli")
        if cli is None:
            continue
        title = GROUP_TITLES[cli["group"]]
        if title not in groups:
            groups[title] = parser.add_argument_group(title)
        default = f.default_factory() if f.default is dataclasses.MISSING else f.default
        kwargs = {"help": cli["help"], "default": argparse.SUPPRESS if typed_only else default, **cli["argparse"]}
        if cli["group"] == "positional":
            groups[title].add_argument(f.name, nargs="*", **kwargs)
        else:
            flags = cli["flags"] or ("--" + f.name.replace("_", "-"),)
            groups[title].add_argument(*flags, dest=f.name, **kwargs)


def build_parser(typed_only: bool = False) -> argparse.ArgumentParser:
    """The command line; with `typed_only` no option has a default, so parsing yields what was typed."""
    p = argparse.ArgumentParser(
        prog="ghostframe-train",
        description="Fine-tune the completion model on your own data-science code (LoRA by default).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_config_options(p, typed_only)
    d = p.add_argument_group("data set sources")
    no_default = {"default": argparse.SUPPRESS} if typed_only else {}
    d.add_argument("--dataset", action="append", metavar="NAME_OR_PATH", **(no_default or {"default": []}),
                   help="a Hugging Face data set of code: hub name, save_to_disk folder, or .jsonl/.parquet/.csv file")
    d.add_argument("--dataset-split", **(no_default or {"default": "train"}))
    d.add_argument("--dataset-text-column", **(no_default or {"default": "content"}))
    d.add_argument("--dataset-streaming", action="store_true", **no_default,
                   help="stream the data set instead of downloading it")
    d.add_argument("--dataset-limit", type=int, **no_default, help="read at most this many records of each data set")
    m = p.add_argument_group("benchmark")
    m.add_argument("--benchmark", action="store_true", **no_default,
                   help="print training tokens/s (and MFU on CUDA) and exit")
    m.add_argument("--benchmark-steps", type=int, **(no_default or {"default": 10}))
    m.add_argument("--benchmark-random-shape", choices=["tiny", "smollm2-135m"],
                   help="benchmark a random-weight model of this shape instead of --model")
    g = p.add_argument_group("llama.cpp")
    g.add_argument("--export-gguf", metavar="ADAPTER_DIR", **no_default,
                   help="write ADAPTER_DIR's LoRA as a llama.cpp GGUF adapter (adapter.gguf beside it) and exit; "
                        "with --model BASE.gguf or a pinned name, checked against that base")
    return p


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig) if hasattr(args, f.name)}
    values["datasets"] = [
        {"name_or_path": name, "split": args.dataset_split, "text_column": args.dataset_text_column,
         "streaming": args.dataset_streaming, "limit": args.dataset_limit}
        for name in args.dataset
    ]
    return TrainConfig(**values)


def typed_fields(argv: list[str] | None) -> set[str]:
    """The TrainConfig fields the user actually typed an option for (the --dataset options set `datasets`)."""
    typed = set(vars(build_parser(typed_only=True).parse_args(argv)))
    return {"datasets" if name.startswith("dataset") else name for name in typed}


def merge_with_saved_run(cfg: TrainConfig, typed: set[str]) -> TrainConfig:
    """On --resume, options not typed again come from the run's saved configuration.

    So `ghostframe-train --output OUT --resume` continues a run whatever options started it,
    while a typed option that changes the result is still refused by the trainer.
    """
    saved_file = Path(cfg.output).expanduser() / "work" / "config.json"
    if not (cfg.resume and saved_file.is_file()):
        return cfg
    saved = TrainConfig.from_json_file(saved_file)
    for f in dataclasses.fields(TrainConfig):
        if f.name not in ("output", "resume", "overwrite") and f.name not in typed:
            setattr(cfg, f.name, getattr(saved, f.name))
    return cfg


def end_with_gate(cfg: TrainConfig, report, run_started: float | None = None) -> None:
    """The evaluation gate on the finished run: verdict printed and recorded in ghostframe.json.
    Every verdict is a successful run; an adapter that does not win stays on disk, marked.
    With a --budget, the time the whole run took (from `run_started`) is recorded and said."""
    from ghostframe.server.inference.model_loading import ADAPTER_METADATA
    from ghostframe.trainer.evaluation.gate import USE_IT, describe
    from ghostframe.trainer.evaluation.train_gate import finish_with_gate

    output = Path(cfg.output).expanduser().resolve()
    meta_path = output / ADAPTER_METADATA
    budget = json.loads(meta_path.read_text()).get("budget")
    report("evaluation gate: base model vs. this adapter on the run's held-out lines")
    started = time.perf_counter()
    gate = finish_with_gate(cfg, budget["gate_cases"] if budget and budget["gate_cases"] else None, report)
    if budget:  # how the plan's estimate held up
        meta = json.loads(meta_path.read_text())
        finished = time.perf_counter()
        meta["budget"]["gate_seconds_actual"] = round(finished - started, 2)
        if run_started is not None:
            meta["budget"]["total_seconds_actual"] = round(finished - run_started, 2)
        meta_path.write_text(json.dumps(meta, indent=2))
    report(describe(gate))
    foreseen = json.loads(meta_path.read_text()).get("forecast") or {}
    if foreseen.get("verdict") in ("likely", "unlikely"):  # training.forecast, said before training
        report(f"before training the forecast said {foreseen['verdict']} to pass; the gate says {gate.verdict}")
    if budget and run_started is not None:
        from ghostframe.trainer.training.budget import format_duration

        report(f"budget {format_duration(budget['budget_seconds'])}: the run took "
               f"{format_duration(meta['budget']['total_seconds_actual'])}")
    if (output / "gate" / "report.md").is_file():
        report(f"gate report: {output / 'gate' / 'report.md'}")
    if gate.verdict != USE_IT:
        report(f"the adapter is kept in {output} but marked {gate.verdict!r}: ghostframe-server loads it "
               "only with --force-adapter")


def serving_hint(output: Path, model: str | None) -> str:
    """How to serve the adapter in `output` from a team server, for `ghostframe.engine` remote: llama-server
    takes its GGUF LoRA (adapter.gguf) at start, vLLM its safetensors folder by name."""
    from ghostframe.server.inference.default_model import gguf_of
    from ghostframe.server.inference.gguf_adapter import GGUF_LORA_NAME

    name = output.name
    found = gguf_of(model or "")
    base = str(found[0]) if found else "BASE_MODEL.gguf"
    return "\n".join([
        "to serve this adapter from a team server (ghostframe.engine remote):",
        f"  llama-server -m {base} --lora {output / GGUF_LORA_NAME} --parallel 4 --host 0.0.0.0 --port 8012",
        f"    then ghostframe.endpoint https://HOST:8012 and ghostframe.adapter {name!r} (the llama-server's "
        f"adapter, matched by its folder's name; --export-gguf {output} writes {GGUF_LORA_NAME} again)",
        f"  vllm serve BASE_MODEL_HF_ID --enable-lora --lora-modules {name}={output} --port 8000",
        f"    then ghostframe.endpoint https://HOST:8000, ghostframe.endpointApi openai, ghostframe.adapter {name!r}"])


def process_started() -> float:
    """When this process started, as a perf_counter reading: a --budget counts Python's start
    and the imports too (psutil comes with accelerate)."""
    import psutil

    return time.perf_counter() - max(0.0, time.time() - psutil.Process().create_time())


def main(argv: list[str] | None = None) -> int:
    # As a command, a --budget counts from the process's start; called as a function, from the call.
    started = process_started() if argv is None else time.perf_counter()
    args = build_parser().parse_args(argv)
    cfg = merge_with_saved_run(config_from_args(args), typed_fields(argv))
    from ghostframe.server.inference.quiet import quiet_libraries

    quiet_libraries(datasets=True)
    from ghostframe.server.inference.model_loading import ModelLoadError
    from ghostframe.trainer.training.checkpoints import CheckpointError
    from ghostframe.trainer.data.corpus import CorpusError
    from ghostframe.trainer.evaluation.predict import EvaluationError

    try:
        if args.export_gguf:
            from ghostframe.server.inference.gguf_adapter import base_gguf_of, export_gguf_lora

            print(export_gguf_lora(Path(args.export_gguf), base_gguf=base_gguf_of(cfg.model)))
            return 0
        if args.benchmark:
            from ghostframe.trainer.training.benchmark import run_benchmark

            result = run_benchmark(cfg, steps=args.benchmark_steps, random_shape=args.benchmark_random_shape)
            print(json.dumps(result, indent=2))
            return 0
        if not args.output:
            build_parser().error("--output is required")
        from ghostframe.trainer.training.budget import GateTiming
        from ghostframe.trainer.training.loop import Interrupted, TrainingError, train

        def measure_gate() -> GateTiming:
            from ghostframe.trainer.evaluation.train_gate import measure_gate_cost

            return GateTiming(**measure_gate_cost(cfg))

        # The context the gate's prompts will get, so that the run's forecast reads the curve measured with it.
        from ghostframe.trainer.evaluation.train_gate import gate_context

        try:
            final = train(cfg, measure_gate=measure_gate if cfg.gate else None, run_started=started,
                          gate_context=gate_context(cfg) if cfg.gate else None)
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
        if final and cfg.gate:  # the main process only (the others return no metrics)
            end_with_gate(cfg, lambda message: print(f"ghostframe-train: {message}", file=sys.stderr, flush=True),
                          started)
        if final:
            print(f"ghostframe-train: {serving_hint(Path(cfg.output).expanduser().resolve(), cfg.model)}",
                  file=sys.stderr)
    except (CorpusError, CheckpointError, ModelLoadError, EvaluationError) as exc:
        print(f"ghostframe-train: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
