"""Every request gets an answer, over real stdio: malformed params, requests out of lifecycle
order and damaged frames get the JSON-RPC error LSP names, and the server keeps serving."""

from __future__ import annotations

import json

from conftest import frame

URI = "file:///work/a.py"
STATUS = {"command": "ghostframe.status"}
QUICK = 30  # seconds to wait for an answer that must come at once (before the fix it never came)


def inline_params(**changes) -> dict:
    params = {"textDocument": {"uri": URI}, "position": {"line": 0, "character": 0}, "context": {"triggerKind": 2}}
    return {**params, **changes}


def request_body(msg_id, method="workspace/executeCommand", params=STATUS) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params}).encode()


def test_request_before_initialize_is_server_not_initialized(raw_server):
    server = raw_server()
    answer = server.request(0, "workspace/executeCommand", STATUS)
    assert answer["error"]["code"] == -32002 and "initialize" in answer["error"]["message"]
    info = server.initialize()["result"]["serverInfo"]
    from ghostframe.server import __version__
    assert info == {"name": "ghostframe", "version": __version__}
    assert server.request(2, "workspace/executeCommand", STATUS)["result"]["state"] in ("loading", "ready")
    assert server.request(3, "initialize", {"processId": None, "capabilities": {}})["error"]["code"] == -32600


def test_params_that_do_not_deserialize_get_invalid_params(raw_server):
    server = raw_server()
    server.initialize()
    server.send({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {
        "uri": URI, "languageId": "python", "version": 1, "text": "x = 1\n"}}})
    cases = {
        "no context": ("textDocument/inlineCompletion", {k: v for k, v in inline_params().items() if k != "context"}),
        "line -1": ("textDocument/inlineCompletion", inline_params(position={"line": -1, "character": 0})),
        "line 2**64": ("textDocument/inlineCompletion", inline_params(position={"line": 2**64, "character": 0})),
        "params null": ("textDocument/inlineCompletion", None),
        "params a list": ("textDocument/inlineCompletion", [1, 2]),
        "completion without position": ("textDocument/completion", {"textDocument": {"uri": URI}}),
        "command without name": ("workspace/executeCommand", {"arguments": []}),
    }
    for msg_id, (name, (method, params)) in enumerate(cases.items(), start=10):
        server.send({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
        answer = server.response(msg_id, QUICK)
        assert answer["error"]["code"] == -32602, (name, answer)
        assert method in answer["error"]["message"], name
    server.send({"jsonrpc": "2.0", "id": 30, "method": "workspace/executeCommand"})  # no params at all
    assert server.response(30, QUICK)["error"]["code"] == -32602
    for msg_id, message in ((31, {"jsonrpc": "1.0", "id": 31, "method": "shutdown"}),
                            (32, {"jsonrpc": "2.0", "id": 32, "method": 7})):
        server.send(message)
        assert server.response(msg_id, QUICK)["error"]["code"] == -32600
    assert server.request(40, "workspace/executeCommand", STATUS)["result"]["held"]["documents"] == 1


def test_after_shutdown_requests_are_invalid_and_exit_returns_0(raw_server):
    server = raw_server()
    server.initialize()
    assert server.request(2, "shutdown")["result"] is None
    answer = server.request(3, "workspace/executeCommand", STATUS)
    assert answer["error"]["code"] == -32600 and "shutdown" in answer["error"]["message"]
    server.send({"jsonrpc": "2.0", "method": "exit"})
    assert server.finish()[0] == 0


def test_exit_without_shutdown_returns_1(raw_server):
    server = raw_server()
    server.initialize()
    server.send({"jsonrpc": "2.0", "method": "exit"})
    assert server.proc.wait(60) == 1


def test_damaged_frames_are_answered_and_the_server_resynchronises(raw_server):
    server = raw_server()
    server.initialize()
    damaged = {
        10: b"Content-Length: abc\r\n\r\n" + request_body(10),
        12: b"Content-Type: application/vscode-jsonrpc\r\n\r\n" + request_body(12),  # no Content-Length
        14: b"Content-Length: 500\r\n\r\n" + request_body(14)[:40],  # body cut short, next frame follows
        16: frame(b'{"jsonrpc": "2.0", "id": 16, "method": "workspace/exe'),  # a frame of broken JSON
        18: b"Content-Length: %d\r\n\r\n" % (len(request_body(18)) + 9) + request_body(18)[:-5],  # eats a header
    }
    for msg_id, data in damaged.items():
        server.send(data, frame(request_body(msg_id + 1)))
        answer = server.response(msg_id + 1, QUICK)  # the next valid request is served
        assert answer["result"]["state"] in ("loading", "ready"), answer
        assert server.response(msg_id, QUICK)["error"]["code"] == -32700, msg_id
    server.send(b"some bytes that are no LSP at all\r\n\r\n", frame(request_body(20)))
    assert "result" in server.response(20, QUICK)
    assert server.request(21, "shutdown")["result"] is None
    server.send({"jsonrpc": "2.0", "method": "exit"})
    assert server.finish()[0] == 0


def test_stream_ending_inside_a_message_exits_with_a_message(raw_server):
    server = raw_server()
    server.initialize()
    server.send(b"Content-Length: 100\r\n\r\n" + request_body(5)[:30])
    code, stderr = server.finish()
    assert code == 1
    assert "ended inside a message" in stderr
