"""Facts about source text that serving and training must agree on.

Positions follow LSP: a line ends at `\\n`, `\\r\\n` or `\\r` and nowhere else (Python's
`str.splitlines` also breaks at form feed, `\\x1c`-`\\x1e`, NEL, U+2028 and U+2029, which
would shift every position after one of them), and a column counts code units of the
negotiated position encoding (UTF-16 unless the client chose otherwise).
"""

from __future__ import annotations

import re
from itertools import islice

# Notebook code cells are joined with this between them, in the server's prompt and in
# training samples alike, so the model sees at serving time the shape it was trained on.
CELL_SEPARATOR = "\n\n"

LINE_BREAK = re.compile(r"\r\n|\r|\n")


def utf16_column(line: str, column: int) -> int:
    """LSP positions count UTF-16 code units; people count characters."""
    return len(line[:column].encode("utf-16-le", "surrogatepass")) // 2


def _units(char: str, encoding: str) -> int:
    if encoding == "utf-8":
        return len(char.encode("utf-8", "surrogatepass"))
    if encoding == "utf-32":
        return 1
    return 2 if ord(char) > 0xFFFF else 1


def column_units(line: str, encoding: str = "utf-16") -> int:
    """How many code units of `encoding` the client counts in `line`."""
    if line.isascii() or encoding == "utf-32":
        return len(line)
    return sum(_units(c, encoding) for c in line)


def _chars_for_units(line: str, units: int, encoding: str) -> int:
    """Characters of `line` that `units` code units cover.

    A column inside a character (between the two halves of a UTF-16 surrogate pair, or inside
    a UTF-8 sequence) means that character's start: a Python string cannot be split there, and
    the start is where an editor draws a cursor that lands on the character.
    """
    if line.isascii() or encoding == "utf-32":
        return min(units, len(line))
    seen = 0
    for index, char in enumerate(line):
        seen += _units(char, encoding)
        if seen > units:
            return index
    return len(line)


def lsp_lines(text: str) -> list[str]:
    """The lines of `text` as LSP counts them, each with its line break."""
    lines, start = [], 0
    for match in LINE_BREAK.finditer(text):
        lines.append(text[start:match.end()])
        start = match.end()
    if start < len(text):
        lines.append(text[start:])
    return lines


def line_bounds(text: str, line: int) -> tuple[int, int] | None:
    """(start, end) offsets of line `line`'s content, without its break; None when there is no such line.

    A text of n line breaks has n + 1 lines (the last one possibly empty), as in LSP.
    """
    if line < 0:
        return None
    if line == 0:
        start = 0
    else:
        previous = next(islice(LINE_BREAK.finditer(text), line - 1, None), None)
        if previous is None:
            return None
        start = previous.end()
    following = LINE_BREAK.search(text, start)
    return start, following.start() if following else len(text)


def normalise_encoding(encoding) -> str:
    """"utf-16" for a PositionEncodingKind, its string, or None (LSP's default)."""
    value = str(getattr(encoding, "value", encoding) or "utf-16").lower()
    return value if value in ("utf-8", "utf-16", "utf-32") else "utf-16"


class PositionOutside(ValueError):
    """A position that names no place in the text (strict conversion only)."""


def offset_at(text: str, line: int, character: int, encoding: str = "utf-16", *, strict: bool = False) -> int:
    """The index into `text` of the LSP position (line, character).

    Lenient (for edits, as LSP asks): a line past the end means the end of the text, a
    character past the end of its line means the end of that line. Strict (for requests
    that read the text): either raises PositionOutside with a message for the user.
    """
    encoding = normalise_encoding(encoding)
    bounds = line_bounds(text, line) if line >= 0 else None
    if bounds is None:
        if strict or line < 0:
            if strict:
                count = len(LINE_BREAK.findall(text)) + 1
                raise PositionOutside(f"Position {line}:{character} is outside the document ({count} lines).")
            return 0
        return len(text)
    start, end = bounds
    content = text[start:end]
    if strict and not 0 <= character <= column_units(content, encoding):
        raise PositionOutside(f"Position {line}:{character} is past the end of line {line} "
                              f"({column_units(content, encoding)} characters).")
    return start + _chars_for_units(content, max(0, character), encoding)


def apply_change(text: str, start: tuple[int, int], end: tuple[int, int], new_text: str,
                 encoding: str = "utf-16") -> str:
    """`text` with the LSP range start..end replaced by `new_text` (an incremental didChange)."""
    first, last = offset_at(text, *start, encoding), offset_at(text, *end, encoding)
    if last < first:  # a reversed range: take it as the span between the two positions
        first, last = last, first
    return text[:first] + new_text + text[last:]
