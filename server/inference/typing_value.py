"""What a model is worth to someone typing: the share of their characters its suggestions would write.

A suggestion saves characters only when it is right and arrives before the next keystroke, which
supersedes it (`ghostframe bench replay` measures exactly this). So a model's value on a machine
follows from two things, one measured once per model and one per machine:

- how often it is right with the window it has prefilled by the time the user types there
  (`QUALITY`: exact match by prompt window, measured once per pinned model on held-out code);
- how soon it answers (`Rates`, timed on this machine): a line's suggestion counts from the first
  keystroke whose answer comes before the next key (the typist of `keystroke_timing`), and saves
  what is left of the line from there.

`expected_saved` multiplies the two over the lines of the bundled example and scales the result to
the replay's measure with `CALIBRATION` (BENCHMARKS.md, "Which model each machine serves").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ghostframe.server.inference.engine import COLD_BUDGET_SECONDS
from ghostframe.server.inference.keystroke_timing import TypingStyle, key_medians, share_slower_than

# Exact match (%) of each pinned model's one-line answers at a prompt window (tokens), llama.cpp,
# the server's context, greedy, on imbalanced-learn 0.14.2's held-out lines (BENCHMARKS.md, "Quality on
# the serving engine": 200 cases, or the first 100 of the same seeded sample).
QUALITY: dict[str, tuple[tuple[int, float], ...]] = {
    "smollm2-135m": ((128, 8.5), (256, 10.0), (512, 13.5), (1024, 18.0)),
    "qwen2.5-coder-0.5b": ((128, 11.0), (256, 11.0), (512, 13.0), (1024, 22.0)),
    "qwen2.5-coder-1.5b": ((128, 22.0), (1024, 52.0)),
}
FULL_WINDOW = 1024  # the server's prompt window (tokens)
# Characters saved (%) per point of exact match x the share of each line left when the first timely
# answer comes: fitted to `ghostframe bench replay` with `auto` (SmolLM2) on the 2-core CPU, which saved
# 7.2 % where this model says 16 x 0.99 (BENCHMARKS.md, "Which model each machine serves"). Mid-line
# suggestions are right less often than a line's first (exact match is measured at line starts).
CALIBRATION = 0.45
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sales_analysis.py"


@dataclass(frozen=True)
class Value:
    """What a model is expected to save on this machine, and the two things it follows from."""

    saved_pct: float    # characters written by accepted suggestions, %
    window: int         # prompt tokens prefilled by the time the user types at a new place
    exact_pct: float    # exact match at that window
    timely_pct: float   # share of a line's characters left when the first answer in time comes, %

    def describe(self) -> str:
        return (f"~{self.saved_pct:.0f} % of characters (right {self.exact_pct:.0f} % of the time with the "
                f"{self.window} tokens it has read, answering in time for {self.timely_pct:.0f} % of a line)")


def exact_at(model: str, window: int) -> float:
    """Exact match at `window` tokens (`QUALITY`): linear in log2(window) between the measured points,
    flat beyond them."""
    points = QUALITY[model]
    if window <= points[0][0]:
        return points[0][1]
    for (w0, e0), (w1, e1) in zip(points, points[1:]):
        if window <= w1:
            return e0 + (e1 - e0) * math.log2(window / w0) / math.log2(w1 / w0)
    return points[-1][1]


def window_when_typing(prefill_ms_per_token: float, style: TypingStyle = TypingStyle()) -> int:
    """The prompt tokens prefilled by the first keystroke at a new place: the arrival pause warms the
    window, and the first request prefills up to the cold budget more."""
    return int(min(FULL_WINDOW, (style.arrival_pause_ms + COLD_BUDGET_SECONDS * 1000) / max(prefill_ms_per_token, 1e-3)))


@cache
def _example_lines() -> tuple[tuple[tuple[int, float], ...], ...]:
    """Per non-blank line of the bundled example: (characters left to type after the key, the next key's
    median delay) for each key of the line."""
    lines = [line for line in EXAMPLE.read_text().splitlines() if line.strip()]
    per_line: list[tuple[tuple[int, float], ...]] = []
    for line in lines:
        keys = key_medians([line])
        content = len(line.strip())
        # the answer to key i shows before key i+1 when key i+1's delay exceeds the answer's time
        per_line.append(tuple((content - (column - (len(line) - len(line.lstrip()))), after[3])
                              for (_, _, column, _), after in zip(keys, keys[1:])))
    return tuple(per_line)


def timely_share(answer_ms: float, style: TypingStyle = TypingStyle()) -> float:
    """The expected share of a line's characters still to type when the first answer that arrives before
    the next keystroke comes (averaged over the example's lines)."""
    saved = total = 0.0
    for keys in _example_lines():
        none_yet = 1.0
        for left, next_median in keys:
            in_time = share_slower_than(answer_ms, [next_median], style)
            saved += none_yet * in_time * left
            none_yet *= 1.0 - in_time
        total += keys[0][0] if keys else 0
    return saved / total if total else 0.0


def expected_value(model: str, prefill_ms_per_token: float, answer_ms: float) -> Value:
    """What `model` saves on a machine where it prefills at this rate and answers a keystroke in `answer_ms`."""
    window = window_when_typing(prefill_ms_per_token)
    exact = exact_at(model, window)
    timely = timely_share(answer_ms)
    return Value(round(CALIBRATION * exact * timely, 1), window, round(exact, 1), round(100 * timely, 1))
