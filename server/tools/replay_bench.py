"""`ghostframe bench replay`: how much of the code a person writes comes from accepted suggestions, at human speed.

At seeded places of several real files, blocks of a few consecutive lines are removed (the files are
opened without them) and written again, top to bottom, in real time: the typist arrives at the end of
the line above a block, pauses, presses Enter and types the block with the keystroke times of
`keystroke_timing` (the same times for every system), taking a suggestion with Tab when it holds the
rest of the line (`replay_editor` has VS Code's rules). Arriving is a cursor move, so the extension's
cursor hint (`ghostframe/didMoveCursor`) goes out once the cursor has rested, as `cursorMoves.ts` sends it.

The same replay runs through the real server over LSP and through llama-server driven as llama.vscode
drives it (`typing_bench`'s two sides, `--peer`), on the same files, model and keystroke times.
`--speedup` plays the human timeline faster than real time (for tests; the servers are not sped up).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ghostframe.server.inference import answer_log
from ghostframe.server.inference.keystroke_timing import Key, TypingStyle, plan_keys
from ghostframe.server.tools.llama_peer import add_peer_arguments, start_peer
from ghostframe.server.tools.replay_editor import BlockEditor, Tally
from ghostframe.server.tools.typing_bench import Document, GhostframeSide, LlamaVSCodeSide

# client-vscode/src/cursorMoves.ts: a move is sent once the cursor has rested MOVE_DELAY_MS (a test compares them)
CURSOR_REST_S = 0.150
CONTEXT_ABOVE = 10  # lines above a block, so that no block starts at a file's top
REPLAY_URI = "file:///bench/replay/"  # + the file's name: a path that exists nowhere


@dataclass(frozen=True)
class Block:
    """Lines written again at one place: `above` is the 0-based line the typist arrives at the end of."""

    above: int
    lines: tuple[str, ...]  # as in the file, indentation included, trailing blanks dropped


@dataclass(frozen=True)
class FilePlan:
    """One file of the replay: its text without the blocks, the blocks top to bottom, their keys."""

    name: str
    opened: str
    blocks: tuple[Block, ...]
    keys: tuple[tuple[Key, ...], ...]


def choose_blocks(text: str, count: int, size: int, seed: str) -> list[Block]:
    """`count` blocks of `size` consecutive lines, each a line the evaluation would score (`cases.eligible_lines`),
    spread through the file (one drawn per stretch of the candidates), apart from each other."""
    from ghostframe.trainer.evaluation.cases import eligible_lines

    eligible = eligible_lines(text)
    if eligible is None:
        raise SystemExit("ghostframe: the file is not valid Python.")
    worth = set(eligible)
    starts = [i for i in eligible if i > CONTEXT_ABOVE and all(i + k in worth for k in range(size))]
    lines = text.split("\n")
    rng = random.Random(seed)
    blocks: list[Block] = []
    for k in range(count):
        stretch = starts[len(starts) * k // count: len(starts) * (k + 1) // count]
        free = [i for i in stretch if not blocks or i > blocks[-1].above + size + 1]
        if not free:
            raise SystemExit(f"ghostframe: the file has too few runs of {size} lines to type for --places {count}.")
        start = rng.choice(free)
        blocks.append(Block(start - 1, tuple(line.rstrip() for line in lines[start:start + size])))
    return blocks


def plan_file(name: str, text: str, places: int, size: int, seed: int, style: TypingStyle) -> FilePlan:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    try:
        blocks = choose_blocks(text, places, size, f"{seed}:{name}")
    except SystemExit as exc:
        raise SystemExit(f"{exc.code} ({name})") from None
    removed = {block.above + 1 + k for block in blocks for k in range(size)}
    opened = "\n".join(line for i, line in enumerate(text.split("\n")) if i not in removed)
    keys = tuple(tuple(plan_keys(block.lines, f"{seed}:{name}:{block.above}", style)) for block in blocks)
    return FilePlan(name, opened, tuple(blocks), keys)


# --- the two sides, with the documents and cursor hints of a replay ---------------------------------


class GhostframeReplaySide(GhostframeSide):
    """The real server over LSP: one document per file, and the extension's cursor hint."""

    async def start(self) -> None:
        self.status = await self.client.start_ready(self.server_args, self.settings)

    def open(self, name: str, text: str) -> None:
        # a path that exists nowhere: the server must not read the file's blocks from disk
        self.uri = f"{REPLAY_URI}{name}"
        self.client.open(self.uri, text)

    def close_document(self) -> None:
        from lsprotocol import types

        self.client.text_document_did_close(types.DidCloseTextDocumentParams(
            text_document=types.TextDocumentIdentifier(uri=self.uri)))

    def move_cursor(self, line: int, character: int) -> None:
        from ghostframe.server.lsp.server import CURSOR_NOTIFICATION

        self.client.protocol.notify(CURSOR_NOTIFICATION, {"textDocument": {"uri": self.uri},
                                                          "position": {"line": line, "character": character}})


class LlamaVSCodeReplaySide(LlamaVSCodeSide):
    """llama-server as llama.vscode drives it; it reads the document at each request and has no cursor hint."""

    async def start(self) -> None:
        pass

    def open(self, name: str, text: str) -> None:
        pass

    def close_document(self) -> None:
        pass

    def move_cursor(self, line: int, character: int) -> None:
        pass


# --- the replay ----------------------------------------------------------------------------------


class HumanClock:
    """The typist's timeline in seconds, played `speedup` times faster than real time."""

    lockstep = False

    def __init__(self, speedup: float):
        self.speedup, self.started = speedup, time.perf_counter()

    def now(self) -> float:
        return (time.perf_counter() - self.started) * self.speedup

    async def until(self, moment: float) -> None:
        await asyncio.sleep(max(0.0, (moment - self.now()) / self.speedup))


class LockstepClock:
    """The typist's timeline with every answer in time: the next key waits for the answer to the last one
    (as if the machine were infinitely fast). Every keystroke's suggestion is seen, whatever the load:
    the data to tune the show filter on, not a measure of what a user saves."""

    lockstep = True

    def __init__(self, speedup: float = 1.0):
        self.moment = 0.0

    def now(self) -> float:
        return self.moment

    async def until(self, moment: float) -> None:
        self.moment = max(self.moment, moment)


async def _ask(side, editor: BlockEditor, request: int, document: Document, line: int, column: int,
               pending: list, clock: HumanClock) -> None:
    started = time.perf_counter()
    text, answered = await side.suggest(document, line, column, pending)
    editor.answered(request, text if answered else None, clock.now(), time.perf_counter() - started)


async def replay_file(side, plan: FilePlan, style: TypingStyle, clock: HumanClock) -> Tally:
    """Write the file's blocks again through `side`, key by key at the planned times."""
    tally = Tally()
    document = Document(plan.opened)
    side.open(plan.name, plan.opened)
    pending: list = []
    asks: list[asyncio.Task] = []
    for block, keys in zip(plan.blocks, plan.keys):
        side.supersede(pending)  # moving the cursor away ends the request of the last place
        editor = BlockEditor(document, block.above, block.lines, keys, style.reaction_ms / 1000, tally)
        moment = clock.now()
        # the move comes well after the last edit (the typist navigated here, which is not timed), so the
        # extension sends it once the cursor has rested, unless the first key comes before
        if keys[0].delay > CURSOR_REST_S:
            await clock.until(moment + CURSOR_REST_S)
            side.move_cursor(*document.position(block.above, len(document.lines[block.above])))
        while not editor.done:
            moment += editor.upcoming.delay
            await clock.until(moment)
            press = editor.press(clock.now())
            side.edit(press.change)
            side.supersede(pending)
            asks.append(asyncio.ensure_future(_ask(side, editor, press.request, document, press.line, press.column,
                                                   pending, clock)))
            await asyncio.sleep(0)  # the request goes out now, with the document as it is after this key
            if clock.lockstep:
                await asks[-1]
        editor.leave()
    side.supersede(pending)
    await asyncio.gather(*asks)
    side.close_document()
    return tally


async def replay_side(side, plans: list[FilePlan], style: TypingStyle, speedup: float,
                      record: Path | None = None, clock=HumanClock) -> dict:
    """Start `side`, replay every file through it, and return its report row; with `record`, write each
    suggestion shown (its document, offset, text, whether it was wrong, the characters Tab took) there,
    with the lines and characters written."""
    await side.start()
    total = Tally()
    per_file = {}
    for plan in plans:
        print(f"replaying {len(plan.blocks)} places of {plan.name} through {side.name} ...", file=sys.stderr)
        tally = await replay_file(side, plan, style, clock(speedup))
        per_file[plan.name] = tally.summary()["chars_saved_pct"]
        for entry in tally.shown_log:
            entry["document"] = f"{REPLAY_URI}{plan.name}"
        total.add(tally)
        if record is not None:  # after each file: a long run stopped early keeps what it replayed
            record.write_text(json.dumps({"lines": total.lines, "chars": total.chars, "shown": total.shown_log}))
    status = await side.close()
    return {**total.summary(), "chars_saved_pct_per_file": per_file, "model": status.get("model"),
            "engine": status.get("engine"), "precision": status.get("precision"),
            "model_choice": status.get("modelChoice")}


async def replay(args: argparse.Namespace) -> int:
    from ghostframe.server.inference.machine import cpu_description
    from ghostframe.server.inference.model_options import ModelOptions
    from ghostframe.server.tools.lsp_client import read_source

    style = TypingStyle(median_ms=args.median_ms)
    names = [Path(f).name for f in args.files]
    if len(set(names)) < len(names):  # the report, the seeds and the documents' URIs tell files apart by name
        names = [Path(f).as_posix().lstrip("/") for f in args.files]
    plans = [plan_file(name, read_source(Path(f)), args.places, args.lines_per_place, args.seed, style)
             for name, f in zip(names, args.files)]
    report: dict = {"files": {p.name: [b.above + 2 for b in p.blocks] for p in plans},
                    "lines_per_place": args.lines_per_place, "seed": args.seed, "speedup": args.speedup,
                    "style": asdict(style), "cpu": cpu_description(), "sides": {}}
    settings = {"maxNewTokens": args.max_new_tokens}
    if args.show_filter is not None:  # else the server's default
        settings["showFilter"] = args.show_filter
    report["settings"] = settings
    if args.answer_log:  # the server it starts appends every answer there (answer_log.py)
        os.environ[answer_log.ENVIRONMENT] = str(Path(args.answer_log).resolve())
    server_args = ModelOptions.from_args(args).server_args() + ["--log-level", "WARNING", "--cold-window", args.cold_window]
    report["cold_window"] = args.cold_window
    ghostframe = GhostframeReplaySide(server_args, settings)
    clock = LockstepClock if args.lockstep else HumanClock
    report["lockstep"] = args.lockstep
    report["sides"][ghostframe.name] = await replay_side(ghostframe, plans, style, args.speedup,
                                                         Path(args.record) if args.record else None, clock)
    os.environ.pop(answer_log.ENVIRONMENT, None)
    if args.peer != "none":
        peer = start_peer(args, report["sides"][ghostframe.name]["model"])
        try:
            if peer.fim:
                side = LlamaVSCodeReplaySide(peer)
                report["sides"][side.name] = await replay_side(side, plans, style, args.speedup, clock=clock)
            else:
                report["peer_skipped"] = f"{peer.model_name} has no fill-in-the-middle tokens; llama.vscode needs them"
        finally:
            peer.stop()
    print_report(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


def print_report(report: dict) -> None:
    places = sum(len(lines) for lines in report["files"].values())
    style = report["style"]
    print(f"\nghostframe bench replay — {len(report['files'])} files, {places} places of {report['lines_per_place']} "
          f"lines, {style['median_ms']:g} ms/char median (seed {report['seed']}"
          + (f", {report['speedup']:g}x real time" if report["speedup"] != 1 else "")
          + (", lockstep: every answer in time, not a measure of saving" if report.get("lockstep") else "")
          + f"); {report['cpu']}")
    print(f"{'side':<40}{'saved %':>8}{'lines':>8}{'accept %':>9}{'wrong/line':>11}{'empty@start %':>14}"
          f"{'p50 ms':>8}{'p95 ms':>8}{'time s':>8}{'typing s':>9}")
    for name, row in report["sides"].items():
        label = f"{name}: {row['model']} ({row['engine']})"[:39]
        cells = [row["chars_saved_pct"], f"{row['lines_accepted']}/{row['lines']}", row["acceptance_pct"],
                 row["wrong_shown_per_line"], row["line_start_empty_pct"], row["p50_ms"], row["p95_ms"],
                 row["seconds"], row["seconds_typing_all"]]
        widths = (8, 8, 9, 11, 14, 8, 8, 8, 9)
        print(f"{label:<40}" + "".join(f"{'-' if cell is None else cell:>{w}}" for cell, w in zip(cells, widths)))
    if report.get("peer_skipped"):
        print(f"llama.vscode + llama-server: not run ({report['peer_skipped']})")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", help="several held-out Python files to write blocks of (never one: "
                                                 "one file's style is no measure)")
    parser.add_argument("--places", type=int, default=4, help="places per file (default 4)")
    parser.add_argument("--lines-per-place", type=int, default=3,
                        help="consecutive lines written at each place (default 3)")
    parser.add_argument("--median-ms", type=float, default=TypingStyle.median_ms,
                        help="the typist's median time per character (default 150)")
    parser.add_argument("--seed", type=int, default=0, help="chooses the places and the keystroke times")
    parser.add_argument("--speedup", type=float, default=1.0,
                        help="play the typist's timeline this many times faster than real time (for tests; default 1)")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--show-filter", action=argparse.BooleanOptionalAction, default=None,
                        help="the server's ghostframe.showFilter (default: the server's default)")
    parser.add_argument("--lockstep", action="store_true",
                        help="each key waits for the answer to the one before (every answer in time, whatever the "
                             "machine): to collect every keystroke's suggestion for tuning, not to measure")
    parser.add_argument("--cold-window", choices=("short", "full"), default="short",
                        help="the server's --cold-window: answer a cold place from a short window now, or wait for "
                             "the whole window (default short, the server's default)")
    parser.add_argument("--answer-log", help="the server appends every answer with the show filter's features to "
                                             "this JSON-lines file (for show_filter_check --replay)")
    parser.add_argument("--record", help="write each suggestion ghostframe showed, and its fate, to this JSON file")
    add_peer_arguments(parser)
    parser.add_argument("--json", help="also write the report as JSON to this path")
