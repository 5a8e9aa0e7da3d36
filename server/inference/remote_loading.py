"""Load for the remote engine: the model's tokenizer only, never its weights (the team server runs them).

The prompt is built here with the served model's own tokenizer (its FIM tokens, its end tokens),
read from a pinned model's GGUF (only its vocabulary is read), a local `.gguf`, a Hugging Face
folder or a hub id. `auto` reads the pinned Qwen2.5-Coder tokenizer (the 0.5B's file: the same
vocabulary as the 1.5B a team server is likely to run, and the smaller download).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ghostframe.server.inference.default_model import ModelLoadError, gguf_of
from ghostframe.server.inference.gguf_files import gguf_tokenizer_and_facts
from ghostframe.server.inference.llama_loading import gguf_file
from ghostframe.server.inference.loaded_model import LoadedModel, stop_token_ids
from ghostframe.server.inference.progress import Reporter
from ghostframe.server.inference.remote_client import Endpoint, EndpointError, RemoteClient
from ghostframe.server.inference.tiers import is_auto

AUTO_TOKENIZER_MODEL = "qwen2.5-coder-0.5b"


def _tokenizer(model: str, report: Reporter) -> tuple[Any, list[int], str]:
    """(tokenizer, end token ids, display name) of `model`, reading no weights."""
    if gguf_of(model) is not None:
        path, name = gguf_file(model, report)
        tokenizer, facts = gguf_tokenizer_and_facts(path, report)
        return tokenizer, stop_token_ids(tokenizer, facts.eos_token_id), name
    from transformers import AutoTokenizer  # seconds to import: only for a folder or hub id

    path = Path(model).expanduser()
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path) if path.is_dir() else model)
    except Exception as exc:  # no such folder or hub id, no network
        raise ModelLoadError(f"Could not read the tokenizer of {model!r} (the remote engine builds the prompt "
                             f"with it): {type(exc).__name__}: {exc}") from exc
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer, stop_token_ids(tokenizer), path.name if path.is_dir() else model


def load_remote(model: str | None, adapter: str | None, endpoint: Endpoint | None,
                report: Reporter = lambda _: None) -> LoadedModel:
    """A LoadedModel whose `model` is a RemoteClient for `endpoint`. `adapter` names a server-side adapter
    (llama-server: matched against its /lora-adapters; OpenAI-compatible: the `model` asked for)."""
    if endpoint is None or not endpoint.url:
        raise ModelLoadError("The remote engine needs an endpoint: set ghostframe.endpoint (--endpoint), for "
                             "instance http://127.0.0.1:8012 for a llama-server on this machine.")
    try:
        client = RemoteClient(endpoint)
    except EndpointError as exc:
        raise ModelLoadError(str(exc)) from exc
    model = AUTO_TOKENIZER_MODEL if is_auto(model) else model
    report(f"reading {model}'s tokenizer for {endpoint.host}")
    tokenizer, stops, name = _tokenizer(model, report)
    return LoadedModel(
        model=client, tokenizer=tokenizer, device=f"remote {endpoint.host}", dtype=None, model_name=name,
        adapter=adapter or None, stop_token_ids=stops, precision="as served", engine="remote",
        engine_reason=f"an endpoint is set: {endpoint.api} at {endpoint.url}")
