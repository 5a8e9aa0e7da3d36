"""`ghostframe bench soak`: a long replayed editing session, to show the server neither errs nor grows.

It drives the real server as an editor would, over many real files and a notebook: open,
type (one incremental change and one completion request per keystroke), cancel a request,
supersede one with a newer one, change settings, close. It prints the requests served,
the errors, p50/p95 latency per time window, and the server's resident memory at the start
and end with a verdict: after a warm-up cycle, memory must stay within a fixed bound.
Every loop is bounded: by the deadline, keystrokes per file, and a timeout per request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from lsprotocol import types

DEFAULT_CORPUS = Path.home() / ".cache" / "ghostframe-corpora" / "imbalanced_learn__0.14.2"  # ../shared/corpora/fetch.sh
KEYSTROKES_PER_FILE = 12
MAX_FILE_BYTES = 200_000
REQUEST_TIMEOUT = 120.0
GROWTH_BOUND_MB = 64.0  # RSS may rise this much over the warm-up baseline (allocator pools, caches)


@dataclass
class Window:
    """What happened in one time window of the soak."""

    seconds: list[float] = field(default_factory=list)
    errors: int = 0
    cancelled: int = 0
    rss_mb: float | None = None


def corpus_files(corpus: Path | None) -> list[Path]:
    from ghostframe.server.tools.terminal_cli import example_path

    files = [example_path()]
    if corpus is not None:
        files += sorted(p for p in corpus.rglob("*.py") if p.is_file() and 0 < p.stat().st_size <= MAX_FILE_BYTES)
    return files


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def lsp_end(text: str) -> tuple[int, int]:
    from ghostframe.server.inference.text import lsp_lines, utf16_column

    lines = lsp_lines(text) or [""]
    last = lines[-1]
    if last.endswith(("\n", "\r")):
        return len(lines), 0
    return len(lines) - 1, utf16_column(last, len(last))


class Soak:
    def __init__(self, client, args: argparse.Namespace):
        self.client = client
        self.args = args
        self.started = time.monotonic()
        self.deadline = self.started + args.minutes * 60
        self.window_seconds = args.window_minutes * 60
        self.windows: dict[int, Window] = {}
        self.rng = random.Random(args.seed)
        self.next_id = 0

    def window(self) -> Window:
        return self.windows.setdefault(int((time.monotonic() - self.started) // self.window_seconds), Window())

    def time_left(self) -> bool:
        return time.monotonic() < self.deadline

    async def rss(self) -> float | None:
        return (await self.client.server_status()).get("held", {}).get("rssMb")

    async def complete(self, uri: str, text: str) -> None:
        """One completion request at the end of `text`, timed; errors counted, never raised."""
        window = self.window()
        try:
            _, seconds = await asyncio.wait_for(self.client.inline(uri, *lsp_end(text)), REQUEST_TIMEOUT)
            window.seconds.append(seconds)
        except Exception as exc:  # noqa: BLE001 - the soak reports every failure
            window.errors += 1
            print(f"[soak] error on {uri}: {type(exc).__name__}: {exc}", file=sys.stderr)

    async def cancelled_request(self, uri: str, text: str) -> None:
        """A request cancelled right after it was sent, as an editor does when the user types on."""
        self.next_id += 1
        msg_id = f"soak-cancel-{self.next_id}"
        line, character = lsp_end(text)
        pending = self.client.protocol.send_request_async(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=line, character=character),
            context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic)), msg_id=msg_id)
        self.client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=msg_id))
        try:
            await asyncio.wait_for(pending, REQUEST_TIMEOUT)
        except asyncio.TimeoutError:
            self.window().errors += 1
            print(f"[soak] a cancelled request was never answered ({uri})", file=sys.stderr)
            return
        except Exception:  # noqa: BLE001 - RequestCancelled is the expected answer
            pass
        self.window().cancelled += 1

    async def type_file(self, path: Path, index: int) -> None:
        """Open a file cut inside one of its lines, type the rest of that line, then close it."""
        from ghostframe.server.tools.lsp_client import read_source

        try:
            source = read_source(path)
        except SystemExit:
            return  # not UTF-8: an editor would not send it either
        lines = source.split("\n")
        code = [i for i, line in enumerate(lines) if len(line.strip()) > 4]
        if not code:
            return
        row = self.rng.choice(code)
        cut = self.rng.randrange(1, len(lines[row]))
        prefix = "\n".join(lines[:row] + [lines[row][:cut]])
        typed = lines[row][cut:cut + KEYSTROKES_PER_FILE]
        uri = f"file:///soak/{index}/{path.name}"
        self.client.open(uri, prefix)
        text = prefix
        for step, char in enumerate(typed):
            if not self.time_left():
                break
            self.client.type_text(uri, *lsp_end(text), char)
            text += char
            if step == 3:
                await self.cancelled_request(uri, text)
            elif step == 6:  # two requests back to back: the newer supersedes the older
                await asyncio.gather(self.complete(uri, text), self.complete(uri, text))
            else:
                await self.complete(uri, text)
        self.client.text_document_did_close(types.DidCloseTextDocumentParams(
            text_document=types.TextDocumentIdentifier(uri=uri)))

    async def notebook(self, path: Path, index: int) -> None:
        """A notebook of Python cells from `path`, a markdown and an R cell: open, type, complete, close."""
        from ghostframe.server.tools.lsp_client import read_source

        try:
            chunks = [c for c in read_source(path).split("\n\n") if c.strip()][:4] or ["import pandas as pd"]
        except SystemExit:
            chunks = ["import pandas as pd"]
        notebook_uri = f"file:///soak/{index}/notebook.ipynb"
        cells = [(types.NotebookCellKind.Code, "python", chunk) for chunk in chunks]
        cells += [(types.NotebookCellKind.Markup, "markdown", "# Notes"),
                  (types.NotebookCellKind.Code, "r", "data <- data.frame(a = 1)"),
                  (types.NotebookCellKind.Code, "python", "summary = ")]
        uris = [f"vscode-notebook-cell:/soak/{index}/notebook.ipynb#W{i}" for i in range(len(cells))]
        self.client.notebook_document_did_open(types.DidOpenNotebookDocumentParams(
            notebook_document=types.NotebookDocument(uri=notebook_uri, notebook_type="jupyter-notebook", version=1,
                                                     cells=[types.NotebookCell(kind=k, document=u)
                                                            for (k, _, _), u in zip(cells, uris)]),
            cell_text_documents=[types.TextDocumentItem(uri=u, language_id=lang, version=1, text=t)
                                 for (_, lang, t), u in zip(cells, uris)]))
        text, last = cells[-1][2], uris[-1]
        for version, char in enumerate("df.head(", start=2):
            if not self.time_left():
                break
            where = types.Position(*lsp_end(text))
            self.client.notebook_document_did_change(types.DidChangeNotebookDocumentParams(
                notebook_document=types.VersionedNotebookDocumentIdentifier(uri=notebook_uri, version=version),
                change=types.NotebookDocumentChangeEvent(cells=types.NotebookDocumentCellChanges(text_content=[
                    types.NotebookDocumentCellContentChanges(
                        document=types.VersionedTextDocumentIdentifier(uri=last, version=version),
                        changes=[types.TextDocumentContentChangePartial(range=types.Range(start=where, end=where),
                                                                        text=char)])]))))
            text += char
            if version == 4:
                await self.cancelled_request(last, text)
            else:
                await self.complete(last, text)
        self.client.notebook_document_did_close(types.DidCloseNotebookDocumentParams(
            notebook_document=types.NotebookDocumentIdentifier(uri=notebook_uri),
            cell_text_documents=[types.TextDocumentIdentifier(uri=u) for u in uris]))

    def change_settings(self, cycle: int) -> None:
        """Settings an editor changes while working (none of them reloads the model)."""
        settings = {"multiline": cycle % 2 == 0,
                    "maxNewTokens": max(1, self.args.max_new_tokens - (cycle % 2) * 8)}  # never an invalid value
        self.client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
            settings={"ghostframe": settings}))

    async def run(self, files: list[Path]) -> dict:
        rss_start = await self.rss()
        baseline = None
        cycle = 0
        order = list(range(len(files)))
        while self.time_left() and (self.args.cycles is None or cycle < self.args.cycles):
            self.rng.shuffle(order)
            self.change_settings(cycle)
            await self.notebook(files[order[0]], cycle)
            for position, index in enumerate(order[:self.args.files_per_cycle]):
                if not self.time_left():
                    break
                await self.type_file(files[index], cycle * 10_000 + position)
                self.window().rss_mb = await self.rss()
            cycle += 1
            if baseline is None:
                baseline = await self.rss()  # after one whole cycle: caches and pools are warm
        return self.report(rss_start, baseline, await self.settled_status(), cycle, len(files))

    async def settled_status(self, seconds: float = 30.0) -> dict:
        """The server's status once the work queued before the last close has run.

        A close frees the engine's state on the model worker, after a generation it cancelled
        finishes its current token; asking at once can see that state for a moment. What is
        still held after `seconds` is kept for good, and the report says so.
        """
        deadline = time.monotonic() + seconds
        while True:
            status = await self.client.server_status()
            held = status.get("held", {})
            if (not held.get("engineDocuments") and not held.get("inFlight")) or time.monotonic() > deadline:
                return status
            await asyncio.sleep(0.2)

    def report(self, rss_start, baseline, status: dict, cycles: int, files: int) -> dict:
        rss_end = status.get("held", {}).get("rssMb")
        windows = []
        for number in sorted(self.windows):
            w = self.windows[number]
            windows.append({"window": number, "from_min": round(number * self.window_seconds / 60, 1),
                            "requests": len(w.seconds), "cancelled": w.cancelled, "errors": w.errors,
                            "p50_ms": _ms(percentile(w.seconds, 50)), "p95_ms": _ms(percentile(w.seconds, 95)),
                            "rss_mb": w.rss_mb})
        growth = None if rss_end is None or baseline is None else round(rss_end - baseline, 1)
        held = status.get("held", {})
        left_open = held.get("documents", 0) + held.get("notebooks", 0) + len(held.get("engineDocuments", []))
        flat = growth is not None and growth <= GROWTH_BOUND_MB and left_open == 0
        return {
            "minutes": round((time.monotonic() - self.started) / 60, 2), "cycles": cycles, "files": files,
            "requests": sum(w["requests"] for w in windows), "cancelled": sum(w["cancelled"] for w in windows),
            "errors": sum(w["errors"] for w in windows), "windows": windows,
            "rss_start_mb": rss_start, "rss_baseline_mb": baseline, "rss_end_mb": rss_end, "rss_growth_mb": growth,
            "held_at_end": held, "verdict": "flat" if flat else "GROWING or not freed",
            "model": status.get("model"), "device": status.get("device"), "precision": status.get("precision"),
        }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def print_report(report: dict) -> None:
    print(f"soak: {report['minutes']} min, {report['cycles']} cycles over {report['files']} files, "
          f"{report['model']} on {report['device']} ({report['precision']})")
    print(f"requests served {report['requests']}, cancelled {report['cancelled']}, errors {report['errors']}")
    print(f"{'from min':>8} {'requests':>8} {'cancel':>6} {'errors':>6} {'p50 ms':>8} {'p95 ms':>8} {'RSS MB':>8}")
    for w in report["windows"]:
        print(f"{w['from_min']:>8} {w['requests']:>8} {w['cancelled']:>6} {w['errors']:>6} "
              f"{w['p50_ms'] if w['p50_ms'] is not None else '-':>8} {w['p95_ms'] if w['p95_ms'] is not None else '-':>8} "
              f"{w['rss_mb'] if w['rss_mb'] is not None else '-':>8}")
    print(f"RSS start {report['rss_start_mb']} MB, after the first cycle {report['rss_baseline_mb']} MB, "
          f"end {report['rss_end_mb']} MB (growth {report['rss_growth_mb']} MB, bound {GROWTH_BOUND_MB:.0f} MB); "
          f"documents still held at the end: {report['held_at_end'].get('documents')}; verdict: {report['verdict']}")


async def soak(args: argparse.Namespace) -> int:
    from ghostframe.server.inference.model_options import ModelOptions
    from ghostframe.server.tools.lsp_client import EditorClient

    corpus = Path(args.corpus) if args.corpus else (DEFAULT_CORPUS if DEFAULT_CORPUS.is_dir() else None)
    if corpus is not None and not corpus.is_dir():
        raise SystemExit(f"ghostframe: corpus folder {corpus} does not exist.")
    files = corpus_files(corpus)
    client = EditorClient(verbose=False)
    await client.start_ready(ModelOptions.from_args(args).server_args(), {"maxNewTokens": args.max_new_tokens})
    try:
        report = await Soak(client, args).run(files)
    finally:
        await client.close()
    print_report(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0 if report["errors"] == 0 and report["verdict"] == "flat" else 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--minutes", type=float, default=30.0, help="how long to run (default 30)")
    parser.add_argument("--cycles", type=int, help="stop after this many cycles (a notebook and --files-per-cycle "
                        "files each), even before --minutes: the same work on any machine")
    parser.add_argument("--corpus", help="a folder whose .py files are typed in (default: the imbalanced-learn "
                        f"sources from ../shared/corpora/fetch.sh when present at {DEFAULT_CORPUS})")
    parser.add_argument("--files-per-cycle", type=int, default=20, help="files typed in between notebook rounds")
    parser.add_argument("--window-minutes", type=float, default=5.0, help="latency window (default 5 minutes)")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the report as JSON to this path")
