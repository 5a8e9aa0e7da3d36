"""The server keeps its model warm: it warms a document's cache when it is opened, so the first request only
computes its last token, and it reloads the model only when a setting that needs it changed."""

from __future__ import annotations

from lsprotocol import types

from conftest import (OTHER_TINY_MODEL, RawServer, inline, open_document, status,  # noqa: F401 (raw_server)
                      wait_for_warm)
from ghostframe.server.inference.prompt import CompletionContext

SOURCE = "import pandas as pd\n\ndf = pd.read_csv('sales.csv')\nmonthly = df.groupby('month')['amount'].sum()\n"


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


# The tiny model suggests something at the end of this line (as in test_llama_server).
ACCEPTED = "import pandas as pd\ndf = pd.read_csv('sales.csv')\ntotal = df"
AT_THE_END = {"textDocument": {"uri": "file:///work/initialized.py"}, "position": {"line": 2, "character": 10},
              "context": {"triggerKind": 2}}


def open_and_ask(server: RawServer, msg_id: int) -> dict:
    server.send({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {
        "uri": AT_THE_END["textDocument"]["uri"], "languageId": "python", "version": 1, "text": ACCEPTED}}})
    return server.request(msg_id, "textDocument/inlineCompletion", AT_THE_END)


def announced_states(server: RawServer, since: int) -> list[str]:
    return [m["params"]["state"] for m in server.messages[since:] if m.get("method") == "ghostframe/status"]


def test_a_second_initialized_keeps_the_model_serving(raw_server):
    """Issue 32: a repeated `initialized` reloaded the model, and suggestions were empty meanwhile."""
    server = raw_server()
    server.initialize()
    assert server.wait_ready()["state"] == "ready"
    first = open_and_ask(server, 2)["result"]
    assert first, "the tiny model suggests something here"
    seen = len(server.messages)
    server.send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
    # handlers run in arrival order, so this request is answered after `initialized` was handled
    again = server.request(3, "textDocument/inlineCompletion", AT_THE_END)
    assert again["result"] == first
    assert "loading" not in announced_states(server, seen)


def test_a_second_initialized_reloads_when_the_pulled_model_changed(raw_server):
    server = raw_server()
    server.initialize(capabilities={"workspace": {"configuration": True}})

    def answer_configuration(settings: dict, asked_before: int) -> None:
        ask = server.wait_for(lambda m: m.get("method") == "workspace/configuration"
                              and server.messages.index(m) >= asked_before)
        server.send({"jsonrpc": "2.0", "id": ask["id"], "result": [settings]})

    answer_configuration({}, 0)
    assert server.wait_ready()["state"] == "ready"
    seen = len(server.messages)
    server.send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
    answer_configuration({"model": str(OTHER_TINY_MODEL)}, seen)
    reloaded = server.wait_for(lambda m: m.get("method") == "ghostframe/status" and server.messages.index(m) >= seen
                               and m["params"]["state"] in ("ready", "error"))["params"]
    assert reloaded["state"] == "ready" and reloaded["model"].endswith(OTHER_TINY_MODEL.name)
    assert "loading" in announced_states(server, seen)
