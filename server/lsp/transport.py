"""Serve one LSP session over stdio or one TCP connection, with the resynchronising FrameParser.

Bytes are read on a daemon thread (stdio) or an asyncio stream (TCP) into one queue; the
event loop parses and dispatches them. `exit` or the end of the stream ends the session,
and its exit code says whether `shutdown` came first (LSP: 0 after shutdown, else 1).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import threading
from typing import BinaryIO

from pygls.io_ import StdoutWriter

from ghostframe.server.lsp.framing import FrameParser, Message, StreamLost

log = logging.getLogger("ghostframe.server")

STOP = None  # queued by stop(): end the session now
CHUNK = 64 * 1024


class Session:
    """One client's byte stream into one protocol."""

    def __init__(self, protocol):
        self.protocol = protocol
        self.chunks: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.loop = asyncio.get_running_loop()

    def push(self, data: bytes | None) -> None:
        """Thread-safe: queue bytes read (b"" at the end of the stream, STOP to end the session)."""
        self.loop.call_soon_threadsafe(self.chunks.put_nowait, data)

    async def run(self) -> int:
        """Dispatch messages until `exit` or the end of the stream; return the exit code."""
        parser = FrameParser()
        while True:
            data = await self.chunks.get()
            if data is STOP:
                return self.protocol.exit_code if self.protocol.exit_code is not None else 1
            if not data:
                for damaged in parser.close():
                    self.protocol.report_damaged(damaged)
                    print(f"ghostframe-server: the editor's stream ended inside a message ({damaged.reason}).",
                          file=sys.stderr)
                log.info("the editor closed the connection")
                return 0 if self.protocol._shutdown else 1
            try:
                events = parser.feed(data)
            except StreamLost as exc:
                print(f"ghostframe-server: exiting, the editor's stream cannot be read as LSP: {exc}. "
                      "The editor should restart the server.", file=sys.stderr)
                return 1
            for event in events:
                try:
                    if isinstance(event, Message):
                        self.protocol.handle_body(event.body)
                    else:
                        self.protocol.report_damaged(event)
                except Exception:  # one message must never end the session
                    log.exception("failed to handle a message")


def _read_forever(stream: BinaryIO, session: Session) -> None:
    read = getattr(stream, "read1", stream.read)
    try:
        while data := read(CHUNK):
            session.push(data)
    except (OSError, ValueError) as exc:  # closed or broken stdin: same as its end
        log.error("reading stdin failed: %s", exc)
    session.push(b"")


async def serve_stdio(server, stdin: BinaryIO, stdout: BinaryIO) -> int:
    session = server.session = Session(server.protocol)
    server.protocol.set_writer(StdoutWriter(stdout))
    threading.Thread(target=_read_forever, args=(stdin, session), name="ghostframe-stdin", daemon=True).start()
    return await session.run()


def _busy_notice() -> bytes:
    body = json.dumps({"jsonrpc": "2.0", "method": "window/showMessage", "params": {
        "type": 1, "message": "ghostframe-server already serves another editor on this port; it serves one "
                              "client at a time. Start another server (another --port) for this one."}}).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


async def serve_tcp(server, host: str, port: int) -> int:
    """Serve the first client to connect; refuse others while it is connected; end when it leaves."""
    finished: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if getattr(server, "session", None) is not None:
            log.warning("refused a second TCP client %s: one client at a time", writer.get_extra_info("peername"))
            writer.write(_busy_notice())
            await writer.drain()
            writer.close()
            return
        session = server.session = Session(server.protocol)
        server.protocol.set_writer(writer)

        async def pump() -> None:
            try:
                while data := await reader.read(CHUNK):
                    session.push(data)
            except (OSError, asyncio.IncompleteReadError):
                pass
            session.push(b"")

        pumping = asyncio.ensure_future(pump())
        code = await session.run()
        pumping.cancel()
        writer.close()
        if not finished.done():
            finished.set_result(code)

    listener = await asyncio.start_server(connected, host, port)
    where = ", ".join("%s:%s" % s.getsockname()[:2] for s in listener.sockets)
    print(f"ghostframe-server: listening on {where} (TCP, for debugging: any local process can connect; "
          "one client at a time)", file=sys.stderr, flush=True)
    async with listener:
        return await finished
