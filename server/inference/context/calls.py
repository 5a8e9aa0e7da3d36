"""Where a call's arguments end, found by scanning text rather than parsing the file.

The file is being typed, so most of the time it does not parse; a call is read from its `(`
on, skipping strings, comments and nested brackets, for at most MAX_CALL_CHARS.
"""

from __future__ import annotations

MAX_CALL_CHARS = 2000  # how far a call may run over lines (formatters put one argument per line)


def scan_call(text: str, start: int) -> tuple[int, int]:
    """(first top-level comma, closing bracket) of the call whose `(` ends just before `start`;
    -1 for either when there is none within MAX_CALL_CHARS (a call still being typed)."""
    depth, quote, i, comma = 0, "", start, -1
    end = min(len(text), start + MAX_CALL_CHARS)
    while i < end:
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif text.startswith(quote, i):
                i += len(quote) - 1
                quote = ""
            elif ch == "\n" and len(quote) == 1:
                quote = ""
        elif ch in "\"'":
            quote = ch * 3 if text.startswith(ch * 3, i) else ch
            i += len(quote) - 1
        elif ch == "#":
            i = text.find("\n", i)
            if i < 0:
                break
            continue
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            if depth == 0:
                return comma, i
            depth -= 1
        elif ch == "," and depth == 0 and comma < 0:
            comma = i
        i += 1
    return comma, -1


def split_call(text: str, start: int) -> tuple[str, str]:
    """(first argument, the other arguments) of the call whose `(` ends just before `start`.

    A call not closed within MAX_CALL_CHARS ends at the end of its first argument's line, or
    where the scan stopped when it has a second argument.
    """
    comma, close = scan_call(text, start)
    if close >= 0:
        return (text[start:comma], text[comma + 1:close]) if comma >= 0 else (text[start:close], "")
    end = min(len(text), start + MAX_CALL_CHARS)
    if comma >= 0:
        return text[start:comma], text[comma + 1:end]
    line_end = text.find("\n", start)
    return text[start:line_end if line_end >= 0 else end], ""
