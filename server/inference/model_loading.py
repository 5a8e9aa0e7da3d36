"""Load a causal LM (and optionally a LoRA adapter) for completion, training or evaluation.

This is the one place that knows how a model name turns into weights on a device:
the server, the trainer and the evaluation all call `load_model`. It picks the engine
(`choose_engine`), resolves `auto` once for both (tiers.auto_model), and runs the torch
path itself; the llama.cpp path is llama_loading's. The adapter checks, the base
fingerprint and `LoadedModel` live in modules of their own, which both loaders use; they
are imported here too so that a caller of the loader needs this one module.
"""

from __future__ import annotations

import os
import socket
from concurrent.futures import ThreadPoolExecutor, TimeoutError as Timeout
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import torch
from huggingface_hub import constants, try_to_load_from_cache

from ghostframe.server.inference import llama_runtime, quantization
from ghostframe.server.inference.adapter_checks import (
    ADAPTER_METADATA,
    adapter_refusal,
    checked_adapter,
    read_adapter_metadata,
)
from ghostframe.server.inference.default_model import PINNED_MODELS, ModelLoadError, gguf_of, pinned_gguf_path
from ghostframe.server.inference.fingerprint import base_model_fingerprint
from ghostframe.server.inference.gguf_files import converted_gguf_dir
from ghostframe.server.inference.llama_loading import load_llama
from ghostframe.server.inference.loaded_model import LoadedModel, stop_token_ids
from ghostframe.server.inference.model_options import ENGINES
from ghostframe.server.inference.precision import choose_precision
from ghostframe.server.inference.progress import Reporter
from ghostframe.server.inference.remote_client import Endpoint
from ghostframe.server.inference.remote_loading import load_remote
from ghostframe.server.inference.tiers import auto_model, is_auto

__all__ = [
    "ADAPTER_METADATA",
    "LoadedModel",
    "ModelLoadError",
    "adapter_refusal",
    "base_model_fingerprint",
    "choose_engine",
    "gguf_of",
    "load_model",
    "load_tokenizer_and_model",
    "pick_device",
    "read_adapter_metadata",
    "resolve_model_path",
]


def pick_device(requested: str = "auto") -> tuple[str, Any]:
    """Return (device, dtype): CUDA in bf16 when present, else CPU in fp32 on all cores
    (or OMP_NUM_THREADS threads when that is set)."""
    requested = (requested or "auto").lower()
    if requested not in {"auto", "cpu", "cuda"}:
        raise ModelLoadError(f"Unknown device {requested!r}: use auto, cpu or cuda.")
    if requested == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError("device 'cuda' was asked for, but torch sees no CUDA GPU (use auto or cpu).")
    if requested == "cuda" or (requested == "auto" and torch.cuda.is_available()):
        return "cuda", torch.bfloat16
    if "OMP_NUM_THREADS" not in os.environ:  # the user's choice wins (e.g. on a shared machine)
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        torch.set_num_threads(max(1, cores or 1))
    return "cpu", torch.float32


def resolve_model_path(model: str | None, report: Reporter = lambda _: None, device: str = "cpu") -> tuple[str, str]:
    """Turn a --model value into (what from_pretrained takes, a display name).

    Empty or "auto" means the model for this machine (tiers.auto_model); a pinned model's name (`ghostframe-server --model
    smollm2-135m`) is fetched and verified like the default; a `.gguf` file is converted once
    into the cache; a folder is used as it is; anything else is taken for a hub id.
    """
    if is_auto(model) or model in PINNED_MODELS:
        pinned = PINNED_MODELS[model] if model in PINNED_MODELS else auto_model(device, report)[0]
        return str(converted_gguf_dir(pinned_gguf_path(pinned, report), report)), pinned.display_name
    path = Path(model).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ModelLoadError(f"Model file {path} does not exist.")
        return str(converted_gguf_dir(path, report)), path.stem
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelLoadError(f"{path} is not a Hugging Face model folder (it has no config.json).")
        return str(path.resolve()), path.name
    looks_like_path = path.is_absolute() or model.startswith((".", "~")) or model.count("/") > 1
    if looks_like_path:
        raise ModelLoadError(f"Model path {model} does not exist.")
    check_hub_reachable(model)
    return model, model  # a hub id such as HuggingFaceTB/SmolLM2-135M


def check_hub_reachable(model_id: str, endpoint: str | None = None, timeout: float = 3.0) -> None:
    """Fail in seconds, with a message that says why, when a hub id can be neither read from the
    local cache nor downloaded (transformers would retry for about a minute first)."""
    cached = try_to_load_from_cache(model_id, "config.json")
    if isinstance(cached, str):
        return  # downloaded before: from_pretrained reads it from the cache
    advice = "Give a local model folder or a .gguf file, or download the model once while online."
    if constants.HF_HUB_OFFLINE:
        raise ModelLoadError(f"Model {model_id!r} is taken for a Hugging Face hub id, but it is not in the "
                             f"local cache and HF_HUB_OFFLINE is set, so it cannot be downloaded. {advice}")
    url = urlsplit(endpoint or constants.ENDPOINT)
    host, port = url.hostname or "huggingface.co", url.port or (443 if url.scheme == "https" else 80)
    if not _can_connect(host, port, timeout):
        raise ModelLoadError(f"Model {model_id!r} is taken for a Hugging Face hub id, but it is not in the "
                             f"local cache and {host} cannot be reached (no network?). {advice}")


def _can_connect(host: str, port: int, timeout: float) -> bool:
    """A TCP connection within `timeout` seconds, name lookup included (run on a thread: the
    resolver has no timeout of its own)."""
    def connect() -> bool:
        with socket.create_connection((host, port), timeout=timeout):
            return True

    pool = ThreadPoolExecutor(max_workers=1)
    try:
        return pool.submit(connect).result(timeout=timeout)
    except (OSError, Timeout):
        return False
    finally:
        pool.shutdown(wait=False)


def load_tokenizer_and_model(source: str, dtype: Any, display_name: str):
    """from_pretrained for tokenizer and model, with errors a user can act on."""
    from transformers import AutoModelForCausalLM, AutoTokenizer  # seconds to import: only when loading

    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype)
    except OSError as exc:
        raise ModelLoadError(
            f"Could not load model {display_name!r}: {exc}. Give a local model folder, "
            "a .gguf file, or a hub id this machine can download."
        ) from exc
    except Exception as exc:  # corrupt weights, unsupported architecture, ...
        raise ModelLoadError(f"Could not load model {display_name!r}: {type(exc).__name__}: {exc}") from exc
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer, model


def attach_adapter(model: Any, adapter: str, fingerprint: str, model_name: str, force: bool = False) -> Any:
    """Wrap `model` with a peft adapter, after `checked_adapter`."""
    from peft import PeftModel  # peft takes seconds to import: only for an adapter

    path = checked_adapter(adapter, fingerprint, model_name, force)
    try:
        return PeftModel.from_pretrained(model, str(path), is_trainable=False)
    except Exception as exc:  # shape mismatch: another architecture
        raise ModelLoadError(
            f"Adapter {path} does not fit model {model_name!r} (it was made for another base model): "
            f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
        ) from exc


def choose_engine(requested: str, device: str, model: str | None, adapter: str | None) -> tuple[str, str]:
    """("torch" | "llama.cpp", why): llama.cpp serves GGUF models on the CPU, torch everything else.

    llama.cpp decodes the pinned models faster than torch on CPUs (BENCHMARKS.md, "Decode per token
    against llama.cpp"); the llama.cpp wheel is a CPU build, so GPUs keep torch, as do Hugging Face
    folders (llama.cpp reads GGUF only) and adapters the llama.cpp engine cannot take (a full
    fine-tune's output).
    """
    requested = (requested or "auto").lower()
    if requested not in ENGINES:
        raise ModelLoadError(f"Unknown engine {requested!r}: use one of {', '.join(ENGINES)}.")
    if requested == "torch":
        return "torch", "asked for"
    gguf_model = is_auto(model) or gguf_of(model) is not None
    reasons = [why for why, fails in (
        (llama_runtime.available(), llama_runtime.available() is not None),
        ("the model is not a GGUF file (llama.cpp reads GGUF only)", not gguf_model),
        ("a GPU serves through torch", device != "cpu"),
        ("the adapter is a full fine-tune, not a LoRA", bool(adapter) and not (Path(adapter).expanduser()
                                                                              / "adapter_config.json").is_file()),
    ) if fails]
    if requested == "llama":
        if reasons:
            raise ModelLoadError(f"The llama.cpp engine cannot serve this: {'; '.join(reasons)}. Use --engine torch.")
        return "llama.cpp", "asked for"
    if reasons:
        return "torch", reasons[0]
    return "llama.cpp", "a GGUF model on the CPU"


def load_model(
    model: str | None = None,
    adapter: str | None = None,
    device: str = "auto",
    report: Reporter = lambda _: None,
    cpu_int8: bool = True,
    precision: str = "auto",
    force_adapter: bool = False,
    engine: str = "torch",
    speculation: str = "none",
    prompt_tokens: int = 1024,
    endpoint: Endpoint | None = None,
) -> LoadedModel:
    """Load model (+ adapter) for inference on the chosen device and engine.

    torch (the default here: training and tests build on it): the adapter is merged, the model is
    in eval mode, and on a CPU it runs in `precision` (auto: the fastest on this CPU, see
    precision.py; `cpu_int8=False` is the older spelling of precision="float32"). `engine="auto"`
    picks llama.cpp where choose_engine says so (the server's default); there `model` auto is the
    pinned model expected to save the most typing on this machine (tiers.py), and its context holds
    `prompt_tokens` plus the longest suggestion. Either way `tier` says how `auto` was chosen.
    `engine="remote"`: the model runs on the team server at `endpoint` (remote_loading).
    """
    if (engine or "").lower() == "remote":  # the team server runs the weights: only the tokenizer is read
        return load_remote(model, adapter, endpoint, report)
    device_name, dtype = pick_device(device)
    engine_name, why = choose_engine(engine, device_name, model, adapter)
    tier = None
    if is_auto(model):
        pinned, tier = auto_model(device_name, report)
        model = pinned.name
    if engine_name == "llama.cpp":
        return load_llama(model, adapter, report, force_adapter, speculation, why, prompt_tokens, tier)
    source, name = resolve_model_path(model, report, device_name)
    report(f"loading {name} on {device_name}")
    tokenizer, lm = load_tokenizer_and_model(source, dtype, name)
    fingerprint = base_model_fingerprint(lm)
    if adapter:
        report(f"loading adapter {adapter}")
        lm = quantization.merge_adapter(attach_adapter(lm, adapter, fingerprint, name, force_adapter))
    lm.to(device_name).eval()
    lm, choice = choose_precision(lm, device_name, precision if cpu_int8 else "float32", fingerprint, report)
    return LoadedModel(
        model=lm,
        tokenizer=tokenizer,
        device=device_name,
        dtype=dtype,
        model_name=name,
        adapter=str(Path(adapter).expanduser().resolve()) if adapter else None,
        fingerprint=fingerprint,
        stop_token_ids=stop_token_ids(tokenizer, getattr(lm.generation_config, "eos_token_id", None)),
        precision=choice.precision,
        precision_choice=choice,
        engine_reason=why,
        tier=tier,
    )
