"""Split the editor's byte stream into LSP messages, and find the next message after a damaged one.

pygls's reader trusts every header: after `Content-Length: abc`, a frame with no length or
a body cut short, it glues the following bytes to the wrong frame and never answers again.
This parser resynchronises instead, on the next `Content-Length: <n>\\r\\n`. Such a header
can never occur inside a valid JSON body (a raw line break is not allowed inside a JSON
string, and the word is no JSON token outside one), so finding one inside a body proves
that body was cut short. While skipping a damaged frame it also stops at a damaged header
line (`Content-Length: abc`, a lone `Content-Type`), so that a damaged frame right after
another is reported, with its id, rather than swallowed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

HEADER = re.compile(rb"Content-Length:[ \t]*\d+[ \t]*\r\n", re.IGNORECASE)
# A header line LSP names, valid or not: after a damaged frame, the next frame may begin there
ANY_HEADER_LINE = re.compile(rb"Content-(?:Length|Type):[^\r\n]{0,200}\r\n", re.IGNORECASE)
HEADER_LOOKBACK = 256  # skipped bytes kept, so that a header split across two reads is still found
HEADER_END = b"\r\n\r\n"
PARTIAL_HEADER_AT_END = re.compile(rb"Content-Length:[ \t]*\d*[ \t]*\r?\Z", re.IGNORECASE)
# The id of a request whose frame or JSON was damaged, when it can still be read at its start.
LEADING_ID = re.compile(rb'\s*\{\s*(?:"jsonrpc"\s*:\s*"[^"\r\n]{0,20}"\s*,\s*)?"id"\s*:\s*'
                        rb'(-?\d{1,18}|"(?:[^"\\\r\n]|\\.){0,200}")')
ID_WINDOW = 4096  # where a damaged request's id is looked for
MAX_HEADER_BYTES = 8 * 1024
MAX_BODY_BYTES = 512 * 1024 * 1024
MAX_JUNK_BYTES = 64 * 1024 * 1024  # this much without any header: the stream is not LSP


@dataclass
class Message:
    body: bytes


@dataclass
class Damaged:
    """Bytes that were no valid frame, and the id of the request they began, when readable."""

    reason: str
    request_id: int | str | None = None


class StreamLost(Exception):
    """The stream cannot be resynchronised; the server should exit so the editor restarts it."""


def leading_id(data: bytes) -> int | str | None:
    """The id at the start of a (possibly damaged) JSON-RPC request, when it can be read."""
    match = LEADING_ID.match(data)
    if match is None:
        return None
    try:
        return json.loads(match.group(1))
    except ValueError:
        return None


def content_length(block: bytes) -> tuple[int | None, str]:
    """The body length a header block announces, or None and why the block is unusable."""
    length = None
    for line in block.split(b"\r\n"):
        name, colon, value = line.partition(b":")
        if not colon:
            return None, f"header line {line[:60]!r} is not 'Name: value'"
        if name.strip().lower() == b"content-length":
            value = value.strip()
            if not value.isdigit():
                return None, f"Content-Length {value[:40]!r} is not a number"
            if length is not None and int(value) != length:
                return None, "two different Content-Length headers"
            length = int(value)
    if length is None:
        return None, "a header without Content-Length"
    if length > MAX_BODY_BYTES:
        return None, f"Content-Length {length} is larger than {MAX_BODY_BYTES} bytes"
    return length, ""


@dataclass
class _Skip:
    """Discarding bytes after a damaged frame until the next header."""

    reason: str
    search_from: int          # where the next header may begin
    junk_from: int | None     # where the damaged body begins (its id is read there), if known
    reported: bool = False
    skipped: int = 0


class FrameParser:
    """A push parser: `feed` bytes as they arrive, get back whole messages and damaged stretches.

    Each damaged frame is reported once, as soon as its request id can be read (the client
    may be waiting for that answer), else when the next header is found or the stream ends.
    """

    def __init__(self):
        self._buffer = bytearray()
        self._length: int | None = None  # the body length of the frame being read
        self._scanned = 0                # body bytes already searched for a header
        self._skip: _Skip | None = None

    def feed(self, data: bytes) -> list[Message | Damaged]:
        self._buffer += data
        events: list[Message | Damaged] = []
        while self._step(events):
            pass
        return events

    def close(self) -> list[Damaged]:
        """The stream ended: report a frame left half-read (none when it ended between messages)."""
        if self._skip is not None and not self._skip.reported:
            return [self._report(len(self._buffer))]
        if self._length is not None or self._buffer.strip():
            return [Damaged("the stream ended inside a message")]
        return []

    def _step(self, events: list) -> bool:
        if self._skip is not None:
            return self._skip_junk(events)
        if self._length is None:
            return self._header(events)
        return self._body(events)

    def _report(self, junk_end: int) -> Damaged:
        skip = self._skip
        skip.reported = True
        junk = self._buffer[skip.junk_from:min(junk_end, skip.junk_from + ID_WINDOW)] if skip.junk_from is not None else b""
        return Damaged(skip.reason, leading_id(bytes(junk)))

    def _skip_junk(self, events: list) -> bool:
        skip = self._skip
        found = self._next_header(skip)
        end = found.start() if found else len(self._buffer)
        if not skip.reported:
            junk = self._buffer[skip.junk_from:end] if skip.junk_from is not None else b""
            if found or skip.junk_from is None or len(junk) >= ID_WINDOW or leading_id(bytes(junk)) is not None:
                events.append(self._report(end))
        if found:
            del self._buffer[:found.start()]
            self._skip = None
            return True
        keep = HEADER_LOOKBACK if skip.reported else len(self._buffer) - (skip.junk_from or 0)
        drop = max(0, len(self._buffer) - max(keep, HEADER_LOOKBACK))
        del self._buffer[:drop]
        skip.skipped += drop
        skip.search_from = 0
        if skip.junk_from is not None:
            skip.junk_from = max(0, skip.junk_from - drop)
        if skip.skipped > MAX_JUNK_BYTES:
            raise StreamLost(f"{skip.skipped} bytes arrived without a valid LSP header")
        return False

    def _next_header(self, skip: _Skip) -> re.Match | None:
        """The next valid header, or the next header line after the damaged frame's own header block."""
        valid = HEADER.search(self._buffer, skip.search_from)
        damaged = ANY_HEADER_LINE.search(self._buffer, max(skip.search_from, skip.junk_from or 0))
        return min(filter(None, (valid, damaged)), key=re.Match.start, default=None)

    def _header(self, events: list) -> bool:
        end = self._buffer.find(HEADER_END)
        if end < 0:
            if len(self._buffer) > MAX_HEADER_BYTES:
                self._skip = _Skip("a header longer than 8 KiB", 1, None)
                return True
            return False
        length, why = content_length(bytes(self._buffer[:end]))
        if length is None:  # the next header may sit inside this very block
            self._skip = _Skip(why, 1, end + len(HEADER_END))
            return True
        del self._buffer[:end + len(HEADER_END)]
        self._length, self._scanned = length, 0
        return True

    def _body(self, events: list) -> bool:
        found = HEADER.search(self._buffer, max(0, self._scanned - 64), self._length)
        if found is not None:  # the body was cut short: the next frame began inside it
            self._skip = _Skip(f"a body cut short after {found.start()} of {self._length} bytes", found.start(), 0)
            self._length = None
            return True
        if len(self._buffer) < self._length:
            self._scanned = len(self._buffer)
            return False
        body = bytes(self._buffer[:self._length])
        if (cut := _header_start_at_end(body)) is not None:  # the body ran into the next header
            self._skip = _Skip(f"a body cut short after {cut} of {self._length} bytes", cut, 0)
            self._length = None
            return True
        events.append(Message(body))
        del self._buffer[:self._length]
        self._length = None
        return True


def _header_start_at_end(body: bytes) -> int | None:
    """Where a body that is no JSON object ends in the first bytes of a header, if it does.

    A body announced longer than it was swallows the start of the next header.
    """
    if body.rstrip().endswith((b"}", b"]")):
        return None
    if (partial := PARTIAL_HEADER_AT_END.search(body)) is not None:
        return partial.start()
    name = b"content-length:"
    tail = body[-len(name):].lower()
    for size in range(min(len(tail), len(name)), 0, -1):
        if name.startswith(tail[-size:]):
            return len(body) - size
    return None
