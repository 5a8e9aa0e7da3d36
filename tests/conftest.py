"""Shared fixtures: a tiny random-weight model built here, and an editor-like LSP client."""

from __future__ import annotations

import asyncio
import atexit
import json
import shutil
import sys
import tempfile
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from ghostframe.server.testing.random_gguf import build_random_gguf
from ghostframe.server.testing.random_model import build_random_model

# Built once per test session, before any server starts: servers get its path on the command line.
_ROOT = Path(tempfile.mkdtemp(prefix="ghostframe-tests-"))
atexit.register(shutil.rmtree, _ROOT, ignore_errors=True)
TINY_MODEL = build_random_model(_ROOT / "tiny")
OTHER_TINY_MODEL = build_random_model(_ROOT / "tiny-seed1", seed=1)
# The tiny Llama and Qwen2 as GGUF files for the llama.cpp engine, with their own Hugging Face folders
TINY_GGUF, TINY_GGUF_HF = build_random_gguf(_ROOT / "tiny-gguf", "tiny")
TINY_QWEN2_GGUF, TINY_QWEN2_GGUF_HF = build_random_gguf(_ROOT / "tiny-qwen2-gguf", "tiny-qwen2")
# The tiny model each engine serves (a GGUF on the CPU runs on llama.cpp), for tests that must hold on both
ENGINE_MODELS = {"torch": TINY_MODEL, "llama.cpp": TINY_GGUF}


@pytest.fixture(scope="session", autouse=True)
def answers_kept_out_of_the_user_cache():
    """Gate runs store the base model's answers (evaluation.answer_cache); the tests keep theirs here."""
    from ghostframe.trainer.evaluation import answer_cache

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(answer_cache, "default_folder", lambda: _ROOT / "answers")
        yield


def server_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "ghostframe.server", "--log-level", "WARNING", *args]


def vscode_capabilities() -> types.ClientCapabilities:
    """VS Code's capabilities as pytest-lsp records them (v1.65), plus what today's VS Code adds:
    notebook document sync (1.67+) and inline completion (LSP 3.18)."""
    caps = client_capabilities("visual-studio-code")
    caps.notebook_document = types.NotebookDocumentClientCapabilities(
        synchronization=types.NotebookDocumentSyncClientCapabilities(execution_summary_support=True))
    caps.text_document.inline_completion = types.InlineCompletionClientCapabilities()
    return caps


def record_status(client: LanguageClient) -> list[dict]:
    """Keep every `ghostframe/status` notification the server sends, in order."""
    if not hasattr(client, "statuses"):
        client.statuses = []
        client.status_arrived = asyncio.Condition()

        @client.feature("ghostframe/status")
        async def on_status(params):
            client.statuses.append(params._asdict() if hasattr(params, "_asdict") else dict(params))
            async with client.status_arrived:
                client.status_arrived.notify_all()

        @client.feature(types.CLIENT_REGISTER_CAPABILITY)
        def on_register(params: types.RegistrationParams):
            """Accept dynamic registrations (file watching), as VS Code does."""
            client.registrations = [*getattr(client, "registrations", []), *params.registrations]

    return client.statuses


async def initialize(client: LanguageClient, settings: dict | None = None,
                     capabilities: types.ClientCapabilities | None = None) -> types.InitializeResult:
    """Initialize as VS Code would, with ghostframe settings in initializationOptions. The show filter is
    off unless `settings` turn it on: the tests' random-weight models are unsure of everything they say,
    so the filter would hide every suggestion the protocol tests look at."""
    record_status(client)
    return await client.initialize_session(types.InitializeParams(
        capabilities=capabilities or vscode_capabilities(),
        initialization_options={"ghostframe": {"showFilter": False, **(settings or {})}},
    ))


async def status(client: LanguageClient) -> dict:
    result = await client.workspace_execute_command_async(types.ExecuteCommandParams(command="ghostframe.status"))
    return result._asdict() if hasattr(result, "_asdict") else dict(result)


async def poll_status(client: LanguageClient, predicate, what: str, timeout: float = 120) -> dict:
    """The first `ghostframe.status` for which `predicate` holds, asked every 50 ms; TimeoutError naming
    `what` after `timeout` seconds. For facts the server does not announce (warmed tokens, work in flight)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate(current := await status(client)):
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"after {timeout} s still not {what}: {current}")
        await asyncio.sleep(0.05)
    return current


async def wait_for_warm(client: LanguageClient, tokens: int) -> dict:
    """Wait until the server has warmed `tokens` prompt tokens in all (the status counts them)."""
    return await poll_status(client, lambda current: current["warmedTokens"] >= tokens, f"{tokens} tokens warmed")


async def wait_until(client: LanguageClient, states=("ready",), timeout: float = 180) -> dict:
    """Wait for the server's own `ghostframe/status` announcement of one of `states`.

    A status request first is the barrier for what synchronous handlers caused (a reload's
    "loading"). It is none for the settings handler, which runs as a task: after a settings
    change, wait for a state the old settings cannot be in, or use `wait_for_status`.
    """
    record_status(client)  # for clients initialized without `initialize` above
    current = await status(client)

    async def announced() -> dict:
        async with client.status_arrived:
            await client.status_arrived.wait_for(lambda: client.statuses and client.statuses[-1]["state"] in states)
        return client.statuses[-1]

    if current["state"] in states:
        return current
    try:
        return await asyncio.wait_for(announced(), timeout)
    except asyncio.TimeoutError:
        raise TimeoutError(f"server stayed in state {client.statuses[-1:]}") from None


async def wait_for_status(client: LanguageClient, predicate, timeout: float = 180) -> dict:
    """Wait until the server announces a status for which `predicate` holds (or already has).

    For changes whose effect starts asynchronously (a settings change that the server first
    pulls with workspace/configuration), no request can serve as a barrier: wait on the effect.
    """
    record_status(client)

    async def announced() -> dict:
        async with client.status_arrived:
            await client.status_arrived.wait_for(lambda: client.statuses and predicate(client.statuses[-1]))
        return client.statuses[-1]

    try:
        return await asyncio.wait_for(announced(), timeout)
    except asyncio.TimeoutError:
        raise TimeoutError(f"server stayed in state {client.statuses[-1:]}") from None


def open_document(client: LanguageClient, uri: str, text: str, version: int = 1) -> None:
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id="python", version=version, text=text)))


async def inline(client: LanguageClient, uri: str, line: int, character: int):
    result = await client.text_document_inline_completion_async(types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        position=types.Position(line=line, character=character),
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic),
    ))
    return list(result.items if isinstance(result, types.InlineCompletionList) else (result or []))


@pytest_lsp.fixture(scope="module", config=ClientServerConfig(server_command=server_command("--model", str(TINY_MODEL))))
async def client(lsp_client: LanguageClient):
    """A server on the tiny model, initialized as VS Code and with its model loaded."""
    lsp_client.server_capabilities = (await initialize(lsp_client, {"maxNewTokens": 8})).capabilities
    await wait_until(lsp_client)
    yield
    await lsp_client.shutdown_session()


@pytest.fixture(scope="session")
def tiny_engine():
    """The same tiny model in this process, to compute what the server should answer."""
    from ghostframe.server.inference.engine import TorchEngine
    from ghostframe.server.inference.model_loading import load_model

    return TorchEngine(load_model(str(TINY_MODEL), device="cpu"))


def make_adapter(base, out, with_metadata: bool):
    """A LoRA adapter made on `base`, with random (not identity) weights so it changes the output;
    with ghostframe.json as ghostframe-train writes it."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from ghostframe.server.inference.model_loading import base_model_fingerprint

    model = AutoModelForCausalLM.from_pretrained(base)
    fingerprint = base_model_fingerprint(model)
    peft_model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", r=4, target_modules=["q_proj", "v_proj"],
                                                       init_lora_weights=False))
    peft_model.save_pretrained(out)
    if with_metadata:
        (out / "ghostframe.json").write_text(json.dumps({"base_model": {"name": str(base), "fingerprint": fingerprint}}))
    return out


def frame(message) -> bytes:
    """One LSP frame around a JSON message (or around raw bytes)."""
    body = message if isinstance(message, bytes) else json.dumps(message).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


class RawServer:
    """The real server as a subprocess, spoken to in raw bytes over stdio: for what no LSP client
    library would send (damaged frames, requests out of order). Its stdout is parsed strictly:
    anything that is not an LSP frame fails the test."""

    def __init__(self, *args: str, model: Path = TINY_MODEL):
        import subprocess
        import threading

        self.proc = subprocess.Popen(server_command("--model", str(model), *args),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.messages: list[dict] = []
        self.garbage: bytes | None = None  # the first stdout bytes that were no LSP frame
        self._arrived = threading.Condition()
        self._stderr = b""
        threading.Thread(target=self._read_stdout, daemon=True).start()
        self._stderr_reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._stderr_reader.start()

    def _read_stdout(self) -> None:
        out = self.proc.stdout
        while header := out.readline():
            seen, fields = header, {}
            try:
                while header not in (b"\r\n", b""):
                    name, colon, value = header.decode("ascii").partition(":")
                    assert colon and header.endswith(b"\r\n")
                    fields[name.strip().lower()] = value.strip()
                    header = out.readline()
                    seen += header
                body = out.read(int(fields["content-length"]))
                message = json.loads(body)
            except (AssertionError, ValueError, KeyError, UnicodeDecodeError):
                self.garbage = seen + out.read(200)
                break
            with self._arrived:
                self.messages.append(message)
                self._arrived.notify_all()
        with self._arrived:
            self._arrived.notify_all()

    def _read_stderr(self) -> None:
        self._stderr = self.proc.stderr.read()

    def send(self, *messages) -> None:
        """Frames for dicts, raw bytes as they are."""
        for message in messages:
            self.proc.stdin.write(message if isinstance(message, bytes) else frame(message))
        self.proc.stdin.flush()

    def request(self, msg_id, method: str, params=None) -> dict:
        self.send({"jsonrpc": "2.0", "id": msg_id, "method": method, **({} if params is None else {"params": params})})
        return self.response(msg_id)

    def response(self, msg_id, timeout: float = 120) -> dict:
        """Wait for the answer to `msg_id` (the test's only wait: on the server's own message)."""
        return self.wait_for(lambda m: m.get("id") == msg_id and "method" not in m, timeout)

    def wait_for(self, matches, timeout: float = 120) -> dict:
        with self._arrived:
            self._arrived.wait_for(
                lambda: next((m for m in self.messages if matches(m)), None) or self.proc.poll() is not None, timeout)
            message = next((m for m in self.messages if matches(m)), None)
        assert message is not None, f"no such message (server exited: {self.proc.poll()}); got {self.messages[-5:]}"
        return message

    def null_id_errors(self) -> list[dict]:
        """The error answers sent with "id": null (to messages whose own id could not be echoed)."""
        with self._arrived:
            return [m for m in self.messages if "error" in m and "id" in m and m["id"] is None]

    def initialize(self, capabilities: dict | None = None, **init) -> dict:
        """`initialize` then `initialized`; the show filter off unless `initializationOptions` say (see `initialize`)."""
        init.setdefault("initializationOptions", {"ghostframe": {"showFilter": False}})
        result = self.request(1, "initialize", {"processId": None, "capabilities": capabilities or {}, **init})
        self.send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
        return result

    def open_document(self, uri: str, text: str) -> None:
        self.send({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {
            "uri": uri, "languageId": "python", "version": 1, "text": text}}})

    def inline_texts(self, msg_id: int, uri: str, line: int, character: int, trigger_kind: int = 2) -> list[str]:
        """The inline suggestions' texts at a position (trigger kind 2: typing; 1: asked for)."""
        answer = self.request(msg_id, "textDocument/inlineCompletion", {
            "textDocument": {"uri": uri}, "position": {"line": line, "character": character},
            "context": {"triggerKind": trigger_kind}})
        return [item["insertText"] for item in answer["result"]]

    def wait_ready(self) -> dict:
        return self.wait_for(lambda m: m.get("method") == "ghostframe/status"
                             and m["params"]["state"] in ("ready", "error"))["params"]

    def finish(self, timeout: float = 60) -> tuple[int, str]:
        """Close stdin, wait for the process; return (exit code, stderr)."""
        import subprocess

        try:
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        self._stderr_reader.join(10)
        return code, self._stderr.decode(errors="replace")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def raw_server():
    """A fresh server per test, spoken to in raw bytes; killed if the test leaves it running."""
    servers = []

    def start(*args: str, model: Path = TINY_MODEL) -> RawServer:
        servers.append(RawServer(*args, model=model))
        return servers[-1]

    yield start
    for server in servers:
        server.kill()


@pytest.fixture(params=sorted(ENGINE_MODELS))
def engine_model(request) -> Path:
    """The tiny model of each engine in turn: a test that takes it runs once per engine."""
    return ENGINE_MODELS[request.param]


@pytest_lsp.fixture(config=ClientServerConfig(server_command=server_command("--model", str(TINY_MODEL))))
async def fresh_client(lsp_client: LanguageClient):
    """A server of its own for one test (state from another test can never leak in), ready."""
    lsp_client.server_capabilities = (await initialize(lsp_client, {"maxNewTokens": 8})).capabilities
    await wait_until(lsp_client)
    yield
    await lsp_client.shutdown_session()


@pytest_lsp.fixture(config=ClientServerConfig(server_command=server_command("--model", str(TINY_MODEL))))
async def bare_client(lsp_client: LanguageClient):
    """A server of its own, not yet initialized: the test chooses how."""
    record_status(lsp_client)
    yield
    await lsp_client.shutdown_session()


def in_process_server():
    """The real server object, initialized, with no transport: drive it with `deliver` and read its
    workspace directly (document bookkeeping only; no model is loaded)."""
    from ghostframe.server.lsp.server import create_server

    ls = create_server()
    ls.protocol.set_writer(type("Sink", (), {"write": lambda self, data: None, "close": lambda self: None})())
    deliver(ls, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}, "processId": None}})
    return ls


def deliver(ls, message: dict) -> None:
    """Hand one JSON-RPC message to an in-process server, as its reader would."""
    ls.protocol.handle_message(ls.protocol.structure_message(message))
