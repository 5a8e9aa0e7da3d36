"""Bad input never kills the server: each case gets a clear error or an empty answer, then it keeps serving."""

from __future__ import annotations

import asyncio

import pytest
from lsprotocol import types

from conftest import (TINY_MODEL, OTHER_TINY_MODEL, frame, inline, make_adapter, open_document, status, wait_for_status,
                      wait_until)
from ghostframe.server.inference.engine import Limits
from ghostframe.server.inference.prompt import CompletionContext

SOURCE = "import pandas as pd\n\ndf = pd.read_csv('sales.csv')\ntotal = df['amount'].\n"
CURSOR = (3, len("total = df['amount']."))


async def still_serves(client) -> None:
    uri = "file:///work/alive.py"
    open_document(client, uri, SOURCE)
    assert len(await inline(client, uri, *CURSOR)) == 1


async def test_requests_while_loading_return_empty_at_once(fresh_client):
    client = fresh_client
    uri = "file:///work/loading.py"
    open_document(client, uri, SOURCE)
    await client.workspace_execute_command_async(types.ExecuteCommandParams(command="ghostframe.reloadModel"))
    assert (await status(client))["state"] == "loading"
    announced = len(client.statuses)
    assert await inline(client, uri, *CURSOR) == []
    # answered before the reload finished: "ready" was not yet announced when the answer came
    assert "ready" not in [s["state"] for s in client.statuses[announced:]]
    await wait_until(client)
    assert len(await inline(client, uri, *CURSOR)) == 1


async def test_position_beyond_the_document_is_a_clear_error(client):
    uri = "file:///work/short.py"
    open_document(client, uri, SOURCE)
    with pytest.raises(Exception, match="outside"):
        await inline(client, uri, 40, 0)
    with pytest.raises(Exception, match="past the end of line"):
        await inline(client, uri, 0, 500)
    await still_serves(client)


async def test_unknown_uri_is_a_clear_error(client):
    with pytest.raises(Exception, match="Unknown document"):
        await inline(client, "file:///never/opened.py", 0, 0)
    await still_serves(client)


async def test_ten_megabyte_document(client, tiny_engine):
    uri = "file:///work/huge.py"
    body = "df = df.assign(total=df['a'] * df['b'])\n" * (10 * 1024 * 1024 // 40)
    open_document(client, uri, body + "result = df.")
    lines = body.count("\n")
    items = await asyncio.wait_for(inline(client, uri, lines, len("result = df.")), timeout=60)
    expected = tiny_engine.complete(CompletionContext(body + "result = df.", ""),
                                    Limits(max_new_tokens=8, max_prompt_tokens=1024, multiline=True)).text
    assert [item.insert_text for item in items] == ([expected] if expected else [])
    await still_serves(client)


async def test_lone_surrogates_in_text_do_not_break_completion(client, tiny_engine):
    uri = "file:///work/surrogate.py"
    text = "name = '\udcff'\ndf = pd."
    open_document(client, uri, text)
    items = await inline(client, uri, 1, len("df = pd."))
    expected = tiny_engine.complete(CompletionContext(text, ""),
                                    Limits(max_new_tokens=8, max_prompt_tokens=1024, multiline=True)).text
    assert [item.insert_text for item in items] == ([expected] if expected else [])
    await still_serves(client)


def test_a_position_inside_a_surrogate_pair_is_the_characters_start(raw_server, engine_model):
    """Column 10 of `label = "😀` falls between the two UTF-16 halves of 😀: it is answered as
    column 9, the character's start. Before the fix it was taken as column 11, the prompt held
    the character and the answer was a run of U+FFFD. After the character (column 11) the tiny
    random model writes byte tokens that form no UTF-8: the suggestion ends before them, so no
    U+FFFD reaches the editor, nor the prompt of the next line computed ahead from it."""
    server = raw_server(model=engine_model)
    server.initialize()
    assert server.wait_ready()["state"] == "ready"
    uri = "file:///work/astral.py"
    server.open_document(uri, 'label = "😀')

    def suggestions(msg_id: int, character: int) -> list[str]:
        return server.inline_texts(msg_id, uri, 0, character)

    at_start = suggestions(2, 9)
    inside = suggestions(3, 10)
    assert inside == at_start
    after = suggestions(4, 11)
    assert not any("\ufffd" in suggestion for suggestion in inside + after), after


def test_a_suggestion_ends_before_bytes_that_are_no_text():
    from ghostframe.server.inference.prompt import finish_completion

    ctx = CompletionContext('label = "😀', "")
    assert finish_completion('" + name\ufffd\ufffd', ctx, multiline=False) == '" + name'
    assert finish_completion("\ufffd\ufffd\ufffd", ctx, multiline=False) == ""


def test_non_utf8_and_malformed_messages_are_answered(raw_server, engine_model):
    server = raw_server(model=engine_model)
    server.initialize()
    server.send(frame(b'{"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": "\xff\xfe"}'),
                frame(b'{"jsonrpc": "2.0", "id": 99000, "method": "shutdown", "params": "\xff"}'),
                frame(b"{this is not json"),
                frame({"jsonrpc": "2.0", "id": 99001, "method": "textDocument/inlineCompletion", "params": {"x": 1}}))
    assert server.response(99000)["error"]["code"] == -32700  # not UTF-8: a parse error, with its id
    assert server.response(99001)["error"]["code"] == -32602
    assert "result" in server.request(99002, "workspace/executeCommand", {"command": "ghostframe.status"})


async def test_invalid_settings_fall_back_with_a_message(fresh_client):
    client = fresh_client
    client.messages.clear()
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
        settings={"ghostframe": {"maxNewTokens": -3, "device": "gpu", "multiline": "yes"}}))
    await still_serves(client)
    shown = "\n".join(m.message for m in client.messages)
    for key in ("maxNewTokens", "device", "multiline"):
        assert f"ghostframe.{key}" in shown
    assert (await status(client))["state"] == "ready"  # device fell back to its default: no reload


async def test_missing_model_path_is_reported_and_recovers(fresh_client):
    client = fresh_client
    client.messages.clear()
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
        settings={"ghostframe": {"model": "/no/such/model"}}))
    failed = await wait_until(client, states=("error",))
    assert "/no/such/model" in failed["error"]
    assert any(m.type == types.MessageType.Error and "/no/such/model" in m.message for m in client.messages)
    uri = "file:///work/while-broken.py"
    open_document(client, uri, SOURCE)
    assert await inline(client, uri, *CURSOR) == []
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={"ghostframe": {"model": ""}}))
    await wait_until(client)
    await still_serves(client)


async def assert_adapter_refused(client, adapter, reason: str) -> None:
    """Switching to `adapter` fails with `reason`; switching back serves again."""
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
        settings={"ghostframe": {"adapter": str(adapter)}}))
    failed = await wait_until(client, states=("error",))
    assert reason in failed["error"]
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={"ghostframe": {"adapter": ""}}))
    await wait_until(client)
    await still_serves(client)


async def test_adapter_for_another_base_model_is_refused(fresh_client, tmp_path):
    client = fresh_client
    adapter = make_adapter(OTHER_TINY_MODEL, tmp_path / "adapter", with_metadata=True)
    await assert_adapter_refused(client, adapter, "was trained for base model")


async def test_adapter_of_another_shape_is_refused(fresh_client, tmp_path):
    client = fresh_client
    from transformers import LlamaConfig, LlamaForCausalLM

    other = tmp_path / "wide"
    LlamaForCausalLM(LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                                 num_key_value_heads=1, vocab_size=1024)).save_pretrained(other)
    adapter = make_adapter(other, tmp_path / "adapter", with_metadata=False)
    await assert_adapter_refused(client, adapter, "does not fit")


async def test_matching_adapter_loads(fresh_client, tmp_path):
    client = fresh_client
    adapter = make_adapter(TINY_MODEL, tmp_path / "adapter", with_metadata=True)
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
        settings={"ghostframe": {"adapter": str(adapter)}}))
    # the settings handler runs as a task, so a status request is no barrier: wait on the effect
    loaded = await wait_for_status(client, lambda s: s["state"] == "error" or (s["state"] == "ready" and s.get("adapter")))
    assert loaded["state"] == "ready" and loaded["adapter"] == str(adapter.resolve())
    uri = "file:///work/adapted.py"
    open_document(client, uri, SOURCE)
    await inline(client, uri, *CURSOR)  # answered, no error (the adapter's random weights may suggest nothing)
    assert (await status(client))["adapter"] == str(adapter.resolve())
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={"ghostframe": {"adapter": ""}}))
    await wait_for_status(client, lambda s: s["state"] == "ready" and not s.get("adapter"))
    await still_serves(client)


def test_stdout_carries_only_lsp(raw_server):
    """With DEBUG logging, a whole session (load, status, shutdown, exit) writes only LSP frames
    to stdout (RawServer parses it strictly) and its logs to stderr."""
    server = raw_server("--log-level", "DEBUG")
    assert "capabilities" in server.initialize()["result"]
    assert server.wait_ready()["state"] == "ready"  # the model loaded: libraries had their say
    assert server.request(2, "workspace/executeCommand", {"command": "ghostframe.status"})["result"]["ready"]
    assert server.request(3, "shutdown")["result"] is None
    server.send({"jsonrpc": "2.0", "method": "exit"})
    code, stderr = server.finish()
    assert code == 0 and server.garbage is None
    assert "DEBUG" in stderr  # logs went to stderr
