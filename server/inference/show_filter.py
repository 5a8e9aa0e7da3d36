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

`TUNED` was tuned on every suggestion a replay of 48 development lines showed (imbalanced-learn,
`show_filter_check --replay`, the thresholds that hide the most wrong suggestions while keeping 85 %
of the accepted characters) and checked on 48 held-out lines (seaborn): BENCHMARKS.md, "Showing only
what is likely taken". The repeat and bracket rules hid nothing there that the probabilities did not,
so they are off. A suggestion without token probabilities (typed-through: the user typed its
beginning; an engine without them) is judged on its text only.
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


# tuned on development files with show_filter_check --replay --tolerance 0.15 (see the module docstring)
TUNED = Thresholds(min_mean_logprob=-0.8, min_total_logprob=-4.5, hide_repeats=False, hide_closers_only=False,
                   min_chars_at_line_end=6)


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


def typed_into(typed_through: bool, logprobs: Sequence[float]) -> bool:
    """The rest of a suggestion the user typed the beginning of (it comes without log-probabilities): always
    shown. The same suggestion asked for again at the same place keeps them, and is judged again."""
    return typed_through and not logprobs


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
