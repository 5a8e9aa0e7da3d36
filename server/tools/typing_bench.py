"""`ghostframe bench typing`: a typing session on a large real file, as a user meets it.

The user works at several places spread through the file. At each: they arrive and open the
line they are about to write (its text removed, its indentation kept), pause (`--pause`, 1 s),
type its first characters (`--keystrokes`, 120 ms apart: `--gap`), wait for the suggestion, read
it (`--accept-after`, 0.5 s), accept it with Tab and press Enter. The same script is played against two editors-and-servers:

- ghostframe: the real server over LSP; every keystroke sends `textDocument/inlineCompletion`
  and a newer keystroke cancels an unanswered older request (`$/cancelRequest`), as VS Code does;
- llama.vscode + llama-server (`--peer`): the peer to beat. Its requests follow llama.vscode:
  `/infill` with 256 lines before and 64 after the cursor, `cache_prompt`, `t_max_prompt_ms` 500,
  `t_max_predict_ms` 1000, `n_predict` 128, one request in flight (a keystroke waits for the
  last answer; VS Code drops it if a newer one came meanwhile), its client-side cache of
  suggestions (typing what a suggestion began with), and its look-ahead request for the state
  after accepting a suggestion.

Reported per side: latency per keystroke answered (p50/p95; keystrokes superseded before they
were answered are counted, not timed), the first suggestion after arriving (from the first
keystroke), the suggestion after accepting a line (Tab, Enter), and how often the line the
user meant was suggested exactly.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from ghostframe.server.inference.prompt import CompletionContext
from ghostframe.server.inference.scheduler import context_after_accepting
from ghostframe.server.inference.text import utf16_column

SAMPLE_SEED = 0


@dataclass(frozen=True)
class Place:
    line: int          # 0-based line the user writes
    indentation: str
    text: str          # what the line holds in the file (without its indentation)


@dataclass
class Result:
    keystrokes: list[float] = field(default_factory=list)  # seconds from a keystroke to its answer
    superseded: int = 0
    first: list[float] = field(default_factory=list)       # first keystroke at a place -> first answer there
    accept: list[float] = field(default_factory=list)      # Tab + Enter -> the next suggestion
    exact: int = 0                                         # places where typed + suggestion == the line
    places: int = 0
    suggestions: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        import numpy as np

        def pct(values: list[float], q: float) -> float | None:
            return round(float(np.percentile(values, q)) * 1000, 1) if values else None

        return {"keystrokes_answered": len(self.keystrokes), "superseded": self.superseded,
                "p50_ms": pct(self.keystrokes, 50), "p95_ms": pct(self.keystrokes, 95),
                "first_suggestion_median_ms": pct(self.first, 50), "first_suggestion_max_ms": pct(self.first, 100),
                "after_accept_median_ms": pct(self.accept, 50), "after_accept_max_ms": pct(self.accept, 100),
                "exact_lines": self.exact, "places": self.places}


def choose_places(text: str, count: int, keystrokes: int, seed: int = SAMPLE_SEED) -> list[Place]:
    """`count` code lines spread evenly through the file (one drawn per stretch), each a line the evaluation
    would score (no comment, docstring or string) long enough to type `keystrokes` characters of and still
    have something to suggest."""
    from ghostframe.trainer.evaluation.cases import eligible_lines

    lines = text.split("\n")
    eligible = [i for i in eligible_lines(text, keystrokes + 6) or [] if i > 10]
    if len(eligible) < count:
        raise SystemExit(f"ghostframe: the file has {len(eligible)} lines to type, fewer than --places {count}.")
    rng = random.Random(seed)
    stretches = [eligible[len(eligible) * k // count: len(eligible) * (k + 1) // count] for k in range(count)]
    chosen = [rng.choice(stretch) for stretch in stretches]
    return [Place(i, lines[i][: len(lines[i]) - len(lines[i].lstrip())], lines[i].strip()) for i in chosen]


class Document:
    """The editor's text, edited by (line, column) like an editor, with LSP positions."""

    def __init__(self, text: str):
        self.lines = text.split("\n")

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def position(self, line: int, column: int) -> tuple[int, int]:
        return line, utf16_column(self.lines[line], column)

    def replace_line(self, line: int, new: str) -> tuple[tuple[int, int], tuple[int, int], str]:
        """Replace a line's text; the LSP range it replaced and the new text."""
        end = self.position(line, len(self.lines[line]))
        self.lines[line] = new
        return (line, 0), end, new

    def insert(self, line: int, column: int, new: str) -> tuple[tuple[int, int], tuple[int, int], str]:
        start = self.position(line, column)
        row = self.lines[line]
        inserted = (row[:column] + new + row[column:]).split("\n")
        self.lines[line:line + 1] = inserted
        return start, start, new


def document_position(line: int, text: str) -> tuple[int, int]:
    """The LSP position at the end of `text` on `line`."""
    return line, utf16_column(text, len(text))


# --- ghostframe over LSP ----------------------------------------------------------------------


class GhostframeSide:
    """The real server over LSP, as VS Code drives it."""

    name = "ghostframe"

    def __init__(self, server_args: list[str], settings: dict):
        from ghostframe.server.tools.lsp_client import EditorClient

        self.client = EditorClient(verbose=False)
        self.server_args, self.settings = server_args, settings
        self.uri = "file:///bench/typing.py"
        self.status: dict = {}

    async def start(self, text: str) -> None:
        self.status = await self.client.start_ready(self.server_args, self.settings)
        self.client.open(self.uri, text)

    def edit(self, change) -> None:
        from lsprotocol import types

        (l0, c0), (l1, c1), new = change
        self.client.version += 1
        self.client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=self.uri, version=self.client.version),
            content_changes=[types.TextDocumentContentChangePartial(
                range=types.Range(start=types.Position(line=l0, character=c0), end=types.Position(line=l1, character=c1)),
                text=new)]))

    def request(self, line: int, character: int, msg_id: str) -> asyncio.Future:
        from lsprotocol import types

        return self.client.protocol.send_request_async(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=self.uri),
            position=types.Position(line=line, character=character),
            context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic)),
            msg_id=msg_id)

    @staticmethod
    def text_of(result) -> str:
        from lsprotocol import types

        items = result.items if isinstance(result, types.InlineCompletionList) else (result or [])
        text = items[0].insert_text if items else ""
        return text if isinstance(text, str) else text.value

    async def suggest(self, document: Document, line: int, column: int, pending: list) -> tuple[str, bool]:
        """(suggestion, answered): a newer keystroke cancels this request while it runs."""
        msg_id = f"bench-{uuid.uuid4()}"
        future = self.request(*document.position(line, column), msg_id)
        pending.append((msg_id, future))
        try:
            result = await future
        except Exception:  # the server answered the cancelled request with an error
            return "", False
        return (self.text_of(result), True) if msg_id not in self.cancelled else ("", False)

    cancelled: set[str] = set()

    def supersede(self, pending: list) -> None:
        """VS Code cancels the request of an older keystroke when a newer one comes ($/cancelRequest)."""
        from lsprotocol import types

        for msg_id, future in pending:
            if not future.done():
                self.cancelled.add(msg_id)
                self.client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=msg_id))
        pending.clear()

    async def close(self) -> dict:
        status = await self.client.server_status()
        await self.client.close()
        return status


# --- llama.vscode + llama-server ---------------------------------------------------------------


class LlamaVSCodeSide:
    """llama-server driven as llama.vscode drives it (see the module docstring)."""

    name = "llama.vscode + llama-server"
    N_PREFIX, N_SUFFIX = 256, 64

    def __init__(self, peer):
        self.peer = peer
        self.cache: dict[str, str] = {}
        self.busy = asyncio.Lock()

    async def start(self, text: str) -> None:
        pass

    def edit(self, change) -> None:
        pass

    def _inputs(self, document: Document, line: int, column: int) -> tuple[str, str, str, int]:
        row = document.lines[line]
        prefix_lines = document.lines[max(0, line - self.N_PREFIX):line]
        suffix_lines = document.lines[line + 1: line + 1 + self.N_SUFFIX]
        prompt = row[:column]
        indent = len(row) - len(row.lstrip())
        if not prompt.strip():
            prompt = ""
        return "\n".join(prefix_lines) + "\n", row[column:] + "\n" + "\n".join(suffix_lines) + "\n", prompt, indent

    def _cached(self, prefix: str, suffix: str, prompt: str) -> str | None:
        for cut in range(len(prompt), -1, -1):
            hit = self.cache.get(f"{prefix}|{suffix}|{prompt[:cut]}")
            if hit is not None and hit.startswith(prompt[cut:]):
                return hit[len(prompt) - cut:]
        return None

    async def _infill(self, prefix: str, suffix: str, prompt: str, indent: int) -> str:
        common = {"n_predict": 128, "top_k": 40, "top_p": 0.99, "stream": False, "cache_prompt": True,
                  "t_max_prompt_ms": 500, "t_max_predict_ms": 1000, **({"n_indent": indent} if indent else {})}
        body = {"input_prefix": prefix, "input_suffix": suffix, "input_extra": [], "prompt": prompt,
                "samplers": ["top_k", "top_p", "infill"], **common}
        answer = await asyncio.get_running_loop().run_in_executor(None, self.peer.post, "/infill", body)
        lines = answer.get("content", "").split("\n")
        while lines and not lines[-1].strip():
            lines.pop()
        return "\n".join(lines)

    async def suggest(self, document: Document, line: int, column: int, pending: list) -> tuple[str, bool]:
        prefix, suffix, prompt, indent = self._inputs(document, line, column)
        token = object()
        pending.append(token)
        while self.busy.locked():  # llama.vscode: start only when the previous request is finished
            await asyncio.sleep(0.01)
            if pending and pending[-1] is not token:
                return "", False  # VS Code cancelled this provider call for a newer keystroke
        async with self.busy:
            if (hit := self._cached(prefix, suffix, prompt)) is not None:
                completion = hit
            else:
                completion = await self._infill(prefix, suffix, prompt, indent)
                self.cache[f"{prefix}|{suffix}|{prompt}"] = completion
        shown = completion.split("\n")[0] if document.lines[line][column:].strip() else completion
        if completion.strip() and not document.lines[line][column:].strip():
            asyncio.ensure_future(self._future(prefix, suffix, prompt, completion))
        return shown, True

    async def _future(self, prefix: str, suffix: str, prompt: str, completion: str) -> None:
        """llama.vscode's cacheFutureSuggestion: the suggestion after accepting this one, asked now."""
        lines = completion.split("\n")
        if len(lines) > 1:
            prefix, prompt = prefix + prompt + "\n".join(lines[:-1]) + "\n", lines[-1]
        else:
            prompt = prompt + lines[0]
        if f"{prefix}|{suffix}|{prompt}" in self.cache:
            return
        async with self.busy:
            self.cache[f"{prefix}|{suffix}|{prompt}"] = await self._infill(prefix, suffix, prompt, 0)

    def supersede(self, pending: list) -> None:
        pass  # llama.vscode lets the request in flight finish; waiting ones notice a newer keystroke

    async def close(self) -> dict:
        while self.busy.locked():
            await asyncio.sleep(0.01)
        return {"model": self.peer.model_name, "engine": f"llama-server ({self.peer.describe()})"}


# --- the session ---------------------------------------------------------------------------------


async def play(side, text: str, places: list[Place], keystrokes: int, gap: float, pause: float,
               accept_after: float) -> Result:
    """The typing script of the module docstring, against one side."""
    document = Document(text)
    result = Result()
    await side.start(text)
    await asyncio.sleep(pause)  # the file was just opened
    for place in places:
        line, indentation = place.line, place.indentation
        side.edit(document.replace_line(line, indentation))  # arrive, open the line to write
        await asyncio.sleep(pause)
        pending: list = []
        tasks, started = [], []
        for index, char in enumerate(place.text[:keystrokes]):
            column = len(document.lines[line])
            side.edit(document.insert(line, column, char))
            side.supersede(pending)
            started.append(time.perf_counter())
            tasks.append(asyncio.ensure_future(side.suggest(document, line, column + 1, pending)))
            if index < keystrokes - 1:
                await asyncio.sleep(gap)
        answers = []
        for task, at in zip(tasks, started):
            text_, answered = await task
            done = time.perf_counter()
            answers.append((text_, answered, done - at, done))
        first_done = min((done for _, answered, _, done in answers if answered), default=None)
        if first_done is not None:
            result.first.append(first_done - started[0])
        for _, answered, seconds, _ in answers:
            if answered:
                result.keystrokes.append(seconds)
            else:
                result.superseded += 1
        suggestion = answers[-1][0].split("\n")[0]  # the line's own completion; Tab takes that line
        typed = place.text[:keystrokes]
        result.places += 1
        result.exact += (typed + suggestion).strip() == place.text
        result.suggestions.append(typed + "|" + suggestion)
        # the user reads the suggestion, accepts it with Tab, presses Enter (indented as the editor indents
        # it) and waits for the next suggestion
        await asyncio.sleep(accept_after)
        typed_line = document.lines[line]
        following = context_after_accepting(CompletionContext(typed_line, ""), suggestion).before[len(typed_line):]
        side.edit(document.insert(line, len(typed_line), following))
        at = time.perf_counter()
        await side.suggest(document, line + 1, len(document.lines[line + 1]), [])
        result.accept.append(time.perf_counter() - at)
        # the user moves on and the file is as it was (real edits, which the server sees too)
        new_line = document.lines[line + 1]
        side.edit(document.replace_line(line, indentation + place.text))
        end_of_line = document.position(line, len(document.lines[line]))
        del document.lines[line + 1]
        side.edit((end_of_line, document_position(line + 1, new_line), ""))
    return result


async def typing(args: argparse.Namespace) -> int:
    from ghostframe.server.inference.machine import cpu_description
    from ghostframe.server.inference.model_options import ModelOptions
    from ghostframe.server.tools.lsp_client import read_source

    path = Path(args.file)
    text = read_source(path)
    places = choose_places(text, args.places, args.keystrokes)
    report: dict = {"file": path.name, "lines": text.count("\n") + 1, "places": [p.line + 1 for p in places],
                    "keystrokes": args.keystrokes, "gap_s": args.gap, "pause_s": args.pause, "cpu": cpu_description(),
                    "sides": {}}
    sides = []
    if not args.peer_only:
        sides.append(GhostframeSide(ModelOptions.from_args(args).server_args() + ["--log-level", "WARNING"],
                                    {"maxNewTokens": args.max_new_tokens}))
    if args.peer != "none":
        from ghostframe.server.tools.llama_peer import start_peer

        sides.append(None)  # started once ghostframe said which model it serves
    peer = None
    try:
        for side in sides:
            if side is None:
                served = next(iter(report["sides"].values()), {}).get("model") if report["sides"] else None
                peer = start_peer(args, served)
                if not peer.fim:
                    report["peer_skipped"] = f"{peer.model_name} has no fill-in-the-middle tokens; llama.vscode needs them"
                    break
                side = LlamaVSCodeSide(peer)
            print(f"typing at {len(places)} places of {path.name} through {side.name} ...", file=sys.stderr)
            result = await play(side, text, places, args.keystrokes, args.gap, args.pause, args.accept_after)
            status = await side.close()
            report["sides"][side.name] = {**result.summary(), "model": status.get("model"),
                                          "engine": status.get("engine"), "precision": status.get("precision"),
                                          "model_choice": status.get("modelChoice"), "suggestions": result.suggestions}
    finally:
        if peer is not None:
            peer.stop()
    print(f"\nghostframe bench typing — {path.name} ({report['lines']} lines), {len(places)} places, "
          f"{args.keystrokes} keystrokes {args.gap * 1000:.0f} ms apart after a {args.pause:g} s pause; {report['cpu']}")
    print(f"{'side':<44}{'p50 ms':>8}{'p95 ms':>8}{'first ms':>10}{'accept ms':>11}{'superseded':>12}{'exact':>7}")
    for name, row in report["sides"].items():
        label = f"{name}: {row['model']} ({row['engine']})"[:43]
        print(f"{label:<44}{row['p50_ms'] or '-':>8}{row['p95_ms'] or '-':>8}{row['first_suggestion_median_ms'] or '-':>10}"
              f"{row['after_accept_median_ms'] or '-':>11}{row['superseded']:>12}{row['exact_lines']:>4}/{row['places']}")
        if row.get("model_choice"):
            print(f"  model choice: {row['model_choice']}")
    if report.get("peer_skipped"):
        print(f"llama.vscode + llama-server: not run ({report['peer_skipped']})")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="a large Python file to type in (hundreds of lines)")
    parser.add_argument("--places", type=int, default=6, help="places in the file to work at (default 6)")
    parser.add_argument("--keystrokes", type=int, default=4, help="characters typed at each place (default 4)")
    parser.add_argument("--gap", type=float, default=0.12, help="seconds between keystrokes (default 0.12)")
    parser.add_argument("--pause", type=float, default=1.0, help="seconds after arriving, before typing (default 1)")
    parser.add_argument("--accept-after", type=float, default=0.5,
                        help="seconds between a suggestion showing and the user accepting it (default 0.5)")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    from ghostframe.server.tools.llama_peer import add_peer_arguments

    add_peer_arguments(parser)
    parser.add_argument("--peer-only", action="store_true", help="time only the peer")
    parser.add_argument("--json", help="also write the report as JSON to this path")
