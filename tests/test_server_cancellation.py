"""$/cancelRequest and a newer request for the same document stop an older generation."""

from __future__ import annotations

import asyncio
import time

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from conftest import TINY_MODEL, initialize, inline, open_document, server_command, wait_until

# The tiny random model never writes a newline after "score = model.score(", so a
# one-line suggestion runs to maxNewTokens: a long generation to interrupt. Speed-ups that
# would make repeated requests for the same text near-instant are off, so every request
# here costs the same and the timings compare like with like.
SOURCE = "score = model.score("
LONG = {"maxNewTokens": 200, "multiline": False}
SERVER = server_command("--model", str(TINY_MODEL), "--no-prompt-lookup", "--no-prefix-cache", "--no-typed-through")


@pytest_lsp.fixture(scope="module", config=ClientServerConfig(server_command=SERVER))
async def slow_client(lsp_client: LanguageClient):
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


async def full_generation_seconds(client, uri) -> float:
    started = time.perf_counter()
    items = await inline(client, uri, 0, len(SOURCE))
    assert items, "the long generation should produce text"
    return time.perf_counter() - started


async def test_cancel_request_stops_generation_and_next_request_works(slow_client):
    uri = "file:///work/cancel.py"
    open_document(slow_client, uri, SOURCE)
    full = await full_generation_seconds(slow_client, uri)

    pending = asyncio.ensure_future(request(slow_client, uri, msg_id="to-cancel"))
    await asyncio.sleep(full * 0.1)
    slow_client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="to-cancel"))
    # another document, so only $/cancelRequest (not supersession) can free the model
    other = "file:///work/cancel-next.py"
    open_document(slow_client, other, SOURCE)
    started = time.perf_counter()
    items = await inline(slow_client, other, 0, len(SOURCE))
    after_cancel = time.perf_counter() - started
    with pytest.raises(Exception, match="cancel"):
        await pending  # answered with RequestCancelled
    assert items
    full = (full + await full_generation_seconds(slow_client, other)) / 2  # the machine's speed now, too
    # Had the cancelled generation gone on, this request would have waited for its remaining ~90 %.
    assert after_cancel < full * 1.5, (after_cancel, full)


async def test_newer_request_supersedes_older_one_for_same_document(slow_client):
    uri = "file:///work/supersede.py"
    open_document(slow_client, uri, SOURCE)
    full = await full_generation_seconds(slow_client, uri)

    started = time.perf_counter()
    older = asyncio.ensure_future(request(slow_client, uri))
    await asyncio.sleep(full * 0.1)
    newer = await inline(slow_client, uri, 0, len(SOURCE))
    both = time.perf_counter() - started
    older_result = await older
    assert older_result == [] or getattr(older_result, "items", None) == []
    assert newer
    full = (full + await full_generation_seconds(slow_client, uri)) / 2  # the machine's speed now, too
    # Had the older generation gone on, both together would take ~1.9x one generation.
    assert both < full * 1.5, (both, full)
