"""`ghostframe-eval`: next-line completion accuracy on held-out files, base model vs adapters.

Progress goes to stderr; the summary table to stdout. Exit 0 on success, 1 on an error
with a message.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ghostframe.server.inference.model_options import ModelOptions, add_model_arguments
from ghostframe.server.inference.source_files.hygiene import DEFAULT_KEYWORDS, DEFAULT_MAX_FILE_BYTES
from ghostframe.server.lsp.settings import Settings
from ghostframe.trainer.evaluation.cases import DEFAULT_MIN_CHARS, DEFAULT_PER_FILE, DEFAULT_SEED
from ghostframe.server.inference.context import CONTEXT_MODES
from ghostframe.trainer.data.split import DEFAULT_VALID_FRACTION, evaluation_valid_fraction

EPILOG = """examples:
  ghostframe-eval ~/src/analysis --adapter ~/adapters/mine --output eval-out
  ghostframe-eval --adapter ~/adapters/mine --output eval-out      # the adapter's own recorded sources
  ghostframe-eval ~/src/analysis --adapter A --adapter B --cases 500 --output eval-out
  ghostframe-eval ~/src/analysis --adapter A --via-lsp --output eval-out   # through the real server
writes eval-out/results.json, eval-out/report.md and eval-out/chart.png
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ghostframe-eval",
        description="Measure next-line completion (exact match, edit similarity, empty share, latency) on the "
                    "files the training split holds out, for the base model and each adapter, on the same cases.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("folders", nargs="*",
                   help="source folders (default: the sources recorded by the first --adapter or --sources-from)")
    p.add_argument("--output", "-o", required=True, help="folder for results.json, report.md and chart.png")
    add_model_arguments(p, adapter="many")
    p.add_argument("--no-base", action="store_true", help="evaluate only the adapters, not the base model alone")
    p.add_argument("--sources-from", metavar="RUN", help="take sources and data options from this ghostframe-train output")
    p.add_argument("--merge", action="append", default=[], metavar="RESULTS_JSON",
                   help="instead of evaluating, combine results.json files made on the same cases into one report")

    c = p.add_argument_group("cases")
    c.add_argument("--cases", type=int, default=200, help="at most this many cases in all (default: %(default)s; 0: no limit)")
    c.add_argument("--per-file", type=int, default=DEFAULT_PER_FILE, help="lines sampled per file (default: %(default)s)")
    c.add_argument("--seed", type=int, default=DEFAULT_SEED)
    c.add_argument("--min-chars", type=int, default=DEFAULT_MIN_CHARS, help="skip lines shorter than this")

    d = p.add_argument_group("data (must match training, or the held-out files differ)")
    d.add_argument("--keywords", help=f"comma-separated data-science filter (default: {','.join(DEFAULT_KEYWORDS)})")
    d.add_argument("--no-filter", action="store_true", help="keep every file, data science or not")
    d.add_argument("--valid-fraction", type=evaluation_valid_fraction,
                   help=f"default {DEFAULT_VALID_FRACTION}; 1 evaluates every file (a set no training saw)")
    d.add_argument("--max-file-bytes", type=int, help=f"default {DEFAULT_MAX_FILE_BYTES}")

    g = p.add_argument_group("generation (the server's settings)")
    g.add_argument("--max-new-tokens", type=int, default=48)
    g.add_argument("--max-prompt-tokens", type=int, default=Settings().max_prompt_tokens)
    g.add_argument("--threads", type=int,
                   help="CPU threads for torch in process (default: one per core; on a busy machine 1 can be much faster)")
    g.add_argument("--via-lsp", action="store_true",
                   help="ask a real ghostframe server over stdio (textDocument/inlineCompletion) instead of in process")
    g.add_argument("--quiet", action="store_true", help="no progress bars")
    g.add_argument("--reuse-answers", action="store_true",
                   help="the base model reuses the answers (and latencies) that earlier runs stored for the same "
                        "prompts, weights, settings and inference code (ghostframe-train's gate stores them), and "
                        "stores its new ones; adapters are always evaluated afresh")

    x = p.add_argument_group("context (what the server adds to the prompt)")
    x.add_argument("--context", choices=CONTEXT_MODES, default="none",
                   help="repo: snippets from the sources' train-split files; data: column names of data files "
                        "the script reads; all: both (default: %(default)s)")
    x.add_argument("--column-lines", action="store_true",
                   help="score only lines that name a column of a data file the script reads (the data-aware set)")
    return p


def corpus_setup(args: argparse.Namespace):
    """(folders, datasets, options): typed ones first, else those the training run recorded.

    The run is --sources-from, else the first --adapter that has a recorded configuration,
    so by default the evaluation reproduces that adapter's split.
    """
    from ghostframe.server.inference.model_loading import read_adapter_metadata
    from ghostframe.trainer.data.corpus import CorpusOptions
    from ghostframe.trainer.evaluation.run import EvaluationError, run_sources

    candidates = [args.sources_from] if args.sources_from else args.adapter
    run = next((a for a in candidates if read_adapter_metadata(Path(a).expanduser()).get("config")), None)
    if args.sources_from and run is None:
        raise EvaluationError(f"{args.sources_from} has no ghostframe.json with a training configuration")
    folders, datasets, options = run_sources(run) if run else ([], [], CorpusOptions())
    if args.folders:
        folders, datasets = list(args.folders), []
    if not folders and not datasets:
        raise EvaluationError("give source FOLDERS, or an --adapter / --sources-from whose run recorded them")
    if args.keywords is not None:
        options.keywords = tuple(k.strip() for k in args.keywords.split(",") if k.strip())
    if args.no_filter:
        options.filter_keywords = False
    if args.valid_fraction is not None:
        options.valid_fraction = args.valid_fraction
    if args.max_file_bytes is not None:
        options.max_file_bytes = args.max_file_bytes
    return folders, datasets, options


def base_model_of(args: argparse.Namespace) -> str:
    """--model, else the pinned model the first adapter was trained on, so that `--adapter RUN` alone
    scores the adapter on its own base (not on the model `auto` picks here, which may be another),
    else "" (auto)."""
    from ghostframe.server.inference.default_model import pinned_named
    from ghostframe.server.inference.model_loading import read_adapter_metadata

    if args.model or not args.adapter:
        return args.model
    trained_on = read_adapter_metadata(Path(args.adapter[0]).expanduser()).get("base_model", {}).get("name")
    pinned = pinned_named(trained_on) if trained_on else None
    return pinned.name if pinned else ""


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from ghostframe.server.inference.model_loading import ModelLoadError
    from ghostframe.server.inference.quiet import quiet_libraries
    from ghostframe.trainer.data.corpus import CorpusError
    from ghostframe.trainer.evaluation.answer_cache import AnswerCache
    from ghostframe.trainer.evaluation.predict import no_progress, tqdm_progress
    from ghostframe.trainer.evaluation.run import (
        EvalConfig, EvaluationError, Generation, evaluate, merge_results, split_warnings, systems_for,
    )

    quiet_libraries(datasets=True)

    def say(message: str) -> None:
        print(f"ghostframe-eval: {message}", file=sys.stderr, flush=True)

    try:
        if args.merge:
            return finish(merge_results([read_results(f) for f in args.merge]), args, say)
        folders, datasets, options = corpus_setup(args)
        systems = systems_for(base_model_of(args), args.adapter, include_base=not args.no_base)
        if not systems:
            raise EvaluationError("--no-base needs at least one --adapter")
        cfg = EvalConfig(
            folders=folders, datasets=datasets, options=options, systems=systems,
            per_file=args.per_file, max_cases=args.cases or None, seed=args.seed, min_chars=args.min_chars,
            generation=Generation(args.max_new_tokens, args.max_prompt_tokens, multiline=False, device=args.device,
                                  threads=args.threads, precision=ModelOptions.from_args(args).cpu_precision,
                                  engine=args.engine, speculation=args.speculation,
                                  endpoint=ModelOptions.from_args(args).remote_endpoint()),
            via_lsp=args.via_lsp, context=args.context, column_lines=args.column_lines,
        )
        if args.reuse_answers and args.via_lsp:
            raise EvaluationError("--reuse-answers works in process only, not with --via-lsp")
        for warning in split_warnings(cfg):
            say(f"warning: {warning}")
        results = evaluate(cfg, no_progress if args.quiet else tqdm_progress, say,
                           cache=AnswerCache() if args.reuse_answers else None)
    except (EvaluationError, CorpusError, ModelLoadError) as exc:
        say(f"error: {exc}")
        return 1
    return finish(results, args, say)


def read_results(path: str) -> dict:
    import json

    from ghostframe.trainer.evaluation.run import EvaluationError

    try:
        return json.loads(Path(path).expanduser().read_text())
    except (OSError, ValueError) as exc:
        raise EvaluationError(f"cannot read results {path}: {exc}") from exc


def finish(results: dict, args: argparse.Namespace, say) -> int:
    """Write the reports and print the overall table."""
    from ghostframe.trainer.evaluation.report import overall_table, write_reports

    paths = write_reports(results, Path(args.output).expanduser())
    print("\n".join(overall_table(results)), flush=True)
    say("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
