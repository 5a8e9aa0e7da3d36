"""Every request gets an answer, over real stdio: malformed params, requests out of lifecycle
order and damaged frames get the JSON-RPC error LSP names, and the server keeps serving.
The tests that take `engine_model` run on both engines (torch, llama.cpp): the protocol must
not depend on which one serves."""

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


def test_params_that_do_not_deserialize_get_invalid_params(raw_server, engine_model):
    server = raw_server(model=engine_model)
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


def test_a_message_with_an_invalid_id_is_answered_with_a_null_id(raw_server, engine_model):
    """JSON-RPC answers every message with an id; one it cannot echo (LSP ids are integer | string)
    gets InvalidRequest with "id": null. Before the fix these got nothing."""
    server = raw_server(model=engine_model)
    server.initialize()
    invalid = [{"a": 1}, 1.5, True, None, [3]]
    for n, bad_id in enumerate(invalid, start=1):
        server.send({"jsonrpc": "2.0", "id": bad_id, "method": "workspace/executeCommand", "params": STATUS})
        # refusals are written before the next message is read: once 100 + n is answered, so is this one
        assert "result" in server.request(100 + n, "workspace/executeCommand", STATUS)
        answers = server.null_id_errors()
        assert len(answers) == n, (bad_id, server.messages[-3:])
        assert answers[-1]["error"]["code"] == -32600 and '"id"' in answers[-1]["error"]["message"]
    server.send(b"Content-Length: 1\r\n\r\n7")  # no JSON object at all: answered the same way
    server.request(110, "workspace/executeCommand", STATUS)
    assert len(server.null_id_errors()) == len(invalid) + 1
    # a response (the client's answer) with a null id is never answered
    server.send({"jsonrpc": "2.0", "id": None, "error": {"code": -32603, "message": "client failed"}})
    server.request(111, "workspace/executeCommand", STATUS)
    assert len(server.null_id_errors()) == len(invalid) + 1


def test_a_notification_sent_with_an_id_is_answered_and_not_applied(raw_server, engine_model):
    """An LSP notification's method with an id is answered MethodNotFound (-32601), the code
    vscode-jsonrpc answers for a method that has no request handler: LSP defines no request of
    that name. An error answer means nothing happened, so the notification is not applied:
    the document is not opened. Before the fix none of these was answered."""
    server = raw_server(model=engine_model)
    server.initialize()
    did_open = {"textDocument": {"uri": URI, "languageId": "python", "version": 1, "text": "x = 1\n"}}
    sent = {10: ("initialized", {}), 11: ("textDocument/didOpen", did_open), 12: ("$/cancelRequest", {"id": 3}),
            13: ("exit", None)}
    for msg_id, (method, params) in sent.items():
        server.send({"jsonrpc": "2.0", "id": msg_id, "method": method, **({} if params is None else {"params": params})})
        error = server.response(msg_id, QUICK)["error"]
        assert error["code"] == -32601 and method in error["message"] and "without an id" in error["message"]
    assert server.request(20, "workspace/executeCommand", STATUS)["result"]["held"]["documents"] == 0
    unknown = server.request(21, "textDocument/inlineCompletion", inline_params())["error"]
    assert unknown["code"] == -32602 and "Unknown document" in unknown["message"]
    assert server.proc.poll() is None  # `exit` with an id did not exit either
    assert server.request(22, "shutdown")["result"] is None
    server.send({"jsonrpc": "2.0", "method": "exit"})
    assert server.finish()[0] == 0


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


def test_damaged_frames_are_answered_and_the_server_resynchronises(raw_server, engine_model):
    server = raw_server(model=engine_model)
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
