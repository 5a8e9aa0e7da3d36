"""The remote engine against a real llama-server (xllamacpp's, in a process of its own, on the tiny
random GGUF): the local llama.cpp engine's greedy answers through both APIs, the FIM prompt, a
stream closed when cancelled, per-request LoRA, a key the server refuses, and a server that is down,
slow, full or answers garbage (those three on a socket of the test's own: llama-server cannot be
made to misbehave) ending in an empty suggestion and a state, never a hang."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from contextlib import contextmanager

import pytest

from conftest import TINY_QWEN2_GGUF, TINY_QWEN2_GGUF_HF
from ghostframe.server.inference.default_model import ModelLoadError
from ghostframe.server.inference.engine import NO_SPEEDUPS, Limits, SpeedOptions
from ghostframe.server.inference.engines import make_engine
from ghostframe.server.inference.model_loading import load_model
from ghostframe.server.inference.prompt import CompletionContext, fim_tokens
from ghostframe.server.inference.remote_client import (API_KEY_VARIABLE, AT_CAPACITY, BAD_ANSWER, OK, TIMED_OUT,
                                                       UNAUTHORIZED, UNREACHABLE, Endpoint, EndpointError,
                                                       RemoteClient)
from ghostframe.server.inference.remote_engine import RemoteEngine
from ghostframe.server.inference.remote_slot import LOST_BELOW_TOKENS
from ghostframe.server.testing.llama_server import LlamaServer, free_port

CONTEXTS = [
    CompletionContext("import pandas as pd\ndf = pd.read_csv('sales.csv')\ndf.", "\nprint(df)\n"),
    CompletionContext("def load_data(path):\n    ", "\n\nX = load_data('x.csv')\n"),
    CompletionContext("X_train, X_test, y_train, y_test = train_test_split(", ")\n"),
]
LIMITS = Limits(max_new_tokens=16, max_prompt_tokens=256, multiline=True)


@pytest.fixture(scope="module")
def server():
    running = LlamaServer.start(TINY_QWEN2_GGUF, parallel=2, slot_tokens=8192)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def one_slot():
    running = LlamaServer.start(TINY_QWEN2_GGUF, parallel=1, slot_tokens=8192)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def local():
    loaded = load_model(str(TINY_QWEN2_GGUF), device="cpu", engine="llama")
    yield make_engine(loaded, NO_SPEEDUPS)
    loaded.model.close()


def remote(url: str, api: str = "llama-server", adapter: str | None = None, options: SpeedOptions = NO_SPEEDUPS,
           **endpoint) -> RemoteEngine:
    loaded = load_model(str(TINY_QWEN2_GGUF), adapter, engine="remote",
                        endpoint=Endpoint.from_settings(url, api, **endpoint))
    return make_engine(loaded, options)


@pytest.mark.parametrize("api", ["llama-server", "openai"])
def test_the_answer_is_the_local_llama_cpp_engines(server, local, api):
    engine = remote(server.url, api)
    assert engine.kind == "remote" and engine.loaded.engine == "remote"
    for ctx in CONTEXTS:
        for multiline in (False, True):
            limits = Limits(max_new_tokens=16, max_prompt_tokens=256, multiline=multiline)
            got, want = engine.complete(ctx, limits), local.complete(ctx, limits)
            assert (got.text, got.new_tokens) == (want.text, want.new_tokens), ctx.before
            assert got.token_logprobs == pytest.approx(want.token_logprobs, abs=1e-3)
    assert engine.health == OK and engine.describe_health() == OK


def test_no_weights_are_loaded_only_the_tokenizer():
    loaded = load_model(str(TINY_QWEN2_GGUF), engine="remote", endpoint=Endpoint.from_settings("http://127.0.0.1:9"))
    assert isinstance(loaded.model, RemoteClient) and loaded.tokenizer is not None and loaded.stop_token_ids
    assert loaded.device == "remote 127.0.0.1"


def test_the_prompt_is_the_fim_prompt_built_here(server, local):
    engine = remote(server.url)
    ctx = CONTEXTS[1]
    ids = engine.prompt_ids(ctx, 256)
    assert ids == local.prompt_ids(ctx, 256)
    prefix, suffix, middle = (engine.loaded.tokenizer.convert_tokens_to_ids(t) for t in fim_tokens(engine.loaded.tokenizer))
    assert ids[0] == prefix and ids.index(suffix) < ids.index(middle)  # the cursor's line follows <fim_middle>
    answered = engine.client.post_json("/completion", {"prompt": ids, "n_predict": 0, "cache_prompt": False})
    assert answered["tokens_evaluated"] == len(ids)  # the server took the ids as they are, nothing added


def test_a_cancelled_request_closes_its_stream_and_the_server_stops(server, one_slot):
    engine = remote(one_slot.url, options=SpeedOptions(typed_through=False, predict_cap=None))
    before = one_slot.metrics()["llamacpp:tokens_predicted_total"]
    cancel = threading.Event()
    stream = engine.client.stream("/completion", {"prompt": engine.prompt_ids(CONTEXTS[0], 256), "n_predict": 6000,
                                                  "temperature": 0.0, "stream": True, "ignore_eos": True}, cancel)
    for n, _ in enumerate(stream, 1):
        if n == 2:
            cancel.set()  # a newer keystroke
    assert n <= 3
    time.sleep(0.3)
    assert one_slot.metrics()["llamacpp:tokens_predicted_total"] - before < 50  # not 6000: the slot was freed
    # and through the engine: a cancel mid-stream answers empty, marked cancelled, and the next request works
    asked = []
    decode = engine._decode

    def cancelling(ids, max_new_tokens, stop, cache):
        def rule(new, text=None):
            asked.append(len(new))
            if len(new) >= 3:
                stop.cancel.set()
            return stop(new, text)
        rule.cancel = stop.cancel
        return decode(ids, max_new_tokens, rule, cache)

    engine._decode = cancelling
    stopped = engine.complete(CONTEXTS[0], Limits(max_new_tokens=200, max_prompt_tokens=256, multiline=True),
                              cancel=threading.Event(), document="d")
    assert stopped.cancelled and stopped.text == "" and max(asked) <= 4
    del engine._decode
    # the next keystroke at once: a slot still busy with our own stopped request is not "at capacity"
    assert engine.complete(CONTEXTS[0], LIMITS, document="d").text and engine.health == OK


def test_a_request_cancelled_before_it_starts_sends_nothing(server):
    engine = remote(server.url)
    before = server.metrics()["llamacpp:prompt_tokens_total"]
    cancel = threading.Event()
    cancel.set()
    assert engine.complete(CONTEXTS[0], LIMITS, cancel=cancel).cancelled
    assert server.metrics()["llamacpp:prompt_tokens_total"] == before


@pytest.fixture(scope="module")
def lora_server(tmp_path_factory):
    """llama-server with a random LoRA on the tiny GGUF, loaded at start (`--lora adapter.gguf`)."""
    from test_gguf_adapter import make_lora

    from ghostframe.server.inference.gguf_adapter import export_gguf_lora

    folder = tmp_path_factory.mktemp("lora") / "team-adapter"
    make_lora(TINY_QWEN2_GGUF_HF, folder, sigma=0.5)
    running = LlamaServer.start(TINY_QWEN2_GGUF, lora=(export_gguf_lora(folder),))
    yield running
    running.stop()


def test_a_named_adapter_changes_the_answer_per_request(lora_server, local):
    base = remote(lora_server.url)
    named = remote(lora_server.url, adapter="team-adapter")  # the adapter's folder name, as the server lists it
    unknown = remote(lora_server.url, adapter="no-such-adapter")
    for ctx in CONTEXTS:
        want = local.complete(ctx, LIMITS).text
        assert base.complete(ctx, LIMITS).text == want  # not named: every server-side adapter at scale 0
        assert unknown.complete(ctx, LIMITS).text == want
    assert [named.complete(ctx, LIMITS).text for ctx in CONTEXTS] != [local.complete(c, LIMITS).text for c in CONTEXTS]
    assert named._lora == [{"id": 0, "scale": 1.0}] and base._lora == [{"id": 0, "scale": 0.0}]
    assert not named.adapter_note
    assert "no-such-adapter" in unknown.describe_health() and "adapter.gguf" in unknown.describe_health()


def test_an_openai_request_names_the_adapter_as_its_model(server):
    engine = remote(server.url, "openai", adapter="team-adapter", model="base")
    path, body = engine._body([1, 2], 4, None, 1, True)
    assert path == "/v1/completions" and body["model"] == "team-adapter"
    assert remote(server.url, "openai", model="base")._body([1], 4, None, 1, True)[1]["model"] == "base"


def test_a_server_that_is_down_answers_empty_and_the_next_request_after_it_is_back_works(local):
    running = LlamaServer.start(TINY_QWEN2_GGUF)
    try:
        engine = remote(running.url, options=SpeedOptions(warm=False, prefetch=False))
        ctx = CONTEXTS[0]
        assert engine.complete(ctx, LIMITS, document="d").text == local.complete(ctx, LIMITS).text
        running.stop()
        started = time.perf_counter()
        down = engine.complete(CONTEXTS[2], LIMITS, document="d")
        assert down.text == "" and engine.health == UNREACHABLE and time.perf_counter() - started < 3
        assert "unreachable" in engine.describe_health()
        again = engine.complete(CONTEXTS[2], LIMITS, document="d")  # not answered "" from memory
        assert again.text == "" and not again.typed_through
        running.restart()
        back = engine.complete(CONTEXTS[2], LIMITS, document="d")
        assert back.text == local.complete(CONTEXTS[2], LIMITS).text and engine.health == OK
    finally:
        running.stop()


@contextmanager
def fake_server(answer: bytes | None):
    """A socket that answers every request with `answer` (None: accepts and never answers). Only for
    what a real llama-server cannot be made to do: stall, fail or send garbage. Yields (url, requests)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    requests: list[bytes] = []
    held = []

    def serve():
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            held.append(connection)
            data = b""
            while b"\r\n\r\n" not in data and (chunk := connection.recv(65536)):
                data += chunk
            head, _, rest = data.partition(b"\r\n\r\n")
            length = re.search(rb"content-length: *(\d+)", head, re.I)
            while length and len(rest) < int(length.group(1)) and (chunk := connection.recv(65536)):
                rest += chunk
            requests.append(head + b"\r\n\r\n" + rest)
            if answer is not None:
                connection.sendall(answer)
                connection.close()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", requests
    finally:
        listener.close()
        for connection in held:
            connection.close()


def http_answer(status: str, body: bytes, content_type: str = "application/json") -> bytes:
    return (f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
            f"Connection: close\r\n\r\n").encode() + body


@pytest.mark.parametrize("answer, state", [
    (http_answer("500 Internal Server Error", b'{"error": "boom"}'), BAD_ANSWER),
    (http_answer("200 OK", b"<html>a proxy's page</html>", "text/html"), BAD_ANSWER),
    (http_answer("200 OK", b"data: {not json\n\n", "text/event-stream"), BAD_ANSWER),
    (http_answer("200 OK", b'data: {"unexpected": 1}\n\n', "text/event-stream"), BAD_ANSWER),
    (http_answer("200 OK", b'data: {"content": "x", "completion_probabilities": [{"no": "id"}]}\n\n',
                 "text/event-stream"), BAD_ANSWER),
    (http_answer("200 OK", b'data: {"choices": [{"text": 5}]}\n\n', "text/event-stream"), BAD_ANSWER),
    (http_answer("503 Service Unavailable", b'{"error": {"code": 503, "message": "no slot"}}'), AT_CAPACITY),
    (http_answer("401 Unauthorized", b'{"error": "Invalid API Key"}'), UNAUTHORIZED),
])
def test_garbage_failures_and_a_full_server_answer_empty_at_once(answer, state):
    with fake_server(answer) as (url, requests):
        engine = remote(url)
        started = time.perf_counter()
        got = engine.complete(CONTEXTS[0], LIMITS)
        assert got.text == "" and engine.health == state and time.perf_counter() - started < 3
        asked = [r.split(b" ")[1] for r in requests]
        # no retry: a server that answered is asked each thing once at most (its context, adapters, the completion)
        assert asked and len(asked) == len(set(asked)) and set(asked) <= {b"/props", b"/lora-adapters", b"/completion"}


def test_a_slow_server_times_out_and_never_hangs():
    with fake_server(None) as (url, _):
        engine = remote(url)
        engine.client.endpoint = engine.endpoint = Endpoint(url, read_timeout=0.5)
        engine.client = RemoteClient(engine.endpoint)
        started = time.perf_counter()
        assert engine.complete(CONTEXTS[0], LIMITS).text == ""
        assert engine.health == TIMED_OUT and time.perf_counter() - started < 2


def test_a_refused_connection_is_retried_with_back_off_then_unreachable():
    port = free_port()  # nothing listens there
    client = RemoteClient(Endpoint(f"http://127.0.0.1:{port}", retries=2))
    started = time.perf_counter()
    with pytest.raises(Exception) as raised:
        client.post_json("/completion", {})
    assert raised.value.state == UNREACHABLE and 0.25 <= time.perf_counter() - started < 2  # 0.1 + 0.2 s between


def test_the_api_key_is_sent_and_a_wrong_one_is_unauthorized(monkeypatch, local):
    running = LlamaServer.start(TINY_QWEN2_GGUF, api_key="team-secret-1234")
    try:
        monkeypatch.setenv(API_KEY_VARIABLE, "wrong-key-5678")
        refused = remote(running.url)
        assert refused.complete(CONTEXTS[0], LIMITS).text == "" and refused.health == UNAUTHORIZED
        assert "wrong-key" not in refused.describe_health()
        monkeypatch.setenv(API_KEY_VARIABLE, "team-secret-1234")
        served = remote(running.url)
        assert served.complete(CONTEXTS[0], LIMITS).text == local.complete(CONTEXTS[0], LIMITS).text
        assert "team-secret" not in repr(served.endpoint)
    finally:
        running.stop()


@pytest.mark.parametrize("url, allowed, ok", [
    ("http://127.0.0.1:8012", False, True),
    ("http://localhost:8012", False, True),
    ("http://[::1]:8012", False, True),
    ("https://gpu-box.example:8012", False, True),
    ("http://gpu-box.example:8012", False, False),
    ("http://gpu-box.example:8012", True, True),
    ("ftp://gpu-box.example", True, False),
    ("http://user:key@127.0.0.1:8012", False, False),
    ("not a url", False, False),
])
def test_http_to_another_machine_is_refused_unless_allowed(url, allowed, ok):
    if ok:
        Endpoint.from_settings(url, allow_insecure_http=allowed)
        return
    with pytest.raises(EndpointError):
        Endpoint.from_settings(url, allow_insecure_http=allowed)
    with pytest.raises(ModelLoadError):
        load_model(str(TINY_QWEN2_GGUF), engine="remote", endpoint=Endpoint(url, allow_insecure_http=allowed))


def test_without_an_endpoint_the_remote_engine_says_what_to_set():
    with pytest.raises(ModelLoadError, match="ghostframe.endpoint"):
        load_model(str(TINY_QWEN2_GGUF), engine="remote", endpoint=None)


def test_a_missing_ca_file_and_an_unknown_api_are_refused(tmp_path):
    with pytest.raises(EndpointError, match="CA file"):
        Endpoint.from_settings("https://gpu-box.example", ca_file=str(tmp_path / "none.pem"))
    with pytest.raises(EndpointError, match="llama-server, openai"):
        Endpoint.from_settings("https://gpu-box.example", "grpc")


def test_events_of_both_formats_are_read():
    from ghostframe.server.inference.remote_engine import parse_event

    native = {"content": "ab", "tokens": [5, 6], "completion_probabilities": [{"id": 5, "logprob": -1.0},
                                                                            {"id": 6, "logprob": -2.0}]}
    assert parse_event(native) == ([5, 6], "ab", [-1.0, -2.0], {})
    vllm = {"choices": [{"text": "x", "logprobs": {"tokens": ["token_id:7"], "token_logprobs": [-0.5]}}]}
    assert parse_event(vllm) == ([7], "x", [-0.5], {})
    plain = {"choices": [{"text": "y", "logprobs": None}]}
    assert parse_event(plain) == (None, "y", [], {})
    assert json.dumps(parse_event({"content": "", "stop": True, "timings": {"cache_n": 3}})[3]) == '{"cache_n": 3}'


# --------------------------------------------------------------------------- the real ghostframe server


def test_the_language_server_serves_from_the_endpoint_and_never_logs_the_key(raw_server, monkeypatch):
    """`ghostframe-server --engine remote --endpoint URL` answers textDocument/inlineCompletion from the team
    server, shows its state in ghostframe.status, and its debug log never holds the API key."""
    key = "team-secret-9f8e7d"
    running = LlamaServer.start(TINY_QWEN2_GGUF, api_key=key)
    try:
        for sent, state in (("wrong-secret-1a2b3c", UNAUTHORIZED), (key, OK)):
            monkeypatch.setenv(API_KEY_VARIABLE, sent)
            before = running.metrics()["llamacpp:prompt_tokens_total"]
            server = raw_server("--engine", "remote", "--endpoint", running.url, "--log-level", "DEBUG",
                                model=TINY_QWEN2_GGUF)
            server.initialize(capabilities={"textDocument": {"inlineCompletion": {}}})
            assert server.wait_ready()["state"] == "ready"
            uri = "file:///work/team.py"
            server.open_document(uri, CONTEXTS[0].before + CONTEXTS[0].after)
            answer = server.inline_texts(2, uri, 2, 3)
            status = server.request(3, "workspace/executeCommand", {"command": "ghostframe.status"})["result"]
            assert status["engine"] == "remote" and status["remote"].startswith(state), status
            if state == OK:
                assert answer and answer[0]
                assert running.metrics()["llamacpp:prompt_tokens_total"] > before  # the prompt reached the server
            else:
                assert answer == []
            server.request(4, "shutdown")
            server.send({"jsonrpc": "2.0", "method": "exit"})
            code, stderr = server.finish()
            assert code == 0 and "remote" in stderr and sent not in stderr and key not in stderr
            assert sent not in json.dumps(server.messages)  # nor anything the editor is sent
    finally:
        running.stop()


def test_ghostframe_train_says_how_to_serve_its_adapter_on_llama_server_and_vllm(tmp_path):
    from ghostframe.trainer.cli import serving_hint

    hint = serving_hint(tmp_path / "pandas-lora", str(TINY_QWEN2_GGUF))
    assert f"llama-server -m {TINY_QWEN2_GGUF} --lora {tmp_path / 'pandas-lora' / 'adapter.gguf'}" in hint
    assert f"--enable-lora --lora-modules pandas-lora={tmp_path / 'pandas-lora'}" in hint
    assert "ghostframe.adapter 'pandas-lora'" in hint and "ghostframe.endpointApi openai" in hint


def test_ollama_gets_the_prompt_as_raw_text_and_its_json_lines_are_read(server):
    """Ollama cannot run here: its request is checked as built, and its JSON-lines answer on the test's socket."""
    from ghostframe.server.inference.remote_engine import parse_event

    engine = remote(server.url, "ollama", model="qwen2.5-coder:1.5b-base")
    ids = engine.prompt_ids(CONTEXTS[1], 256)
    path, body = engine._body(ids, 8, None, 1, True)
    assert path == "/api/generate" and body["raw"] and body["model"] == "qwen2.5-coder:1.5b-base"
    assert body["prompt"].startswith("<|fim_prefix|>") and "<|fim_suffix|>" in body["prompt"]
    assert engine.loaded.tokenizer.encode(body["prompt"], add_special_tokens=False) == ids
    assert parse_event({"response": "df", "done": False}) == (None, "df", [], {})
    lines = b'{"response": "head", "done": false}\n{"response": "()", "done": false}\n{"response": "", "done": true}\n'
    answer = (b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nContent-Length: " + str(len(lines)).encode()
              + b"\r\nConnection: close\r\n\r\n" + lines)
    with fake_server(answer) as (url, requests):
        ollama = remote(url, "ollama", model="m")
        got = ollama.complete(CompletionContext("df.", ""), LIMITS)
        assert got.text == "head()" and ollama.health == OK and json.loads(requests[0].split(b"\r\n\r\n", 1)[1])["raw"]


def test_a_redirect_is_not_followed_so_nothing_but_the_endpoint_is_contacted(monkeypatch):
    """A server that redirects elsewhere gets no second request there, and the key goes nowhere else."""
    monkeypatch.setenv(API_KEY_VARIABLE, "team-secret-redirect")
    with fake_server(http_answer("200 OK", b"never asked")) as (elsewhere, asked_elsewhere):
        redirect = f"HTTP/1.1 307 Temporary Redirect\r\nLocation: {elsewhere}/completion\r\nContent-Length: 0\r\n\r\n"
        with fake_server(redirect.encode()) as (url, requests):
            engine = remote(url)
            assert engine.complete(CONTEXTS[0], LIMITS).text == "" and engine.health == BAD_ANSWER
            assert requests and all(b"Bearer team-secret-redirect" in r for r in requests)
    assert asked_elsewhere == []


def test_a_language_server_given_an_insecure_endpoint_says_why_and_serves_nothing(raw_server):
    server = raw_server("--engine", "remote", "--endpoint", "http://gpu-box.example:8012", model=TINY_QWEN2_GGUF)
    server.initialize()
    status = server.wait_ready()
    assert status["state"] == "error" and "allowInsecureHttp" in status["error"]


def test_a_request_waiting_for_a_busy_server_ends_at_once_when_cancelled():
    """Queued behind a busy slot, llama-server sends nothing yet: a newer keystroke still ends the request
    at once (not after the read timeout)."""
    running = LlamaServer.start(TINY_QWEN2_GGUF, parallel=1, slot_tokens=8192)
    try:
        engine = remote(running.url)
        other, busy_cancel = RemoteClient(Endpoint(running.url)), threading.Event()
        busy = other.stream("/completion", {"prompt": [1, 2, 3], "n_predict": 6000, "temperature": 0.0, "stream": True,
                                            "ignore_eos": True}, busy_cancel)
        next(busy)
        cancel = threading.Event()
        threading.Timer(0.3, cancel.set).start()
        started = time.perf_counter()
        waited = engine.complete(CONTEXTS[0], LIMITS, cancel=cancel)
        assert waited.cancelled and time.perf_counter() - started < 3 < engine.endpoint.read_timeout
        assert engine.health != TIMED_OUT
        busy_cancel.set()
        busy.close()
    finally:
        running.stop()


def test_the_next_keystroke_waits_for_a_slot_still_busy_with_our_own_cancelled_request(one_slot, local):
    """A keystroke cancels the request while the server prefills it; the server frees the slot only at the
    end of a batch. The next keystroke's request waits that long in our own slot and is answered."""
    engine = remote(one_slot.url)
    cancel = threading.Event()

    def cancel_once_processing():
        while not cancel.is_set():
            slots = RemoteClient(Endpoint(one_slot.url)).get_json("/slots")
            if any(slot.get("is_processing") for slot in slots):
                cancel.set()

    threading.Thread(target=cancel_once_processing, daemon=True).start()
    long_prefill = Limits(max_new_tokens=8, max_prompt_tokens=6000, multiline=False)
    first = engine.complete(CompletionContext("x = df.a + df.b\n" * 1200, ""), long_prefill, cancel=cancel)
    assert first.cancelled
    after = engine.complete(CONTEXTS[0], LIMITS)
    assert engine.health == OK and after.text == local.complete(CONTEXTS[0], LIMITS).text


def test_a_server_that_echoes_the_key_does_not_put_it_in_the_state_or_the_log(monkeypatch, caplog):
    monkeypatch.setenv(API_KEY_VARIABLE, "team-secret-echoed")
    with fake_server(http_answer("401 Unauthorized", b'{"error": "bad key Bearer team-secret-echoed"}')) as (url, _):
        engine = remote(url)
        assert engine.complete(CONTEXTS[0], LIMITS).text == "" and engine.health == UNAUTHORIZED
    assert "team-secret-echoed" not in engine.describe_health() and "team-secret-echoed" not in caplog.text
    assert "***" in engine.describe_health()


def typing(ctx: CompletionContext, text: str):
    """The contexts of typing `text` at `ctx`, a character at a time."""
    return [CompletionContext(ctx.before + text[:n], ctx.after) for n in range(1, len(text) + 1)]


def test_each_typist_keeps_a_slot_of_its_own_and_every_keystroke_reuses_its_prompt(server, local):
    """Two typists on a two-slot server, keystrokes interleaved: each claims a different slot once, and
    each keystroke after reuses all but the last few tokens of the typist's previous prompt there."""
    typists = [remote(server.url, options=SpeedOptions(typed_through=False)) for _ in range(2)]
    keystrokes = [typing(CONTEXTS[0], "groupby("), typing(CONTEXTS[1], "return pd.")]
    for step in range(6):
        for engine, contexts in zip(typists, keystrokes):
            got = engine.complete(contexts[step], LIMITS, document="d")
            assert got.text == local.complete(contexts[step], LIMITS).text
            if step:  # the claim prefilled the first keystroke's prompt; later ones add a token or two
                assert got.reused_tokens >= got.prompt_tokens - 4, (step, got.reused_tokens, got.prompt_tokens)
    slots = {engine.slot.slot for engine in typists}
    assert len(slots) == 2 and None not in slots and all(engine.slot.lost == 0 for engine in typists)


def test_a_slot_taken_by_another_client_is_given_up_and_claimed_again():
    """Without llama-server's prompt cache in memory (--cache-ram 0), another client's request in our slot
    evicts our prompt: the engine sees it in the reuse, gives the slot up, and claims one again."""
    running = LlamaServer.start(TINY_QWEN2_GGUF, parallel=1, slot_tokens=8192, prompt_cache_mib=0)
    try:
        engine = remote(running.url, options=SpeedOptions(typed_through=False))
        longer = CompletionContext("import pandas as pd\nimport numpy as np\n" * 6 + CONTEXTS[2].before, CONTEXTS[2].after)
        contexts = typing(longer, "X, y, ")
        engine.complete(contexts[0], LIMITS, document="d")
        assert engine.slot.slot == 0 and len(engine.slot.held) > 2 * LOST_BELOW_TOKENS
        other = RemoteClient(Endpoint(running.url))  # another client's long prompt, in our slot
        other.post_json("/completion", {"prompt": list(range(100, 400)), "n_predict": 1, "cache_prompt": True,
                                        "id_slot": 0})
        lost = engine.complete(contexts[1], LIMITS, document="d")
        assert lost.reused_tokens < lost.prompt_tokens // 2 and engine.slot.slot is None and engine.slot.lost == 1
        engine.complete(contexts[2], LIMITS, document="d")  # claims again
        again = engine.complete(contexts[3], LIMITS, document="d")
        assert engine.slot.slot == 0 and again.reused_tokens >= again.prompt_tokens - 4 and engine.health == OK
    finally:
        running.stop()


def test_a_prompt_longer_than_the_servers_context_is_cut_here_not_refused():
    """A llama-server with 256 tokens per slot: the prompt is cut to fit (the cursor's end kept), so the
    answer comes, instead of the server refusing the request or cutting the lines next to the cursor."""
    running = LlamaServer.start(TINY_QWEN2_GGUF, parallel=1, slot_tokens=256)
    try:
        engine = remote(running.url)
        long_file = CompletionContext("x = df.a + df.b\n" * 400 + "df.", "\n")
        got = engine.complete(long_file, Limits(max_new_tokens=16, max_prompt_tokens=4096, multiline=False))
        assert engine.health == OK and got.prompt_tokens + 16 < 256 and got.new_tokens > 0
    finally:
        running.stop()


def test_the_evaluation_measures_a_team_server_and_never_records_its_key(server, monkeypatch):
    """`ghostframe-eval --engine remote --endpoint URL`: the cases are answered by the endpoint, as by the
    same model loaded here, and the results say where from without the API key."""
    from trainer_fixtures import data_science_file

    from ghostframe.trainer.evaluation.cases import file_cases
    from ghostframe.trainer.evaluation.predict import Generation, System, predict_in_process

    monkeypatch.setenv(API_KEY_VARIABLE, "eval-secret")
    cases = file_cases("analysis.py", data_science_file(3), per_file=4, seed=0)
    system = System("base", str(TINY_QWEN2_GGUF))
    local_gen = Generation(max_new_tokens=8, max_prompt_tokens=256, device="cpu", engine="llama")
    remote_gen = Generation(max_new_tokens=8, max_prompt_tokens=256, device="cpu", engine="remote",
                            endpoint=Endpoint.from_settings(server.url))
    here, _ = predict_in_process(system, cases, local_gen)
    there, _ = predict_in_process(system, cases, remote_gen)
    assert [p.text for p in there] == [p.text for p in here] and len(there) == len(cases)
    described = json.dumps(remote_gen.described())
    assert server.url in described and "eval-secret" not in described


def test_a_keystroke_during_our_own_slots_prefill_lets_it_finish_for_the_next_prompt():
    """In the typist's own slot, a newer keystroke does not stop the prefill it needs: the request ends at
    its first token (answering nothing), and the next keystroke's prompt reuses all of it."""
    running = LlamaServer.start(TINY_QWEN2_GGUF, parallel=1, slot_tokens=8192, batch=16)  # a prefill of seconds
    try:
        engine = remote(running.url, options=SpeedOptions(typed_through=False))
        engine.complete(CONTEXTS[0], LIMITS, document="d")  # claims the slot
        long_file = CompletionContext("x = df.a + df.b\n" * 300 + "df.", "\n")
        limits = Limits(max_new_tokens=8, max_prompt_tokens=4096, multiline=False)
        cancel = threading.Event()

        def cancel_once_processing():
            while not cancel.is_set():
                if any(slot.get("is_processing") for slot in RemoteClient(Endpoint(running.url)).get_json("/slots")):
                    cancel.set()

        threading.Thread(target=cancel_once_processing, daemon=True).start()
        first = engine.complete(long_file, limits, cancel=cancel, document="d")
        assert first.cancelled and first.text == ""
        typed = CompletionContext(long_file.before + "g", long_file.after)
        after = engine.complete(typed, limits, document="d")
        assert after.reused_tokens >= after.prompt_tokens - 4 and engine.health == OK
    finally:
        running.stop()
