"""The server on the llama.cpp engine, over LSP as an editor drives it: what it says it runs,
the same answers as the engine in process, warming where the cursor moved, and the next line's
suggestion computed ahead, so it shows at once after Tab and Enter."""

from __future__ import annotations

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from conftest import (TINY_GGUF, initialize, inline, open_document, poll_status, server_command, status,
                      wait_for_warm, wait_until)
from ghostframe.server.inference.engine import Limits, SpeedOptions
from ghostframe.server.inference.prompt import CompletionContext
from ghostframe.server.inference.scheduler import context_after_accepting

SOURCE = ("import pandas as pd\n\ndf = pd.read_csv('sales.csv')\nmonthly = df.groupby('month')['amount'].sum()\n"
          "for month, total in monthly.items():\n    print(month, total)\n")


@pytest_lsp.fixture(scope="module", config=ClientServerConfig(server_command=server_command("--model", str(TINY_GGUF))))
async def client(lsp_client: LanguageClient):
    await initialize(lsp_client, {"maxNewTokens": 8, "multiline": False})
    await wait_until(lsp_client)
    yield
    await lsp_client.shutdown_session()


@pytest.fixture(scope="module")
def engine():
    """The same GGUF model on the llama.cpp engine in this process, to compute what the server should answer."""
    from ghostframe.server.inference.llama_engine import LlamaEngine
    from ghostframe.server.inference.model_loading import load_model

    loaded = load_model(str(TINY_GGUF), device="cpu", engine="llama")
    yield LlamaEngine(loaded, SpeedOptions(typed_through=False))
    loaded.model.close()


async def test_the_status_says_which_engine_serves_and_why(client):
    current = await status(client)
    assert current["engine"] == "llama.cpp" and current["engineReason"] == "a GGUF model on the CPU"
    assert current["model"] == TINY_GGUF.stem and current["precision"] == "ALL_F32" and current["modelChoice"] == ""


async def test_answers_are_the_engines(client, engine):
    uri = "file:///work/answers.py"
    open_document(client, uri, SOURCE)
    lines = SOURCE.split("\n")
    for line in (2, 3, 5):
        got = await inline(client, uri, line, len(lines[line]))
        before = "\n".join(lines[:line] + [lines[line]])
        want = engine.complete(CompletionContext(before, "\n" + "\n".join(lines[line + 1:])),
                               Limits(max_new_tokens=8, max_prompt_tokens=1024, multiline=False)).text
        assert (got[0].insert_text if got else "") == want


def common_prefix(a: list[int], b: list[int]) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


async def test_a_cursor_move_warms_the_prompt_there(client, engine):
    uri, text, line = "file:///work/moved.py", SOURCE * 20, 40
    lines = text.split("\n")
    at_end = engine.prompt_ids(CompletionContext(text.rstrip("\n"), "\n"), 1024)  # what opening warms
    before = "\n".join(lines[:line]) + "\n"
    at_cursor = engine.prompt_ids(CompletionContext(before, text[len(before):]), 1024)
    shared = common_prefix(at_end, at_cursor)
    assert shared < len(at_cursor) // 2, "opening alone must not warm the prompt at the cursor"
    warmed = (await status(client))["warmedTokens"]
    open_document(client, uri, text)
    warmed = (await wait_for_warm(client, warmed + len(at_end) - 1))["warmedTokens"]
    client.protocol.notify("ghostframe/didMoveCursor",
                           {"textDocument": {"uri": uri}, "position": {"line": line, "character": 0}})
    await wait_for_warm(client, warmed + len(at_cursor) - 1 - shared)
    shown = await inline(client, uri, line, 0)
    assert (await status(client))["lastPrefillTokens"] == 1  # the request computed only its last prompt token
    client.protocol.notify("ghostframe/didMoveCursor", {"textDocument": {"uri": uri}, "position": "nonsense"})
    assert (await status(client))["state"] == "ready"  # the malformed notification was ignored
    assert (await inline(client, uri, line, 0)) == shown
    client.text_document_did_close(types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(uri)))


async def test_after_tab_and_enter_the_next_line_was_computed_ahead(client):
    uri = "file:///work/accepted.py"
    text = "import pandas as pd\ndf = pd.read_csv('sales.csv')\ntotal = df"
    open_document(client, uri, text)
    shown = await inline(client, uri, 2, len("total = df"))
    suggestion = shown[0].insert_text if shown else ""
    assert suggestion, "the tiny model suggests something here"
    following = context_after_accepting(CompletionContext(text, ""), suggestion)
    # the look-ahead runs on the model worker once the answer went out
    await poll_status(client, lambda current: current["held"]["inFlight"] == 0, "done computing ahead")
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(start=types.Position(2, 10), end=types.Position(2, 10)),
            text=following.before[len(text):])]))
    await inline(client, uri, 3, len(following.line_prefix))
    assert (await status(client))["lastPrefillTokens"] == 0  # answered without running the model
    client.text_document_did_close(types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(uri)))


def test_the_line_after_accepting_is_indented_as_editors_do():
    ctx = CompletionContext("for x in xs", "")
    assert context_after_accepting(ctx, ":").before == "for x in xs:\n    "
    assert context_after_accepting(CompletionContext("    y = f(", ""), "x)").before == "    y = f(x)\n    "
    assert context_after_accepting(CompletionContext("\tif a", ""), ":").before == "\tif a:\n\t\t"
