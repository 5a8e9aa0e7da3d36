"""The server on the llama.cpp engine, over LSP as an editor drives it: what it says it runs,
the same answers as the engine in process, warming where the cursor moved, and the next line's
suggestion computed ahead, so it shows at once after Tab and Enter."""

from __future__ import annotations

import asyncio

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from conftest import TINY_GGUF, initialize, inline, open_document, server_command, status, wait_until
from ghostframe.server.inference.engine import Limits, SpeedOptions
from ghostframe.server.inference.prompt import CompletionContext
from ghostframe.server.lsp.documents import context_after_accepting

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


async def wait_for_warm(client, above: int) -> dict:
    for _ in range(1200):
        if (current := await status(client))["warmedTokens"] > above:
            return current
        await asyncio.sleep(0.05)
    raise TimeoutError("nothing was warmed")


async def test_a_cursor_move_warms_the_prompt_there(client):
    uri = "file:///work/moved.py"
    open_document(client, uri, SOURCE * 20)
    await asyncio.sleep(0.5)  # the open's own warming, for the end of the file
    await wait_for_warm(client, 0)
    warmed = (await status(client))["warmedTokens"]
    client.protocol.notify("ghostframe/didMoveCursor", {"textDocument": {"uri": uri}, "position": {"line": 40, "character": 0}})
    await wait_for_warm(client, warmed)
    client.protocol.notify("ghostframe/didMoveCursor", {"textDocument": {"uri": uri}, "position": "nonsense"})
    assert (await inline(client, uri, 40, 0)) is not None  # a malformed notification changed nothing


async def test_after_tab_and_enter_the_next_line_was_computed_ahead(client):
    uri = "file:///work/accepted.py"
    text = "import pandas as pd\ndf = pd.read_csv('sales.csv')\ntotal = df"
    open_document(client, uri, text)
    shown = await inline(client, uri, 2, len("total = df"))
    suggestion = shown[0].insert_text if shown else ""
    assert suggestion, "the tiny model suggests something here"
    following = context_after_accepting(CompletionContext(text, ""), suggestion)
    for _ in range(600):  # the look-ahead runs on the model worker once the answer went out
        if (await status(client))["held"]["inFlight"] == 0:
            break
        await asyncio.sleep(0.05)
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(start=types.Position(2, 10), end=types.Position(2, 10)),
            text=following.before[len(text):])]))
    await inline(client, uri, 3, len(following.line_prefix))
    assert (await status(client))["lastPrefillTokens"] == 0  # answered without running the model


def test_the_line_after_accepting_is_indented_as_editors_do():
    ctx = CompletionContext("for x in xs", "")
    assert context_after_accepting(ctx, ":").before == "for x in xs:\n    "
    assert context_after_accepting(CompletionContext("    y = f(", ""), "x)").before == "    y = f(x)\n    "
    assert context_after_accepting(CompletionContext("\tif a", ""), ":").before == "\tif a:\n\t\t"
