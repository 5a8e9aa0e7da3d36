"""`ghostframe`: terminal use of the server — `complete` a file, `bench latency`."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import sys
from importlib import resources
from pathlib import Path

from ghostframe.server.inference.model_options import ModelOptions, add_model_arguments
from ghostframe.server.inference.text import utf16_column

EXAMPLE = "sales_analysis.py"


def example_path() -> Path:
    return Path(str(resources.files("ghostframe.server") / "examples" / EXAMPLE))


def default_cursor(text: str) -> tuple[int, int]:
    """1-based (line, column) at the end of the last line that has code."""
    lines = text.split("\n")
    last = max((i for i, line in enumerate(lines) if line.strip()), default=0)
    return last + 1, len(lines[last]) + 1


def workspace_of(path: Path) -> Path:
    """The folder an editor would open for `path`: its git checkout, else its own folder."""
    folder = path.resolve().parent
    return next((p for p in (folder, *folder.parents) if (p / ".git").exists()), folder)


async def complete(args: argparse.Namespace) -> int:
    from ghostframe.server.tools.lsp_client import EditorClient, read_source

    path = example_path() if args.example else Path(args.file)
    if not path.is_file():
        raise SystemExit(f"ghostframe: {path} does not exist.")
    text = read_source(path)
    line, column = default_cursor(text)
    line, column = args.line or line, args.col or column
    lines = text.split("\n")
    if not 1 <= line <= len(lines) or not 1 <= column <= len(lines[line - 1]) + 1:
        raise SystemExit(f"ghostframe: line {line}, column {column} is outside {path}.")
    if args.workspace and not Path(args.workspace).is_dir():
        raise SystemExit(f"ghostframe: the workspace {args.workspace} is not a folder.")
    workspace = () if args.example else (Path(args.workspace),) if args.workspace else (workspace_of(path),)
    client = EditorClient()
    await client.start(ModelOptions.from_args(args).server_args(), {"maxNewTokens": args.max_new_tokens}, workspace)
    try:
        status = await client.wait_ready()
        if not status.get("ready"):
            print(f"ghostframe: the model did not load: {status.get('error')}", file=sys.stderr)
            return 1
        uri = path.resolve().as_uri()
        client.open(uri, text)
        suggestion, seconds = await client.inline(uri, line - 1, utf16_column(lines[line - 1], column - 1), invoked=True)
    finally:
        await client.close()
    print(f"{path.name}:{line}:{column}  ({status.get('model')} on {status.get('device')}, {seconds * 1000:.0f} ms)", file=sys.stderr)
    print(lines[line - 1][: column - 1] + "\x1b[2m" * sys.stdout.isatty() + suggestion + "\x1b[0m" * sys.stdout.isatty())
    return 0


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ghostframe", description="Local code completion for data-science Python.")
    sub = parser.add_subparsers(dest="command", required=True)

    c = sub.add_parser("complete", help="print the completion the server suggests at a position of a file")
    c.add_argument("file", nargs="?", help="a Python file")
    c.add_argument("--example", action="store_true", help="use the bundled pandas example file")
    c.add_argument("--line", type=int, help="1-based line (default: the last line with code)")
    c.add_argument("--col", type=int, help="1-based column (default: the end of that line)")
    c.add_argument("--max-new-tokens", type=int, default=64)
    c.add_argument("--workspace", help="workspace folder for repository context, as an editor sends it "
                   "(default: the file's git checkout, else its folder; none with --example)")
    add_model_arguments(c)

    b = sub.add_parser("bench", help="benchmarks")
    bsub = b.add_subparsers(dest="bench", required=True)
    lat = bsub.add_parser("latency", help="replay a typing session through the server vs plain model.generate")
    lat.add_argument("file", nargs="?", help="file to type (default: the bundled example)")
    lat.add_argument("--keystrokes", type=int, default=40)
    lat.add_argument("--max-new-tokens", type=int, default=32)
    lat.add_argument("--json", help="also write the report as JSON to this path")
    lat.add_argument("--pause-after-open", type=float, default=1.0,
                     help="seconds between opening the file and the first keystroke, as a user pauses (default 1)")
    lat.add_argument("--peer", default="xllamacpp", help="the llama-server for the peer row: a llama-server binary's "
                     "path or 'xllamacpp' (the llama.cpp build ghostframe runs, serving HTTP in its own process)")
    add_model_arguments(lat)
    typ = bsub.add_parser("typing", help="a typing session at several places of a large real file: ghostframe over "
                          "LSP and llama-server driven as llama.vscode drives it")
    from ghostframe.server.tools.typing_bench import add_arguments as add_typing_arguments

    add_typing_arguments(typ)
    add_model_arguments(typ)
    rep = bsub.add_parser("replay", help="characters saved at human speed: blocks of several files written again "
                          "in real time, through ghostframe over LSP and llama-server driven as llama.vscode drives it")
    from ghostframe.server.tools.replay_bench import add_arguments as add_replay_arguments

    add_replay_arguments(rep)
    add_model_arguments(rep)
    lod = bsub.add_parser("load", help="N people typing at once, each through a ghostframe server of their own with "
                          "--engine remote, against one llama-server (--parallel N)")
    from ghostframe.server.tools.load_bench import add_arguments as add_load_arguments

    add_load_arguments(lod)
    dec = bsub.add_parser("decode", help="prefill and decode speed of one model on each engine and on llama-server")
    from ghostframe.server.tools.decode_bench import add_arguments as add_decode_arguments

    add_decode_arguments(dec)
    soak = bsub.add_parser("soak", help="a long editing session over many files and a notebook: requests, errors, "
                           "latency per window and the server's memory at the start and end")
    from ghostframe.server.tools.soak import add_arguments as add_soak_arguments

    add_soak_arguments(soak)
    add_model_arguments(soak)
    ret = bsub.add_parser("retrieval", help="time repository retrieval and data-file notes on folders of code")
    ret.add_argument("folders", nargs="+", help="workspace folders to index (about 1,000 files is typical)")
    ret.add_argument("--requests", type=int, default=300, help="cursor positions to time (default 300)")
    ret.add_argument("--seed", type=int, default=0)
    ret.add_argument("--json", help="also write the report as JSON to this path")

    args = parser.parse_args(argv)
    if args.command == "complete" and not (args.file or args.example):
        parser.error("give a FILE or --example")
    if getattr(args, "bench", None) == "replay" and len(set(args.files)) < 2:
        parser.error("bench replay needs several files: one file's style is no measure")
    return args


# Each bench's module and function, imported only when that bench runs (most load torch or llama.cpp).
BENCHES = {"latency": ("bench", "latency"), "typing": ("typing_bench", "typing"), "replay": ("replay_bench", "replay"),
           "decode": ("decode_bench", "decode"), "soak": ("soak", "soak"), "retrieval": ("retrieval_bench", "retrieval"),
           "load": ("load_bench", "load")}


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.command == "complete":
        raise SystemExit(asyncio.run(complete(args)))
    module, function = BENCHES[args.bench]
    result = getattr(importlib.import_module(f"ghostframe.server.tools.{module}"), function)(args)
    raise SystemExit(asyncio.run(result) if inspect.iscoroutine(result) else result)


if __name__ == "__main__":
    main()
