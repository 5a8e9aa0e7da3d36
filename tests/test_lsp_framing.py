"""The frame parser finds every valid message after a damaged one, however the bytes are split."""

from __future__ import annotations

import json

import pytest

from ghostframe.server.lsp import framing
from ghostframe.server.lsp.framing import Damaged, FrameParser, Message, StreamLost


def frame(message: dict) -> bytes:
    body = json.dumps(message).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def body(msg_id) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": msg_id, "method": "shutdown"}).encode()


GOOD = frame({"jsonrpc": "2.0", "id": 99, "method": "shutdown"})
DAMAGED = {  # damaged bytes -> the id the parser should report for them (None: not readable)
    "length not a number": (b"Content-Length: abc\r\n\r\n" + body(1), 1),
    "no Content-Length": (b"Content-Type: application/vscode-jsonrpc\r\n\r\n" + body(2), 2),
    "body cut short": (b"Content-Length: 900\r\n\r\n" + body(3)[:30], 3),
    "length one too long": (b"Content-Length: %d\r\n\r\n" % (len(body(4)) + 1) + body(4)[:-1] + b" ", None),
    "bytes before a header": (b"garbage", None),
    "two lengths": (b"Content-Length: 5\r\nContent-Length: 6\r\n\r\n", None),
}


def feed_in_pieces(data: bytes, size: int) -> list:
    parser = FrameParser()
    events = []
    for start in range(0, len(data), size):
        events += parser.feed(data[start:start + size])
    return events + parser.close()


@pytest.mark.parametrize("case", DAMAGED, ids=list(DAMAGED))
@pytest.mark.parametrize("size", [1, 2, 7, 64, 100_000])
def test_damaged_frame_then_valid_frames(case, size):
    damaged, request_id = DAMAGED[case]
    events = feed_in_pieces(damaged + GOOD + GOOD, size)
    messages = [e.body for e in events if isinstance(e, Message)]
    assert messages[-2:] == [GOOD.split(b"\r\n\r\n", 1)[1]] * 2
    reports = [e for e in events if isinstance(e, Damaged)]
    assert len(reports) >= 1 or case == "length one too long"
    if request_id is not None:
        assert reports[0].request_id == request_id


def test_valid_stream_in_any_pieces():
    stream = b"".join(frame({"jsonrpc": "2.0", "id": i, "method": "m", "params": {"t": "é\\r\\n" * i}})
                      for i in range(20))
    for size in (1, 3, 1000):
        events = feed_in_pieces(stream, size)
        assert [json.loads(e.body)["id"] for e in events] == list(range(20))


def test_end_inside_a_message_is_reported():
    assert [type(e) for e in feed_in_pieces(b"Content-Length: 50\r\n\r\n{", 4)] == [Damaged]


def test_endless_junk_is_a_lost_stream(monkeypatch):
    monkeypatch.setattr(framing, "MAX_JUNK_BYTES", 10_000)
    parser = FrameParser()
    parser.feed(b"Content-Length: x\r\n\r\n")
    with pytest.raises(StreamLost):
        for _ in range(100):
            parser.feed(b"x" * 1000)


@pytest.mark.parametrize("size", [1, 5, 64, 100_000])
def test_damaged_frames_one_after_another_each_report_their_id(size):
    """A damaged frame right after another one is reported with its own id (before, the skip
    over the first one ran on to the next valid header and swallowed the second)."""
    stream = (b"Content-Length: x1\r\n\r\n" + body(1) + b"Content-Length: abc\r\n\r\n" + body(2)
              + b"Content-Type: application/vscode-jsonrpc\r\n\r\n" + body(3)
              + b"Content-Length: 9x\r\nContent-Type: application/vscode-jsonrpc\r\n\r\n" + body(4) + GOOD)
    events = feed_in_pieces(stream, size)
    assert [e.request_id for e in events if isinstance(e, Damaged) and e.request_id is not None] == [1, 2, 3, 4]
    assert [e.body for e in events if isinstance(e, Message)] == [GOOD.split(b"\r\n\r\n", 1)[1]]
