"""How a person types, as a pure function of a seed: the keys of a block and the delay before each.

`ghostframe bench replay` plays the same keystroke times against every system under test, so the
times come from the block's text and a seed alone, never from what a system suggested: a key that
accepting a suggestion made unnecessary is simply not pressed, and its delay is not spent.
`typing_value` asks the same typist how many keys come later than a model answers.

Inter-key delays are log-normal around a median (people's inter-key intervals are right-skewed),
longer at the end of a word and at brackets (where the typist plans the next token), with a
thinking pause before the first key of a line (after Enter) and a longer one on arriving at a
place. Indentation is no key: the editor indents after Enter, so Enter inserts it.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Sequence

BRACKETS = frozenset("()[]{}")


@dataclass(frozen=True)
class TypingStyle:
    """The typist: medians in milliseconds, `spread` the log-normal's sigma. These are assumptions of the
    model, chosen to look like a programmer who thinks while typing, not measurements."""

    median_ms: float = 150.0
    spread: float = 0.35
    word_end_factor: float = 1.6   # a word's end: a separator right after a name or number
    bracket_factor: float = 1.8
    enter_pause_ms: float = 900.0  # before a line's first key: reading what is there, planning the line
    arrival_pause_ms: float = 2000.0  # on arriving at a place, before its first key
    reaction_ms: float = 300.0     # a suggestion must have been visible this long for the typist to take it


@dataclass(frozen=True)
class Key:
    """One keystroke of a block and where it leaves the cursor."""

    text: str     # one character, or Enter: "\n" and the next line's indentation
    delay: float  # seconds since the previous key (since arriving, for a block's first key)
    row: int      # the block line the cursor is on after the key
    column: int   # its column there, in characters (indentation included)

    @property
    def is_enter(self) -> bool:
        return self.text.startswith("\n")


def _word_char(char: str) -> bool:
    return char.isalnum() or char == "_"


def _draw(rng: random.Random, median_ms: float, spread: float) -> float:
    return rng.lognormvariate(math.log(median_ms / 1000), spread)


def key_medians(lines: Sequence[str], style: TypingStyle = TypingStyle()) -> list[tuple[str, int, int, float]]:
    """(text, row, column, median delay in ms) of each key that writes `lines` from the end of the line
    above them: Enter, the first line's characters, Enter, the next line's, ... Indentation is no key."""
    keys: list[tuple[str, int, int, float]] = []
    for row, line in enumerate(lines):
        indentation = len(line) - len(line.lstrip())
        pause = style.arrival_pause_ms if row == 0 else style.median_ms * style.word_end_factor
        keys.append(("\n" + line[:indentation], row, indentation, pause))
        previous = ""
        for column in range(indentation, len(line)):
            char = line[column]
            if column == indentation:
                median = style.enter_pause_ms
            elif char in BRACKETS:
                median = style.median_ms * style.bracket_factor
            elif _word_char(previous) and not _word_char(char):
                median = style.median_ms * style.word_end_factor
            else:
                median = style.median_ms
            keys.append((char, row, column + 1, median))
            previous = char
    return keys


def plan_keys(lines: Sequence[str], seed: str, style: TypingStyle = TypingStyle()) -> list[Key]:
    """The keys of `key_medians` with their delays drawn: the same `seed` and text give the same keys
    and delays."""
    rng = random.Random(seed)
    return [Key(text, _draw(rng, median, style.spread), row, column) for text, row, column, median in key_medians(lines, style)]


def share_slower_than(ms: float, medians: Sequence[float], style: TypingStyle = TypingStyle()) -> float:
    """The expected share of keys, with these median delays, that come more than `ms` after the key before
    them (the log-normal of `_draw`)."""
    if not medians:
        return 0.0
    below = [0.5 * math.erfc((math.log(ms) - math.log(median)) / (style.spread * math.sqrt(2))) for median in medians]
    return sum(below) / len(below)
