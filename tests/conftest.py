"""Shared fixtures: a tiny random-weight model built here, and an editor-like LSP client."""

from __future__ import annotations

import asyncio
import atexit
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from ghostframe.server.random_model import build_random_model

# Built once per test session, before any server starts: servers get its path on the command line.
_ROOT = Path(tempfile.mkdtemp(prefix="ghostframe-tests-"))
atexit.register(shutil.rmtree, _ROOT, ignore_errors=True)
TINY_MODEL = build_random_model(_ROOT / "tiny")
OTHER_TINY_MODEL = build_random_model(_ROOT / "tiny-seed1", seed=1)


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


async def initialize(client: LanguageClient, settings: dict | None = None) -> types.InitializeResult:
    """Initialize as VS Code would, with ghostframe settings in initializationOptions."""
    return await client.initialize_session(types.InitializeParams(
        capabilities=vscode_capabilities(),
        initialization_options={"ghostframe": settings or {}},
    ))


async def status(client: LanguageClient) -> dict:
    result = await client.workspace_execute_command_async(types.ExecuteCommandParams(command="ghostframe.status"))
    return result._asdict() if hasattr(result, "_asdict") else dict(result)


async def wait_until(client: LanguageClient, states=("ready",), timeout: float = 180) -> dict:
    """Poll ghostframe.status until the model is in one of `states`."""
    deadline = time.monotonic() + timeout
    while True:
        current = await status(client)
        if current["state"] in states:
            return current
        if time.monotonic() > deadline:
            raise TimeoutError(f"server stayed in state {current}")
        await asyncio.sleep(0.1)


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
    from ghostframe.server.engine import CompletionEngine
    from ghostframe.server.model_loading import load_model

    return CompletionEngine(load_model(str(TINY_MODEL), device="cpu"))


def make_adapter(base, out, with_metadata: bool):
    """A LoRA adapter made on `base`, with random (not identity) weights so it changes the output;
    with ghostframe.json as ghostframe-train writes it."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from ghostframe.server.model_loading import base_model_fingerprint

    model = AutoModelForCausalLM.from_pretrained(base)
    fingerprint = base_model_fingerprint(model)
    peft_model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", r=4, target_modules=["q_proj", "v_proj"],
                                                       init_lora_weights=False))
    peft_model.save_pretrained(out)
    if with_metadata:
        (out / "ghostframe.json").write_text(json.dumps({"base_model": {"name": str(base), "fingerprint": fingerprint}}))
    return out
