"""`ghostframe bench replay`: the keystroke times are a pure function of the seed, the editor follows VS Code's
inline-completion rules (checked with fake answer times, no server), the real-time replay takes what a system
suggests in time and nothing else, and the command runs end to end through the real server."""

from __future__ import annotations

import asyncio
import json
import re
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import TINY_MODEL
from ghostframe.server.inference.keystroke_timing import Key, TypingStyle, plan_keys
from ghostframe.server.tools.replay_bench import (CURSOR_REST_S, HumanClock, choose_blocks, plan_file,
                                                   replay_file)
from ghostframe.server.tools.replay_editor import BlockEditor, Tally, acceptable
from ghostframe.server.tools.typing_bench import Document

ROOT = Path(__file__).resolve().parents[1]

SALES = '''"""Monthly sales by region."""
import numpy as np
import pandas as pd

REGIONS = ["north", "south", "east", "west"]


def load(path):
    frame = pd.read_csv(path, parse_dates=["date"])
    frame = frame.dropna(subset=["amount"])
    return frame


def monthly(frame):
    frame["month"] = frame["date"].dt.to_period("M")
    totals = frame.groupby(["region", "month"])["amount"].sum()
    table = totals.unstack("region").fillna(0)
    table["total"] = table[REGIONS].sum(axis=1)
    return table


def growth(table):
    change = table.pct_change().replace([np.inf, -np.inf], np.nan)
    change = change.fillna(0).round(3)
    best = change.idxmax(axis=1)
    return change, best


def report(path):
    frame = load(path)
    table = monthly(frame)
    change, best = growth(table)
    summary = pd.DataFrame({"best": best, "total": table["total"]})
    summary["share"] = summary["total"] / summary["total"].sum()
    return summary.sort_values("total", ascending=False)
'''

MODEL = '''"""A small model of house prices."""
import numpy as np
import pandas as pd
from sklearn.linear_model import Ridge
from sklearn.model_selection import train_test_split

FEATURES = ["rooms", "area", "age"]


def features(frame):
    frame = frame.copy()
    frame["area_per_room"] = frame["area"] / frame["rooms"].clip(lower=1)
    frame["log_area"] = np.log1p(frame["area"])
    frame["old"] = (frame["age"] > 40).astype(int)
    return frame[FEATURES + ["area_per_room", "log_area", "old"]]


def fit(frame, alpha=1.0):
    x = features(frame)
    y = np.log(frame["price"])
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=0)
    model = Ridge(alpha=alpha).fit(x_train, y_train)
    score = model.score(x_test, y_test)
    return model, score


def predict(model, frame):
    prices = np.exp(model.predict(features(frame)))
    result = pd.Series(prices, index=frame.index, name="price")
    return result.round(-2)
'''


# --- the typist ------------------------------------------------------------------------------------


def test_the_keystroke_times_are_a_pure_function_of_the_seed_and_text():
    lines = ["    frame = frame.dropna(subset=['amount'])", "    return frame"]
    keys = plan_keys(lines, "0:sales.py:9")
    assert keys == plan_keys(lines, "0:sales.py:9")
    assert [k.delay for k in keys] != [k.delay for k in plan_keys(lines, "1:sales.py:9")]
    # and the same in another process, with another string hash seed: nothing in it depends on the process
    program = ("import json; from ghostframe.server.inference.keystroke_timing import plan_keys; "
               f"print(json.dumps([k.delay for k in plan_keys({lines!r}, '0:sales.py:9')]))")
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120,
                          env={**__import__("os").environ, "PYTHONHASHSEED": "123"})
    assert json.loads(done.stdout) == [k.delay for k in keys], done.stderr


def test_the_keys_write_the_lines_without_typing_indentation():
    lines = ["    if x:", "        y = f(x)", "    return y"]
    keys = plan_keys(lines, "s")
    assert "".join(k.text for k in keys) == "".join("\n" + line for line in lines)
    assert [k.text for k in keys if k.is_enter] == ["\n    ", "\n        ", "\n    "]
    document = Document("def g(x):")
    for key in keys:  # each key leaves the cursor where it says
        at = key.row if key.is_enter else key.row + 1  # Enter is pressed at the end of the line above
        document.insert(at, len(document.lines[at]), key.text)
        assert document.lines[key.row + 1] == lines[key.row][:key.column]


def test_the_delays_have_the_median_the_pauses_and_the_slower_word_ends_and_brackets():
    style = TypingStyle(median_ms=150)
    line = "    " + " ".join(["value = compute(frame[column], weights)"] * 40)
    keys = plan_keys([line, line], "s", style)
    assert keys[0].delay > 0.5 and keys[1].delay > 0.3  # arriving; the line's first key after Enter
    previous, plain, word_end, bracket = "", [], [], []
    for key in keys[2:]:
        if key.is_enter or key.column == 5:
            previous = ""
            continue
        (bracket if key.text in "()[]" else word_end if previous.isalnum() and not key.text.isalnum()
         and key.text != "_" else plain).append(key.delay)
        previous = key.text[-1]
    assert 0.135 < statistics.median(plain) < 0.165
    assert statistics.median(word_end) > 1.3 * statistics.median(plain)
    assert statistics.median(bracket) > 1.3 * statistics.median(plain)
    assert plan_keys([line], "s", TypingStyle(median_ms=300))[50].delay > keys[50].delay


def test_the_cursor_hint_waits_as_long_as_the_extension():
    source = (ROOT / "client-vscode" / "src" / "cursorMoves.ts").read_text()
    assert int(re.search(r"MOVE_DELAY_MS = (\d+);", source).group(1)) / 1000 == CURSOR_REST_S


# --- the places ------------------------------------------------------------------------------------


def test_blocks_are_lines_worth_typing_spread_through_the_file_and_apart():
    blocks = choose_blocks(SALES, 3, 2, "0:sales.py")
    lines = SALES.split("\n")
    assert [b.above for b in blocks] == sorted(b.above for b in blocks)
    for block, after in zip(blocks, blocks[1:]):
        assert after.above > block.above + len(block.lines) + 1
    for block in blocks:
        assert block.above >= 10 and list(block.lines) == lines[block.above + 1: block.above + 3]
        assert all(line.strip() and not line.strip().startswith("#") for line in block.lines)
    assert blocks == choose_blocks(SALES, 3, 2, "0:sales.py") != choose_blocks(SALES, 3, 2, "1:sales.py")
    with pytest.raises(SystemExit):
        choose_blocks(SALES, 12, 3, "0:sales.py")


def test_the_file_opens_without_its_blocks():
    plan = plan_file("sales.py", SALES, 2, 3, 0, TypingStyle())
    original = SALES.split("\n")
    assert len(plan.opened.split("\n")) == len(original) - 6
    restored = plan.opened.split("\n")
    for block in plan.blocks:  # written back top to bottom, each block's line above is where the file has it
        assert restored[block.above] == original[block.above] and block.lines[0] not in plan.opened
        restored[block.above + 1: block.above + 1] = block.lines
    assert restored == original


# --- the editor, with fake answer times ------------------------------------------------------------


def test_tab_takes_the_rest_of_the_line_and_the_following_lines_held_exactly():
    remaining = "read_csv(path)\n    frame = clean(frame)\n    return frame"
    assert acceptable("read_csv(path)", remaining) == "read_csv(path)"
    assert acceptable("read_csv(path)\n    frame = clean(frame)\n    return fr", remaining) == \
        "read_csv(path)\n    frame = clean(frame)"  # a partial last line is typed
    assert acceptable("read_csv(path)\n    frame = other(frame)\n    return frame", remaining) == "read_csv(path)"
    assert acceptable("read_csv(path, sep=';')", remaining) is None
    assert acceptable("read_csv(", remaining) is None  # only part of the line: not what the typist wants
    assert acceptable("\n    frame = clean(frame)", "\n    frame = clean(frame)") == "\n    frame = clean(frame)"
    assert acceptable("\n    frame = wrong(frame)", "\n    frame = clean(frame)") is None


LINES = ("    frame = load(path)", "    return frame")


def editor(delay: float) -> tuple[BlockEditor, Tally]:
    """Writing LINES below `def f(path):`, every key `delay` seconds after the last, a reaction time of 0.3 s."""
    keys = [Key(k.text, delay, k.row, k.column) for k in plan_keys(LINES, "s")]
    tally = Tally()
    return BlockEditor(Document("def f(path):\nx = 1"), 0, LINES, keys, 0.3, tally), tally


def test_without_suggestions_everything_is_typed_and_the_block_is_written_again():
    block, tally = editor(0.2)
    presses = []
    while not block.done:  # each request answered at once, with nothing
        presses.append(block.press(0.2 * (len(presses) + 1)))
        block.answered(presses[-1].request, "", 0.2 * len(presses), 0.01)
    assert block.document.text == "def f(path):\n" + "\n".join(LINES) + "\nx = 1"
    assert not any(p.accepted for p in presses) and tally.chars_accepted == 0
    assert tally.chars == len(presses) == 2 + len("frame = load(path)") + len("return frame")
    assert tally.seconds == pytest.approx(tally.seconds_typing_all) == pytest.approx(0.2 * len(presses))
    assert tally.line_starts == tally.line_starts_empty == 2 and tally.shown == 0
    assert tally.requests == len(presses) and len(tally.latencies) == len(presses)


def test_a_right_suggestion_shown_in_time_is_taken_with_tab():
    block, tally = editor(0.2)
    enter = block.press(0.2)  # Enter opens the line; the answer holds the whole block
    block.answered(enter.request, "frame = load(path)\n    return frame", 0.25, 0.05)
    tab = block.press(0.6)  # the next key comes 0.35 s after it appeared: past the reaction time
    assert tab.accepted and block.done and (tab.line, tab.column) == (2, len(LINES[1]))
    assert block.document.text == "def f(path):\n" + "\n".join(LINES) + "\nx = 1"
    assert tally.chars_accepted == tally.chars - 1 and tally.lines_accepted == 2 and tally.accepted == tally.shown == 1
    assert tally.seconds == pytest.approx(0.4) and tally.seconds_typing_all > 5 and tally.wrong == 0


def test_a_suggestion_not_yet_read_is_not_taken_but_stays_visible_while_typed_through():
    block, tally = editor(0.2)
    enter = block.press(0.2)
    block.answered(enter.request, "frame = load(path)", 0.5, 0.3)
    first = block.press(0.6)  # visible for 0.1 s only: the typist types "f"
    assert not first.accepted and block.shown is not None and block.shown.visible == "rame = load(path)"
    block.answered(first.request, "oo = 1", 0.65, 0.05)  # a newer answer does not replace a visible suggestion
    assert block.shown.visible == "rame = load(path)" and tally.shown == 1
    tab = block.press(0.8)
    assert tab.accepted and tally.chars_accepted == len("rame = load(path)") and tally.lines_accepted == 1
    enter = block.press(1.0)  # Enter after the accepted line is typed
    assert not enter.accepted and (enter.line, enter.column) == (2, 4)


def test_a_wrong_suggestion_is_counted_and_disappears_when_the_typing_leaves_it():
    block, tally = editor(0.2)
    enter = block.press(0.2)
    block.answered(enter.request, "fig = plot(path)", 0.25, 0.05)
    assert tally.wrong == tally.shown == 1
    block.press(1.0)  # "f": still a prefix of the suggestion
    assert block.shown is not None
    block.press(1.2)  # "r": not any more
    assert block.shown is None
    assert tally.accepted == 0


def test_answers_to_older_requests_and_after_leaving_are_dropped():
    block, tally = editor(0.2)
    old = block.press(0.2)
    new = block.press(0.4)
    block.answered(old.request, "rame = load(path)", 0.45, 0.25)
    block.answered(new.request, None, 0.5, 0.1)  # cancelled: no answer
    assert block.shown is None and tally.superseded == 2 and tally.latencies == [] and tally.line_starts == 0
    last = block.press(0.6)
    block.leave()
    block.answered(last.request, "ame = load(path)", 0.7, 0.1)
    assert block.shown is None and tally.superseded == 3


def test_an_oracle_answering_at_once_writes_the_block_after_its_first_enter():
    block, tally = editor(0.5)
    now = 0.0
    while not block.done:
        now += 0.5
        press = block.press(now)
        block.answered(press.request, block.remaining(), now + 0.01, 0.01)
    assert tally.accepted == 1 and tally.chars_accepted == tally.chars - 1 and tally.requests == 2


# --- the real-time replay, with fake sides ---------------------------------------------------------


class FakeSide:
    """A system under test without a server: answers the original file's text after `answer_after` real seconds,
    or never (None: the request waits until it is superseded)."""

    name = "fake"

    def __init__(self, original: dict[str, str], answer_after: float | None):
        self.original, self.answer_after = original, answer_after
        self.hints: list[tuple[str, int, int]] = []
        self.documents: dict[str, Document] = {}
        self.file = ""

    async def start(self):
        pass

    def open(self, name, text):
        self.file = name

    def close_document(self):
        pass

    def move_cursor(self, line, character):
        self.hints.append((self.file, line, character))

    def edit(self, change):
        pass

    def supersede(self, pending):
        for future in pending:
            if not future.done():
                future.set_result(("", False))
        pending.clear()

    async def suggest(self, document, line, column, pending):
        self.documents[self.file] = document
        lines = [row.rstrip() for row in self.original[self.file].split("\n")]
        truth = lines[line][column:] + "".join("\n" + row for row in lines[line + 1: line + 4])
        future = asyncio.get_running_loop().create_future()
        pending.append(future)

        def answer():
            if not future.done():
                future.set_result((truth, True))

        if self.answer_after is not None:
            asyncio.get_running_loop().call_later(self.answer_after, answer)
        return await future

    async def close(self):
        return {}


async def replay_with(side, plans, speedup=20.0) -> Tally:
    total = Tally()
    for plan in plans:
        total.add(await replay_file(side, plan, TypingStyle(), HumanClock(speedup)))
    return total


async def test_the_replay_takes_right_suggestions_that_come_in_time_and_sends_the_cursor_hint():
    plans = [plan_file("sales.py", SALES, 2, 3, 0, TypingStyle()), plan_file("houses.py", MODEL, 2, 3, 0, TypingStyle())]
    side = FakeSide({"sales.py": SALES, "houses.py": MODEL}, answer_after=0.0)
    tally = await replay_with(side, plans)
    assert tally.chars_accepted > 0.5 * tally.chars and tally.seconds < 0.5 * tally.seconds_typing_all
    assert tally.accepted >= 4 and tally.wrong == 0 and tally.lines_accepted <= tally.lines == 12
    for plan in plans:  # every block was written again as it was
        written = side.documents[plan.name].text.split("\n")
        assert written == [line.rstrip() for line in {"sales.py": SALES, "houses.py": MODEL}[plan.name].split("\n")]
    texts = {"sales.py": SALES, "houses.py": MODEL}  # one hint per place, at the end of the line above it
    assert side.hints == [(p.name, b.above, len(texts[p.name].split("\n")[b.above])) for p in plans for b in p.blocks]
    assert tally.requests == len(tally.latencies) + tally.superseded


async def test_each_suggestion_shown_is_logged_at_the_cursors_offset_with_its_fate():
    """What `--record` writes (the show filter is tuned on it): every shown suggestion once, at the offset of
    the cursor in the text the server had then, whether it was wrong, and the characters Tab took."""
    texts = {"sales.py": SALES, "houses.py": MODEL}
    side = FakeSide(texts, answer_after=0.0)
    for name, text in texts.items():
        tally = await replay_with(side, [plan_file(name, text, 2, 3, 0, TypingStyle())])
        log = tally.shown_log
        assert len(log) == tally.shown and sum(entry["wrong"] for entry in log) == tally.wrong
        assert sum(entry["accepted_chars"] for entry in log) == tally.chars_accepted > 0
        # the fake suggests the file's own text, and the text before the cursor is the file's as it was
        original = "\n".join(row.rstrip() for row in text.split("\n"))
        for entry in log:
            assert original.startswith(entry["text"], entry["offset"]), entry


async def test_in_lockstep_every_keystroke_is_answered_however_slow_the_answers():
    """`--lockstep` (collecting every suggestion for tuning): each key waits for the answer to the one before."""
    from ghostframe.server.tools.replay_bench import LockstepClock

    plans = [plan_file("sales.py", SALES, 1, 2, 0, TypingStyle())]
    side = FakeSide({"sales.py": SALES}, answer_after=0.02)
    tally = Tally()
    for plan in plans:
        tally.add(await replay_file(side, plan, TypingStyle(), LockstepClock()))
    assert tally.superseded == 0 and tally.requests == len(tally.latencies) > 0 and tally.accepted >= 1


async def test_the_replay_takes_nothing_from_a_system_that_never_answers_in_time():
    plans = [plan_file("sales.py", SALES, 2, 2, 1, TypingStyle()), plan_file("houses.py", MODEL, 2, 2, 1, TypingStyle())]
    tally = await replay_with(FakeSide({"sales.py": SALES, "houses.py": MODEL}, answer_after=None), plans, speedup=100)
    assert tally.accepted == tally.chars_accepted == tally.shown == 0
    assert tally.seconds == pytest.approx(tally.seconds_typing_all)
    assert tally.superseded == tally.requests == tally.chars and tally.latencies == []


# --- end to end, through the real server -----------------------------------------------------------


def write_short_sources(folder: Path) -> list[Path]:
    """Two files of short lines: few keys, so that the replay runs at human speed and still ends soon."""
    paths = [folder / "sums.py", folder / "means.py"]
    for path, how in zip(paths, ("sum", "mean")):
        lines = ["import pandas as pd", "", "df = pd.read_csv('data.csv')"] + [f"c{i} = df.c{i}.{how}()" for i in range(12)]
        path.write_text("\n".join(lines) + "\n")
    return paths


def run_replay(paths: list[Path], model: Path, report_path: Path, *options: str) -> tuple[dict, str]:
    done = subprocess.run(
        [sys.executable, "-m", "ghostframe.server.tools.terminal_cli", "bench", "replay", *map(str, paths),
         "--model", str(model), "--places", "1", "--lines-per-place", "1",
         "--max-new-tokens", "8", "--json", str(report_path), *options],
        capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(report_path.read_text()), done.stdout


def assert_consistent(side: dict, paths: list[Path]) -> None:
    blocks = [b for p in paths for b in plan_file(p.name, p.read_text(), 1, 1, 0, TypingStyle()).blocks]
    assert side["chars"] == sum(1 + len(line.strip()) for b in blocks for line in b.lines) and side["lines"] == 2
    assert side["requests"] == side["chars"] - side["chars_accepted"] + side["accepted"]  # a key or Tab, a request
    assert side["requests"] == side["answered"] + side["superseded"] and side["answered"] >= 1
    assert side["p95_ms"] >= side["p50_ms"] > 0 and 0 <= side["chars_saved_pct"] <= 100
    assert side["seconds"] <= side["seconds_typing_all"] and side["accepted"] <= side["shown"]


@pytest.mark.slow
def test_the_command_replays_several_files_through_the_real_server(tmp_path):
    paths = write_short_sources(tmp_path)
    report, stdout = run_replay(paths, TINY_MODEL, tmp_path / "replay.json", "--peer", "none", "--no-show-filter")
    assert set(report["files"]) == {"sums.py", "means.py"} and set(report["sides"]) == {"ghostframe"}
    assert report["settings"] == {"maxNewTokens": 8, "showFilter": False}  # what the server was sent
    assert_consistent(report["sides"]["ghostframe"], paths)
    assert "ghostframe bench replay" in stdout and report["cpu"] in stdout


@pytest.mark.slow
def test_the_llama_vscode_peer_replays_the_same_session(tmp_path):
    from conftest import TINY_QWEN2_GGUF

    paths = write_short_sources(tmp_path)
    report, stdout = run_replay(paths, TINY_QWEN2_GGUF, tmp_path / "replay.json")
    assert set(report["sides"]) == {"ghostframe", "llama.vscode + llama-server"}
    for side in report["sides"].values():
        assert_consistent(side, paths)
    ours, peer = report["sides"]["ghostframe"], report["sides"]["llama.vscode + llama-server"]
    assert ours["seconds_typing_all"] == peer["seconds_typing_all"]  # the same keystroke times
    assert "llama.vscode + llama-server" in stdout


def test_one_file_is_refused():
    from ghostframe.server.tools.terminal_cli import parse_args

    with pytest.raises(SystemExit):
        parse_args(["bench", "replay", "a.py"])
    assert parse_args(["bench", "replay", "a.py", "b.py", "--peer", "none"]).files == ["a.py", "b.py"]
