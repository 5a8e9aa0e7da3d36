"""TCP mode (for debugging) listens on 127.0.0.1 only and serves one client at a time."""

from __future__ import annotations

import json
import re
import socket
import subprocess

from conftest import TINY_MODEL, frame, server_command


def read_message(sock: socket.socket) -> dict | None:
    """One LSP message from the socket; None when the server closed the connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(1)
        if not chunk:
            return None
        data += chunk
    length = int(re.search(rb"Content-Length: (\d+)", data).group(1))
    body = b""
    while len(body) < length:
        body += sock.recv(length - len(body))
    return json.loads(body)


def answer(sock: socket.socket, msg_id) -> dict:
    while (message := read_message(sock)) is not None:
        if message.get("id") == msg_id and "method" not in message:
            return message
    raise AssertionError(f"connection closed before the answer to {msg_id}")


def test_second_tcp_client_is_refused_with_a_message():
    proc = subprocess.Popen(server_command("--model", str(TINY_MODEL), "--tcp", "--port", "0"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        while "listening on" not in (line := proc.stderr.readline()):
            assert line, "the server ended before listening"
        host, port = re.search(r"listening on ([\d.]+):(\d+)", line).groups()
        assert host == "127.0.0.1"
        first = socket.create_connection((host, int(port)), timeout=60)
        first.sendall(frame({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                             "params": {"processId": None, "capabilities": {}}}))
        assert "capabilities" in answer(first, 1)["result"]

        second = socket.create_connection((host, int(port)), timeout=60)
        notice = read_message(second)
        assert notice["method"] == "window/showMessage" and "one client at a time" in notice["params"]["message"]
        assert read_message(second) is None  # and the connection is closed
        second.close()

        first.sendall(frame({"jsonrpc": "2.0", "id": 2, "method": "shutdown"}))
        assert answer(first, 2)["result"] is None
        first.sendall(frame({"jsonrpc": "2.0", "method": "exit"}))
        assert proc.wait(60) == 0
        first.close()
    finally:
        proc.kill()
        proc.wait()


def test_tcp_help_says_it_is_for_debugging():
    out = subprocess.run(server_command("--help"), capture_output=True, text=True, check=True).stdout
    flat = " ".join(out.split())
    assert "for debugging only" in flat and "any local process" in flat and "One client at a time" in flat
