"""`ghostframe bench load`: N people typing at once against one team server.

For each N of `--typists`, one llama-server (xllamacpp's, `--parallel N`: a slot per typist) serves the
model, and N typists each drive a ghostframe LSP server of their own with `--engine remote` against
it, as N laptops would. Each typist writes blocks of the files again at human speed with
`bench replay`'s editor and keystroke times (`replay_bench.replay_file`), each with a seed of its own
so that they do not type in step. Reported per N: each keystroke's answer time (p50/p95 over all
typists, and the worst typist's p95), the share of keystrokes answered before the next one, characters
saved, and failed requests by state. Each typist's server keeps a slot of its own (remote_slot), so
N slots serve N typists without evicting each other's prompts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from ghostframe.server.inference.keystroke_timing import TypingStyle
from ghostframe.server.testing.llama_server import LlamaServer
from ghostframe.server.tools.llama_peer import gguf_for
from ghostframe.server.tools.replay_bench import FilePlan, GhostframeReplaySide, HumanClock, plan_file, replay_file
from ghostframe.server.tools.replay_editor import Tally

DEFAULT_MODEL = "smollm2-135m"


def typist_counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--typists takes counts such as 1,4,16, not {text!r}") from None
    if not counts or any(n < 1 or n > 256 for n in counts):
        raise argparse.ArgumentTypeError("--typists takes counts from 1 to 256, such as 1,4,16")
    return counts


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", help="Python files whose blocks the typists write again")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="the GGUF llama-server serves, and whose tokenizer "
                        f"the typists' servers read: a pinned model or a .gguf file (default {DEFAULT_MODEL})")
    parser.add_argument("--typists", type=typist_counts, default=[1, 4, 16],
                        help="how many people type at once, one run per count (default 1,4,16)")
    parser.add_argument("--places", type=int, default=2, help="places per file (default 2)")
    parser.add_argument("--lines-per-place", type=int, default=3, help="lines written at each place (default 3)")
    parser.add_argument("--median-ms", type=float, default=TypingStyle.median_ms,
                        help="the typists' median time per character (default 150)")
    parser.add_argument("--seed", type=int, default=0, help="typist i plays the keystroke times of seed + i")
    parser.add_argument("--speedup", type=float, default=1.0,
                        help="play the typists' timeline this many times faster than real time (for tests; default 1)")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--max-prompt-tokens", type=int, default=1024,
                        help="the typists' prompt window, ghostframe.maxPromptTokens (default 1024)")
    parser.add_argument("--server-threads", type=int, help="llama-server's threads (default: all cores)")
    parser.add_argument("--server-batch", type=int, default=512,
                        help="llama-server's --batch-size and --ubatch-size (default 512)")
    parser.add_argument("--json", help="also write the report as JSON to this path")


async def _replay(side: GhostframeReplaySide, plans: list[FilePlan], style: TypingStyle, speedup: float) -> Tally:
    tally = Tally()
    for plan in plans:
        tally.add(await replay_file(side, plan, style, HumanClock(speedup)))
    return tally


async def run_typists(url: str, gguf: Path, plans: list[list[FilePlan]], style: TypingStyle, speedup: float,
                      settings: dict) -> dict:
    """Every typist's replay at once against the server at `url` (all servers started first, so that
    everyone types at the same time); the row of the report."""
    args = ["--engine", "remote", "--endpoint", url, "--model", str(gguf), "--log-level", "WARNING"]
    sides = [GhostframeReplaySide(args, settings) for _ in plans]
    await asyncio.gather(*(side.start() for side in sides))
    tallies = await asyncio.gather(*(_replay(side, own, style, speedup) for side, own in zip(sides, plans)))
    statuses = await asyncio.gather(*(side.close() for side in sides))
    total = Tally()
    failures: dict[str, int] = {}
    for tally, status in zip(tallies, statuses):
        total.add(tally)
        for state, count in (status.get("remoteFailures") or {}).items():
            failures[state] = failures.get(state, 0) + count
    summary = total.summary()
    worst = max((tally.summary()["p95_ms"] or 0.0) for tally in tallies)
    return {"typists": len(plans), "p50_ms": summary["p50_ms"], "p95_ms": summary["p95_ms"], "worst_typist_p95_ms": worst,
            "chars_saved_pct": summary["chars_saved_pct"], "requests": summary["requests"],
            "answered": summary["answered"], "superseded": summary["superseded"],
            "errors": sum(failures.values()), "errors_by_state": failures}


async def load(args: argparse.Namespace) -> int:
    from ghostframe.server.inference.llama_runtime import physical_cores
    from ghostframe.server.inference.machine import cpu_description
    from ghostframe.server.tools.lsp_client import read_source

    gguf, model_name = gguf_for(args.model or DEFAULT_MODEL)
    style = TypingStyle(median_ms=args.median_ms)
    texts = [(Path(f).name, read_source(Path(f))) for f in args.files]
    threads = args.server_threads or physical_cores()
    report = {"model": model_name, "cpu": cpu_description(), "server_threads": threads, "seed": args.seed,
              "server_batch": args.server_batch, "max_prompt_tokens": args.max_prompt_tokens,
              "speedup": args.speedup, "files": [name for name, _ in texts], "places": args.places,
              "lines_per_place": args.lines_per_place, "style": {"median_ms": style.median_ms}, "rows": []}
    for n in args.typists:
        plans = [[plan_file(name, text, args.places, args.lines_per_place, args.seed + typist, style)
                  for name, text in texts] for typist in range(n)]
        print(f"{n} typists against one llama-server (--parallel {n}, {threads} threads) ...", file=sys.stderr)
        server = LlamaServer.start(gguf, parallel=n, threads=threads, slot_tokens=4096, batch=args.server_batch)
        try:
            settings = {"maxNewTokens": args.max_new_tokens, "maxPromptTokens": args.max_prompt_tokens}
            report["rows"].append(await run_typists(server.url, gguf, plans, style, args.speedup, settings))
        finally:
            server.stop()
    print_report(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


def print_report(report: dict) -> None:
    print(f"\nghostframe bench load — {report['model']} on one llama-server ({report['server_threads']} threads, "
          f"batch {report['server_batch']}), prompts of up to {report['max_prompt_tokens']} tokens, "
          f"{len(report['files'])} files x {report['places']} places x {report['lines_per_place']} lines per typist"
          + (f", {report['speedup']:g}x real time" if report["speedup"] != 1 else "") + f"; {report['cpu']}")
    print(f"{'typists':>8}{'p50 ms':>9}{'p95 ms':>9}{'worst p95':>10}{'p95 / 1':>9}{'answered %':>11}{'saved %':>9}"
          f"{'requests':>10}{'errors':>8}  by state")
    alone = next((row["p95_ms"] for row in report["rows"] if row["typists"] == 1), None)
    for row in report["rows"]:
        ratio = f"{row['p95_ms'] / alone:.2f}" if alone and row["p95_ms"] else "-"
        answered = round(100 * row["answered"] / row["requests"], 1) if row["requests"] else None
        cells = [row["typists"], row["p50_ms"], row["p95_ms"], row["worst_typist_p95_ms"], ratio, answered,
                 row["chars_saved_pct"], row["requests"], row["errors"]]
        widths = (8, 9, 9, 10, 9, 11, 9, 10, 8)
        states = ", ".join(f"{state} {count}" for state, count in sorted(row["errors_by_state"].items()))
        print("".join(f"{'-' if cell is None else cell:>{w}}" for cell, w in zip(cells, widths)) + f"  {states}")
