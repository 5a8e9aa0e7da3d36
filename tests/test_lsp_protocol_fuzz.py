"""A seeded protocol fuzz over real stdio, on each engine (torch and llama.cpp).

A stream of valid, malformed and misplaced messages, cut into random pieces, goes to the real
server. Every message that carries an id must get exactly one answer of the kind JSON-RPC and
LSP name (a null id where its own id cannot be echoed), notifications none, and afterwards the
server still serves, shuts down cleanly and has written nothing but LSP to stdout.
"""

from __future__ import annotations

import json
import random

from conftest import frame

SEED, MESSAGES = 32, 80
URI = "file:///work/fuzz.py"
SOURCE = 'import pandas as pd\nlabel = "😀𝔘"\ndf = pd.read_csv("a.csv")\ndf.'
LINE_UNITS = [len(line.encode("utf-16-le")) // 2 for line in SOURCE.split("\n")]
STATUS = {"command": "ghostframe.status"}
INVALID_IDS = [{"a": 1}, 1.5, True, False, None, [1], -0.5, 1e3]
NOTIFICATIONS = {  # LSP notifications, sent here with an id
    "initialized": {}, "exit": None, "$/cancelRequest": {"id": 1}, "$/setTrace": {"value": "off"},
    "textDocument/didOpen": {"textDocument": {"uri": "file:///work/never.py", "languageId": "python",
                                              "version": 1, "text": "x = 1\n"}},
    "textDocument/didClose": {"textDocument": {"uri": URI}},
    "workspace/didChangeConfiguration": {"settings": {"ghostframe": {"enable": False}}},
}
NULL_ID = "null id"  # the expected answer of a message whose id cannot be echoed


def request(msg_id, method: str, params=None) -> dict:
    return {"jsonrpc": "2.0", "id": msg_id, "method": method, **({} if params is None else {"params": params})}


def inline_params(line: int, character: int, **changes) -> dict:
    return {"textDocument": {"uri": URI}, "position": {"line": line, "character": character},
            "context": {"triggerKind": 2}, **changes}


def fuzz_cases(rng: random.Random, first_id: int) -> list[tuple[bytes, object]]:
    """(bytes to send, expected answer): "result", an error code, NULL_ID, or None (no answer)."""
    cases = []
    for msg_id in range(first_id, first_id + MESSAGES):
        kind = rng.choice(["status", "invalid id", "notification with id", "bad params", "unknown method",
                           "damaged frame", "wrong version", "not an object", "notification", "completion"])
        if kind == "status":
            cases.append((frame(request(msg_id, "workspace/executeCommand", STATUS)), "result"))
        elif kind == "invalid id":
            cases.append((frame(request(rng.choice(INVALID_IDS), "workspace/executeCommand", STATUS)), NULL_ID))
        elif kind == "notification with id":
            method = rng.choice(sorted(NOTIFICATIONS))
            cases.append((frame(request(msg_id, method, NOTIFICATIONS[method])), -32601))
        elif kind == "bad params":
            params = rng.choice([inline_params(0, 0, context=None), inline_params(0, 0, position={"line": "a"}),
                                 inline_params(-1, 0), [1, 2], "text"])
            cases.append((frame(request(msg_id, "textDocument/inlineCompletion", params)), -32602))
        elif kind == "unknown method":
            cases.append((frame(request(msg_id, "ghostframe/noSuchMethod", {})), -32601))
        elif kind == "damaged frame":
            body = json.dumps(request(msg_id, "workspace/executeCommand", STATUS)).encode()
            cases.append((b"Content-Length: x%d\r\n\r\n" % rng.randrange(100) + body, -32700))
        elif kind == "wrong version":
            cases.append((frame({**request(msg_id, "workspace/executeCommand", STATUS), "jsonrpc": "1.0"}), -32600))
        elif kind == "not an object":
            cases.append((frame(rng.choice([b"[]", b"7", b'"text"', b"null"])), NULL_ID))
        elif kind == "notification":
            cases.append((frame({"jsonrpc": "2.0", "method": "$/setTrace", "params": {"value": "off"}}), None))
        else:  # a completion anywhere on a line, inside surrogate pairs too, or past its end
            line = rng.randrange(len(LINE_UNITS))
            character = rng.randrange(LINE_UNITS[line] + 3)
            expected = "result" if character <= LINE_UNITS[line] else -32602
            cases.append((frame(request(msg_id, "textDocument/inlineCompletion", inline_params(line, character))),
                          expected))
    return cases


def in_pieces(rng: random.Random, data: bytes) -> list[bytes]:
    pieces, start = [], 0
    while start < len(data):
        size = rng.choice([1, 3, 17, 256, 4096])
        pieces.append(data[start:start + size])
        start += size
    return pieces


def test_every_message_with_an_id_gets_one_answer_of_its_kind(raw_server, engine_model):
    rng = random.Random(SEED)
    server = raw_server(model=engine_model)
    server.initialize(initializationOptions={"ghostframe": {"maxNewTokens": 4}})
    assert server.wait_ready()["state"] == "ready"
    server.send({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {
        "uri": URI, "languageId": "python", "version": 1, "text": SOURCE}}})
    cases = fuzz_cases(rng, first_id=100)
    for piece in in_pieces(rng, b"".join(data for data, _ in cases)):
        server.send(piece)
    barrier = 100 + MESSAGES
    assert "result" in server.request(barrier, "workspace/executeCommand", STATUS)

    for msg_id, (data, expected) in enumerate(cases, start=100):
        if expected in (None, NULL_ID):
            continue
        answer = server.response(msg_id, 60)
        if expected == "result":
            assert "result" in answer, (data, answer)
        else:
            assert answer.get("error", {}).get("code") == expected, (data, answer)
    answered = [m["id"] for m in server.messages if "method" not in m and m.get("id") is not None]
    assert len(answered) == len(set(answered)), "an id was answered twice"
    assert not set(answered) - {*range(100, barrier + 1), 1}, "an answer to an id that was never sent"
    # refusals are written before the next message is read, so all of them came before the barrier's answer
    assert len(server.null_id_errors()) == sum(expected == NULL_ID for _, expected in cases)
    assert all(m["error"]["code"] == -32600 for m in server.null_id_errors())

    assert server.request(barrier + 1, "workspace/executeCommand", STATUS)["result"]["held"]["documents"] == 1
    assert server.request(barrier + 2, "shutdown")["result"] is None
    server.send({"jsonrpc": "2.0", "method": "exit"})
    assert server.finish()[0] == 0
    assert server.garbage is None
