"""The server warms a document's cache when it is opened, so the first request only computes its last token."""

from __future__ import annotations

import asyncio

from lsprotocol import types

from conftest import inline, open_document, status
from ghostframe.server.inference.prompt import CompletionContext

SOURCE = "import pandas as pd\n\ndf = pd.read_csv('sales.csv')\nmonthly = df.groupby('month')['amount'].sum()\n"


async def wait_for_warm(client, tokens: int) -> dict:
    for _ in range(1200):
        current = await status(client)
        if current["warmedTokens"] >= tokens:
            return current
        await asyncio.sleep(0.05)
    raise TimeoutError(f"warming stayed at {current['warmedTokens']} of {tokens} tokens")


async def test_opening_a_document_warms_it_for_the_first_request(client, tiny_engine):
    before = (await status(client))["warmedTokens"]
    uri = "file:///work/opened.py"
    open_document(client, uri, SOURCE)
    prompt = tiny_engine.prompt_ids(CompletionContext(SOURCE.rstrip("\n"), "\n"), 1024)
    await wait_for_warm(client, before + len(prompt) - 1)
    lines = SOURCE.split("\n")
    await inline(client, uri, len(lines) - 2, len(lines[-2]))  # the end of the last line of code
    assert (await status(client))["lastPrefillTokens"] == 1


async def test_an_edit_is_warmed_once_the_user_pauses(client, tiny_engine):
    uri = "file:///work/edited.py"
    open_document(client, uri, "")
    warmed = (await status(client))["warmedTokens"]
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(start=types.Position(0, 0), end=types.Position(0, 0)), text=SOURCE)],
    ))
    prompt = tiny_engine.prompt_ids(CompletionContext(SOURCE.rstrip("\n"), "\n"), 1024)
    assert (await wait_for_warm(client, warmed + len(prompt) - 1))["warmedTokens"] > warmed


async def test_status_reports_the_cpu_flags_and_how_the_precision_was_chosen(client):
    from ghostframe.server.inference.machine import cpu_flags, cpu_name

    current = await status(client)
    assert cpu_name() in current["cpu"] and all(flag in current["cpu"] for flag in cpu_flags())
    assert current["precisionChoice"].startswith(current["precision"])  # e.g. "int8 (prefill in float32; default)"
