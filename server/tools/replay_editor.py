"""The editor and the typist of `ghostframe bench replay`, as a pure state machine (no server, no clock).

VS Code's inline-completion rules, as the replay plays them:
- every change (a key, Enter, an accepted suggestion) asks for a suggestion at the cursor, and the
  answer to an older request is dropped once a newer one was made (the caller cancels it);
- a suggestion stays visible while the characters typed since it was asked are a prefix of it, and
  while it is visible a newer answer does not replace it (VS Code keeps the suggestion it can reuse);
- the typist presses Tab instead of the next key when the visible text equals the rest of the line
  and has been visible for the reaction time. Tab takes the rest of the line and the following lines
  the suggestion holds exactly; a line it holds wrongly or only in part is typed.

Characters are counted without indentation (the editor indents after Enter); Enter counts as one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from ghostframe.server.inference.keystroke_timing import Key
from ghostframe.server.tools.typing_bench import Document


@dataclass
class Tally:
    """What a replay counts, summed over its blocks."""

    chars: int = 0             # characters of the blocks (indentation excluded, Enter included)
    chars_accepted: int = 0
    lines: int = 0
    lines_accepted: int = 0    # lines whose end a suggestion wrote
    shown: int = 0             # distinct suggestions shown
    accepted: int = 0
    wrong: int = 0             # shown suggestions that did not hold the rest of the line
    requests: int = 0
    superseded: int = 0        # requests dropped for a newer one (or for leaving the place) before their answer
    line_starts: int = 0       # answers to the request made by Enter, before the line's first key
    line_starts_empty: int = 0
    latencies: list[float] = field(default_factory=list)  # seconds from a request to its answer
    seconds: float = 0.0       # the typist's time to write the blocks
    seconds_typing_all: float = 0.0  # the same keys' time without any suggestion
    shown_log: list[dict] = field(default_factory=list)  # each suggestion shown: offset, text, wrong, accepted chars

    def add(self, other: Tally) -> Tally:
        for name, value in vars(other).items():
            setattr(self, name, getattr(self, name) + value)
        return self

    def summary(self) -> dict:
        import numpy as np

        def ms(q: float) -> float | None:
            return round(float(np.percentile(self.latencies, q)) * 1000, 1) if self.latencies else None

        def share(part: int, whole: int) -> float | None:
            return round(100 * part / whole, 1) if whole else None

        return {"chars": self.chars, "chars_accepted": self.chars_accepted,
                "chars_saved_pct": share(self.chars_accepted, self.chars),
                "lines": self.lines, "lines_accepted": self.lines_accepted,
                "shown": self.shown, "accepted": self.accepted, "acceptance_pct": share(self.accepted, self.shown),
                "wrong_shown_per_line": round(self.wrong / self.lines, 2) if self.lines else None,
                "line_start_answers": self.line_starts,
                "line_start_empty_pct": share(self.line_starts_empty, self.line_starts),
                "requests": self.requests, "answered": len(self.latencies), "superseded": self.superseded,
                "p50_ms": ms(50), "p95_ms": ms(95),
                "seconds": round(self.seconds, 1), "seconds_typing_all": round(self.seconds_typing_all, 1)}


@dataclass
class Shown:
    """The suggestion on screen: as answered, what was typed since it was asked, when it appeared."""

    text: str
    at: float
    typed: str = ""
    record: dict = field(default_factory=dict)  # its entry in Tally.shown_log

    @property
    def visible(self) -> str:
        return self.text[len(self.typed):]


@dataclass(frozen=True)
class Press:
    """A keystroke the editor made: the LSP change to send and the request it asks at the cursor."""

    change: tuple
    request: int
    line: int
    column: int
    accepted: bool


def _content_chars(text: str) -> int:
    """Characters a typist would type for `text` inserted at a line's end: indentation after Enter is not typed."""
    first, *rest = text.split("\n")
    return len(first) + sum(1 + len(line.lstrip()) for line in rest)


def acceptable(visible: str, remaining: str) -> str | None:
    """The part of `remaining` (the rest of the line, then the block's next lines) that Tab takes for the
    visible suggestion: None unless its first line is the rest of the line."""
    shown, wanted = visible.split("\n"), remaining.split("\n")
    if shown[0].rstrip() != wanted[0]:
        return None
    taken = 1
    while taken < min(len(shown), len(wanted)) and shown[taken].rstrip() == wanted[taken]:
        taken += 1
    if taken == 1 and not wanted[0]:
        return None  # nothing on this line to accept, and not the next line either
    return "\n".join(wanted[:taken])


class BlockEditor:
    """Writing one block: the cursor, what is visible, the requests; it counts into `tally`."""

    def __init__(self, document: Document, above: int, lines: Sequence[str], keys: Sequence[Key],
                 reaction: float, tally: Tally):
        self.document, self.above, self.lines, self.keys = document, above, list(lines), list(keys)
        self.reaction, self.tally = reaction, tally
        self.row, self.column = -1, len(document.lines[above])  # arriving at the end of the line above
        self.next = 0
        self.shown: Shown | None = None
        self.latest = 0          # the newest request; answers to older ones are dropped
        self.line_start_request = 0
        self.left = False
        self.offsets: dict[int, int] = {}  # request -> the cursor's offset in the document's text
        tally.chars += _content_chars("".join("\n" + line for line in self.lines))
        tally.lines += len(self.lines)
        tally.seconds_typing_all += sum(key.delay for key in self.keys)

    @property
    def done(self) -> bool:
        return self.next >= len(self.keys)

    @property
    def upcoming(self) -> Key:
        return self.keys[self.next]

    @property
    def cursor(self) -> tuple[int, int]:
        """(document line, column in characters)."""
        return self.above + 1 + self.row, self.column

    def remaining(self) -> str:
        rest = self.lines[self.row][self.column:] if self.row >= 0 else ""
        return rest + "".join("\n" + line for line in self.lines[self.row + 1:])

    def taking(self, now: float) -> str | None:
        """What Tab would take now, if the typist would press it."""
        if self.shown is None or now - self.shown.at < self.reaction:
            return None
        return acceptable(self.shown.visible, self.remaining())

    def press(self, now: float) -> Press:
        """The typist's next keystroke at `now`: Tab when `taking` says so, else the planned key."""
        key = self.upcoming
        self.tally.seconds += key.delay
        line, column = self.cursor
        taken = self.taking(now)
        if taken is not None:
            change = self.document.insert(line, column, taken)
            self.row += taken.count("\n")
            self.column = len(self.lines[self.row])
            while not self.done and self.keys[self.next].row <= self.row:
                self.next += 1
            self.tally.accepted += 1
            self.tally.chars_accepted += _content_chars(taken)
            self.shown.record["accepted_chars"] = _content_chars(taken)
            self.shown = None
            self.tally.lines_accepted += taken.count("\n") + 1
        else:
            change = self.document.insert(line, column, key.text)
            self.row, self.column = key.row, key.column
            self.next += 1
            if self.shown is not None:
                self.shown.typed += key.text
                if not (self.shown.text.startswith(self.shown.typed) and self.shown.visible):
                    self.shown = None
        self.latest += 1
        self.tally.requests += 1
        if taken is None and key.is_enter:
            self.line_start_request = self.latest
        line, column = self.cursor
        self.offsets[self.latest] = sum(len(row) + 1 for row in self.document.lines[:line]) + column
        return Press(change, self.latest, line, column, taken is not None)

    def answered(self, request: int, text: str | None, now: float, seconds: float) -> None:
        """The answer to `request` (None: it was cancelled, no answer) arrived at `now`, `seconds` after it was asked."""
        if text is None or request != self.latest or self.left:
            self.tally.superseded += 1
            return
        self.tally.latencies.append(seconds)
        if request == self.line_start_request:
            self.tally.line_starts += 1
            self.tally.line_starts_empty += not text.strip()
        if self.shown is not None or not text.strip():
            return
        wrong = acceptable(text, self.remaining()) is None
        self.shown = Shown(text, now, record={"offset": self.offsets[request], "text": text, "wrong": wrong,
                                              "accepted_chars": 0})
        self.tally.shown_log.append(self.shown.record)
        self.tally.shown += 1
        self.tally.wrong += wrong

    def leave(self) -> None:
        """The typist moves elsewhere: the suggestion disappears and answers still to come are dropped."""
        self.left, self.shown = True, None
