"""Over LSP: $/cancelRequest and a newer request for the same document stop an older generation.

The scheduler's own tests (test_scheduler.py) step these rules token by token; these check that
the server wires them to pygls's cancellation and to one key per document. No timing: the
scheduler counts every generation that stopped early and after how many tokens. A generation
that ran on would reach maxNewTokens (200).
"""

from __future__ import annotations

import asyncio

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from conftest import TINY_MODEL, initialize, inline, open_document, server_command, status, wait_until

# The tiny random model never writes a newline after "score = model.score(", so a
# one-line suggestion runs to maxNewTokens: a long generation to interrupt. Speed-ups that
# would answer repeated requests without the model are off.
SOURCE = "score = model.score("
MAX_NEW_TOKENS = 200
LONG = {"maxNewTokens": MAX_NEW_TOKENS, "multiline": False}
SERVER = server_command("--model", str(TINY_MODEL), "--no-prefix-cache", "--no-typed-through")


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def slow_client(lsp_client: LanguageClient):
    """A server of its own per test: counters and in-flight state start at zero."""
    await initialize(lsp_client, LONG)
    await wait_until(lsp_client)
    yield
    await lsp_client.shutdown_session()


def request(client, uri, msg_id=None):
    return client.protocol.send_request_async(
        types.TEXT_DOCUMENT_INLINE_COMPLETION,
        types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=0, character=len(SOURCE)),
            context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic)),
        msg_id=msg_id,
    )


async def generating(client, timeout: float = 60) -> None:
    """Wait until the server has a generation in flight (it registers one per request it runs)."""
    async def in_flight():
        while (await status(client))["held"]["inFlight"] == 0:
            await asyncio.sleep(0)  # yield to the client's reader between status round trips
    await asyncio.wait_for(in_flight(), timeout)


async def test_cancel_request_stops_generation_and_next_request_works(slow_client):
    uri = "file:///work/cancel.py"
    open_document(slow_client, uri, SOURCE)
    pending = asyncio.ensure_future(request(slow_client, uri, msg_id="to-cancel"))
    await generating(slow_client)
    slow_client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="to-cancel"))
    with pytest.raises(Exception, match="cancel"):
        await pending  # answered with RequestCancelled
    # another document, so only $/cancelRequest (not supersession) can have stopped the first
    other = "file:///work/cancel-next.py"
    open_document(slow_client, other, SOURCE)
    items = await inline(slow_client, other, 0, len(SOURCE))
    assert items and items[0].insert_text
    counters = (await status(slow_client))["counters"]
    assert counters["cancelled"] == 1
    assert counters["lastCancelledAfterTokens"] < MAX_NEW_TOKENS  # it stopped early, not at the end


async def test_newer_request_supersedes_older_one_for_same_document(slow_client):
    uri = "file:///work/supersede.py"
    open_document(slow_client, uri, SOURCE)
    older = asyncio.ensure_future(request(slow_client, uri))
    await generating(slow_client)
    newer = await inline(slow_client, uri, 0, len(SOURCE))
    older_result = await older
    assert older_result == [] or getattr(older_result, "items", None) == []
    assert newer and newer[0].insert_text
    counters = (await status(slow_client))["counters"]
    assert counters["cancelled"] == 1 and counters["lastCancelledAfterTokens"] < MAX_NEW_TOKENS
