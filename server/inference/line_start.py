"""A suggestion at a line start brings code: a first token that would leave it empty is passed over.

At a line start (nothing but indentation before the cursor on its line, nothing after it) the user is
about to type a line, and a right suggestion saves all of it. Small models often rank a line break
first there (a blank line is common in code), or an end token; the suggestion is then cut to nothing
and the user gets no help on the lines where help pays most. So when the greedy first token there
would end the suggestion empty, `CompletionEngine` takes the likeliest of the model's top
`CANDIDATES` first tokens that puts code on the line and decodes greedily on from it; every engine
(the reference included) follows the same rule, so their answers stay equal.
"""

from __future__ import annotations

from typing import Callable, Iterable

from ghostframe.server.inference.prompt import CompletionContext

# The likeliest first tokens looked through for one that opens code; a model that ranks none of
# them that high has no line to suggest here.
CANDIDATES = 16


def at_line_start(ctx: CompletionContext) -> bool:
    """Nothing but indentation before the cursor on its line, and nothing after it."""
    return not ctx.line_prefix.strip() and not ctx.line_suffix.strip()


def opens_code(text: str, healed: str) -> bool:
    """Whether a first token with this text puts code on the line: it begins with the healed indentation
    (see `CompletionContext.healed_prefix`), and what follows that is more than blanks before a line break."""
    if not text.startswith(healed):
        return False
    rest = text[len(healed):].lstrip(" \t")
    return bool(rest) and rest[0] not in "\r\n"


def first_code_token(candidates: Iterable[int], decode: Callable[[list[int]], str], end_ids: set[int],
                     healed: str) -> int | None:
    """The first of `candidates` (likeliest first) that opens code; None when none does."""
    return next((t for t in candidates if t not in end_ids and opens_code(decode([t]), healed)), None)
