"""Whether a suggestion is worth showing: hide the ones the user would most likely not take.

A wrong suggestion costs the user attention (reading it, then typing over it or pressing
Escape); hiding it costs nothing when the next keystroke brings a better one. JetBrains'
field result: a small filter of this kind raised acceptance and cut explicit cancels with
the share of completed code held. The decision uses a few features one can explain:

- the model's own confidence: the mean log-probability of the suggestion's tokens, and the
  log-probability of the whole suggestion (their sum: how likely all of it is right, which Tab needs);
- a suggestion that only repeats the line above (the model looping on what it just saw);
- a suggestion that only closes brackets or adds punctuation;
- a very short suggestion at a line's end (a few characters save little and are often wrong).

`python -m ghostframe.trainer.evaluation.show_filter_check` tunes the thresholds on development
files and checks them on held-out ones. `TUNED` is not tuned yet: the first development sample
held no right suggestion to tune against, and on the held-out one these a-priori values hid right
ones too, so the server's `showFilter` is off by default (BENCHMARKS.md). A suggestion
without token probabilities (typed-through: the user typed its beginning; an engine without
them) is judged on its text only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ghostframe.server.inference.prompt import CompletionContext

CLOSERS = set(")]}:,;") | {" ", "\t", "\n"}


@dataclass(frozen=True)
class Thresholds:
    """Where the decision draws its lines (None: that feature is not used)."""

    min_mean_logprob: float | None = -1.0  # hide below this mean token log-probability
    min_total_logprob: float | None = None  # hide below this log-probability of the whole suggestion
    hide_repeats: bool = True              # hide a suggestion that makes the line repeat the one above
    hide_closers_only: bool = True         # hide a suggestion that only closes brackets / adds punctuation
    min_chars_at_line_end: int = 0         # hide a suggestion with fewer non-blank characters at a line's end


TUNED = Thresholds()  # a-priori values, not tuned (see the module docstring)


def mean_logprob(logprobs: Sequence[float]) -> float | None:
    """The mean log-probability of a suggestion's tokens (None: the engine gave none)."""
    return sum(logprobs) / len(logprobs) if logprobs else None


def repeats_line_above(suggestion: str, ctx: CompletionContext) -> bool:
    """The line the suggestion completes equals the nearest non-blank line above it."""
    line = (ctx.line_prefix + suggestion.split("\n", 1)[0]).strip()
    above = next((row.strip() for row in reversed(ctx.before.split("\n")[:-1]) if row.strip()), None)
    return bool(line) and line == above


def only_closes(suggestion: str) -> bool:
    """Nothing but closing brackets, punctuation and whitespace."""
    return bool(suggestion.strip()) and set(suggestion) <= CLOSERS


def short_at_line_end(suggestion: str, ctx: CompletionContext, min_chars: int) -> bool:
    """Fewer than `min_chars` non-blank characters, with nothing after the cursor on the line."""
    return not ctx.line_suffix.strip() and len("".join(suggestion.split())) < min_chars


def should_show(suggestion: str, ctx: CompletionContext, logprobs: Sequence[float],
                thresholds: Thresholds = TUNED) -> bool:
    """Whether to show `suggestion` at `ctx`; `logprobs`: its tokens' log-probabilities (may be empty)."""
    if not suggestion.strip():
        return False
    mean = mean_logprob(logprobs)
    if thresholds.min_mean_logprob is not None and mean is not None and mean < thresholds.min_mean_logprob:
        return False
    if thresholds.min_total_logprob is not None and logprobs and sum(logprobs) < thresholds.min_total_logprob:
        return False
    if thresholds.hide_repeats and repeats_line_above(suggestion, ctx):
        return False
    if thresholds.hide_closers_only and only_closes(suggestion):
        return False
    return not short_at_line_end(suggestion, ctx, thresholds.min_chars_at_line_end)
