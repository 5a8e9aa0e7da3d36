"""Bad input never kills the server: each case gets a clear error or an empty answer, then it keeps serving."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

import pytest
from lsprotocol import types

from conftest import TINY_MODEL, OTHER_TINY_MODEL, inline, make_adapter, open_document, server_command, status, wait_until

SOURCE = "import pandas as pd\n\ndf = pd.read_csv('sales.csv')\ntotal = df['amount'].\n"
CURSOR = (3, len("total = df['amount']."))


async def still_serves(client) -> None:
    uri = "file:///work/alive.py"
    open_document(client, uri, SOURCE)
    assert len(await inline(client, uri, *CURSOR)) == 1


async def test_requests_while_loading_return_empty_at_once(client):
    uri = "file:///work/loading.py"
    open_document(client, uri, SOURCE)
    await client.workspace_execute_command_async(types.ExecuteCommandParams(command="ghostframe.reloadModel"))
    assert (await status(client))["state"] == "loading"
    started = time.perf_counter()
    assert await inline(client, uri, *CURSOR) == []
    assert time.perf_counter() - started < 1.0
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


async def test_ten_megabyte_document(client):
    uri = "file:///work/huge.py"
    body = "df = df.assign(total=df['a'] * df['b'])\n" * (10 * 1024 * 1024 // 40)
    open_document(client, uri, body + "result = df.")
    lines = body.count("\n")
    items = await asyncio.wait_for(inline(client, uri, lines, len("result = df.")), timeout=60)
    assert len(items) <= 1
    await still_serves(client)


async def test_lone_surrogates_in_text_do_not_break_completion(client):
    uri = "file:///work/surrogate.py"
    open_document(client, uri, "name = '\udcff'\ndf = pd.")
    items = await inline(client, uri, 1, len("df = pd."))
    assert len(items) <= 1
    await still_serves(client)


async def test_non_utf8_and_malformed_messages_are_survived(client):
    stdin = client._server.stdin
    for body in (b'{"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": "\xff\xfe"}',
                 b"{this is not json",
                 b'{"jsonrpc": "2.0", "id": 99001, "method": "textDocument/inlineCompletion", "params": {"x": 1}}'):
        stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    await stdin.drain()
    await asyncio.sleep(0.5)
    await still_serves(client)


async def test_invalid_settings_fall_back_with_a_message(client):
    client.messages.clear()
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
        settings={"ghostframe": {"maxNewTokens": -3, "device": "gpu", "multiline": "yes"}}))
    await still_serves(client)
    shown = "\n".join(m.message for m in client.messages)
    for key in ("maxNewTokens", "device", "multiline"):
        assert f"ghostframe.{key}" in shown
    assert (await status(client))["state"] == "ready"  # device fell back to its default: no reload


async def test_missing_model_path_is_reported_and_recovers(client):
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


async def test_adapter_for_another_base_model_is_refused(client, tmp_path):
    adapter = make_adapter(OTHER_TINY_MODEL, tmp_path / "adapter", with_metadata=True)
    await assert_adapter_refused(client, adapter, "was trained for base model")


async def test_adapter_of_another_shape_is_refused(client, tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM

    other = tmp_path / "wide"
    LlamaForCausalLM(LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                                 num_key_value_heads=1, vocab_size=1024)).save_pretrained(other)
    adapter = make_adapter(other, tmp_path / "adapter", with_metadata=False)
    await assert_adapter_refused(client, adapter, "does not fit")


async def test_matching_adapter_loads(client, tmp_path):
    adapter = make_adapter(TINY_MODEL, tmp_path / "adapter", with_metadata=True)
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
        settings={"ghostframe": {"adapter": str(adapter)}}))
    loaded = await wait_until(client, states=("ready", "error"))
    assert loaded["state"] == "ready" and loaded["adapter"] == str(adapter.resolve())
    await still_serves(client)
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={"ghostframe": {"adapter": ""}}))
    await wait_until(client)


def _frames(data: bytes) -> list[dict]:
    """Split an LSP byte stream into JSON messages; fail on anything that is not a frame."""
    messages = []
    while data:
        header, sep, rest = data.partition(b"\r\n\r\n")
        assert sep and header.startswith(b"Content-Length: "), f"not an LSP frame: {data[:80]!r}"
        fields = dict(line.split(b": ", 1) for line in header.split(b"\r\n"))
        length = int(fields[b"Content-Length"])
        messages.append(json.loads(rest[:length]))
        data = rest[length:]
    return messages


def test_stdout_carries_only_lsp():
    def frame(message: dict) -> bytes:
        body = json.dumps(message).encode()
        return b"Content-Length: %d\r\n\r\n" % len(body) + body

    session = b"".join(frame(m) for m in [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}, "processId": None}},
        {"jsonrpc": "2.0", "method": "initialized", "params": {}},
        {"jsonrpc": "2.0", "id": 2, "method": "workspace/executeCommand", "params": {"command": "ghostframe.status"}},
    ])
    proc = subprocess.Popen([sys.executable, "-m", "ghostframe.server", "--model", str(TINY_MODEL), "--log-level", "DEBUG"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        proc.stdin.write(session)
        proc.stdin.flush()
        time.sleep(8)  # long enough for the model to load and libraries to log
        tail = frame({"jsonrpc": "2.0", "id": 3, "method": "shutdown"}) + frame({"jsonrpc": "2.0", "method": "exit"})
        out, err = proc.communicate(tail, timeout=60)
    finally:
        proc.kill()
    messages = _frames(out)
    assert {m.get("id") for m in messages if "result" in m} >= {1, 2, 3}
    assert b"DEBUG" in err  # logs went to stderr
