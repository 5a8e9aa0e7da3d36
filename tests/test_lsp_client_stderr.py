"""Our LSP client drains the server's stderr: a server that logs a lot never blocks on a full pipe.

pygls's client pipes the server's stderr and never reads it; found by the 30-minute soak,
where the server hung in a log line after about 64 KB of logs.
"""

from __future__ import annotations

import asyncio

from conftest import TINY_MODEL
from ghostframe.server.tools.lsp_client import EditorClient


async def test_a_server_that_logs_a_lot_keeps_answering():
    client = EditorClient(verbose=False)
    # DEBUG: the server logs every message it sends and receives, several hundred bytes each
    await asyncio.wait_for(client.start_ready(["--model", str(TINY_MODEL), "--device", "cpu",
                                               "--log-level", "DEBUG"]), 120)
    try:
        for _ in range(400):  # well over a pipe buffer (64 KB) of log lines
            status = await asyncio.wait_for(client.server_status(), 30)
        assert status["state"] == "ready"
    finally:
        await client.close()
