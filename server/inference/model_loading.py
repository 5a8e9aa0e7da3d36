"""Load a causal LM (and optionally a LoRA adapter) for completion, training or evaluation.

This is the one place that knows how a model name turns into weights on a device:
the server, the trainer and the evaluation all call `load_model`.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ghostframe.server.inference.default_model import (
    PINNED_MODELS,
    ModelLoadError,
    cache_dir,
    converted_gguf_dir,
    default_model_for,
    pinned_gguf_path,
)
from ghostframe.server.inference import quantization
from ghostframe.server.inference.model_options import ENGINES
from ghostframe.server.inference.precision import PrecisionChoice, choose_precision

Reporter = Callable[[str], None]
ADAPTER_METADATA = "ghostframe.json"

__all__ = [
    "ADAPTER_METADATA",
    "LoadedModel",
    "ModelLoadError",
    "base_model_fingerprint",
    "load_model",
    "load_tokenizer_and_model",
    "pick_device",
    "resolve_model_path",
]


@dataclass
class LoadedModel:
    """A model ready for inference, with what a user needs to know about it."""

    model: Any
    tokenizer: Any
    device: str
    dtype: Any
    model_name: str
    adapter: str | None = None
    fingerprint: str = ""
    stop_token_ids: list[int] = field(default_factory=list)
    precision: str = ""  # what the weights run in: "int8", "float32", "bfloat16", or the GGUF's type (Q4_K_M)
    precision_choice: PrecisionChoice | None = None  # how that was chosen (and the timings)
    engine: str = "torch"  # "torch" (`model` is a transformers model) or "llama.cpp" (a llama_runtime.LlamaRuntime)
    engine_reason: str = ""  # why this engine serves here
    tier: Any = None  # tiers.TierChoice when `auto` chose the model by measuring this machine


def pick_device(requested: str = "auto") -> tuple[str, Any]:
    """Return (device, dtype): CUDA in bf16 when present, else CPU in fp32 on all cores
    (or OMP_NUM_THREADS threads when that is set)."""
    import torch

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

    Empty or "auto" means the model for this machine (`auto_model`); a pinned model's name (`ghostframe-server --model
    smollm2-135m`) is fetched and verified like the default; a `.gguf` file is converted once
    into the cache; a folder is used as it is; anything else is taken for a hub id.
    """
    if not model or model == "auto" or model in PINNED_MODELS:
        pinned = PINNED_MODELS[model] if model in PINNED_MODELS else auto_model(device, report)
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


def auto_model(device: str, report: Reporter = lambda _: None):
    """The pinned model `auto` means on `device`: on a CPU the largest one this machine runs at typing
    speed (tiers.py, measured once), so a model trained or evaluated by default is the one that serves;
    on a GPU, or where llama.cpp cannot run to measure, the per-device default."""
    from ghostframe.server.inference import llama_runtime

    if device == "cpu" and llama_runtime.available() is None:
        from ghostframe.server.inference.tiers import choose_tier

        return PINNED_MODELS[choose_tier(report).model]
    return default_model_for(device)


def check_hub_reachable(model_id: str, endpoint: str | None = None, timeout: float = 3.0) -> None:
    """Fail in seconds, with a message that says why, when a hub id can be neither read from the
    local cache nor downloaded (transformers would retry for about a minute first)."""
    from urllib.parse import urlsplit

    from huggingface_hub import constants, try_to_load_from_cache

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
    import socket
    from concurrent.futures import ThreadPoolExecutor, TimeoutError as Timeout

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
    from transformers import AutoModelForCausalLM, AutoTokenizer

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


def base_model_fingerprint(model: Any) -> str:
    """A short hash that identifies a base model's weights, whatever dtype it was loaded in.

    Computed on a strided sample of the input embeddings rounded to bf16, plus the
    shape-defining config, so an adapter can be checked against the model it was made for.
    """
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    cfg = base.config
    shape = [getattr(cfg, k, None) for k in ("model_type", "hidden_size", "num_hidden_layers", "vocab_size")]
    weight = base.get_input_embeddings().weight.detach()
    return fingerprint_of(shape, weight[:: fingerprint_stride(weight.shape[0])])


def fingerprint_stride(vocab_size: int) -> int:
    """Every how many embedding rows the fingerprint samples one."""
    return max(1, vocab_size // 256)


def fingerprint_of(shape: list, rows: Any) -> str:
    """The fingerprint of a model with this shape ([model type, hidden size, layers, vocabulary size])
    and these sampled embedding rows (a float tensor or array), rounded to bf16: the same from a
    Hugging Face model in any dtype and from the GGUF file it was converted from (gguf_adapter)."""
    import torch

    digest = hashlib.sha256(json.dumps(shape).encode())
    sample = torch.as_tensor(rows).to("cpu", torch.bfloat16).contiguous()
    digest.update(sample.view(torch.int16).numpy().tobytes())
    return digest.hexdigest()[:16]


def read_adapter_metadata(adapter: Path) -> dict:
    """The trainer's ghostframe.json beside an adapter ({} when the adapter came from elsewhere)."""
    meta = adapter / ADAPTER_METADATA
    if not meta.is_file():
        return {}
    try:
        return json.loads(meta.read_text())
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{meta} is not valid JSON: {exc}") from exc


ADAPTER_WEIGHTS = "adapter_model.safetensors"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")


def check_adapter_weights(path: Path) -> None:
    """Only safetensors weights are loaded: a pickle (`adapter_model.bin`, ...) can run code when read.

    peft falls back to `adapter_model.bin` when there is no safetensors file; that is refused here.
    """
    if (path / ADAPTER_WEIGHTS).is_file():
        return
    pickles = sorted(p.name for p in path.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES)
    found = f"it has {', '.join(pickles)} and no {ADAPTER_WEIGHTS}" if pickles else f"it has no {ADAPTER_WEIGHTS}"
    raise ModelLoadError(f"Adapter {path} was refused: only safetensors adapters are loaded ({found}). "
                         "Save it with save_pretrained(..., safe_serialization=True), as ghostframe-train does.")


def gate_refusal(path: Path, meta: dict, force: bool) -> str | None:
    """Why an adapter whose training run's evaluation gate did not say "use it" is not served
    (None when it may be: approved, never judged, or forced).

    ghostframe-train keeps such an adapter, marked in its ghostframe.json, so that a user can
    look at it; serving it would make suggestions no better, or worse, than the base model's.
    """
    gate = meta.get("gate") or {}
    verdict = gate.get("verdict")
    if verdict is None or verdict == "use it" or force:
        return None
    return (f"Adapter {path} was not loaded: its training run's evaluation found it {verdict!r} compared with "
            f"the base model ({gate.get('reason', 'see its report.md')}). Pass --force-adapter "
            "(setting ghostframe.forceAdapter) to use it anyway.")


def check_adapter_gate(path: Path, meta: dict, force: bool) -> None:
    """Raise ModelLoadError with `gate_refusal`'s reason, if there is one."""
    if (reason := gate_refusal(path, meta, force)) is not None:
        raise ModelLoadError(reason)


def adapter_refusal(adapter: str | None, force: bool) -> str | None:
    """`gate_refusal` for an adapter folder, read before any model is loaded (None for no adapter)."""
    if not adapter:
        return None
    path = Path(adapter).expanduser()
    return gate_refusal(path, read_adapter_metadata(path), force) if path.is_dir() else None


def checked_adapter(adapter: str, fingerprint: str, model_name: str, force: bool = False) -> Path:
    """The adapter folder, after refusing one that is not a safetensors LoRA, was trained for another
    base, or that its own evaluation gate did not approve (unless `force`); every engine checks so."""
    path = Path(adapter).expanduser()
    if not (path / "adapter_config.json").is_file():
        raise ModelLoadError(f"{path} is not an adapter folder (no adapter_config.json); use a ghostframe-train output.")
    check_adapter_weights(path)
    meta = read_adapter_metadata(path)
    check_adapter_gate(path, meta, force)
    expected = meta.get("base_model", {}).get("fingerprint")
    if expected and expected != fingerprint:
        raise ModelLoadError(
            f"Adapter {path} was trained for base model {meta['base_model'].get('name', '?')!r} "
            f"(fingerprint {expected}), but the loaded model {model_name!r} has fingerprint {fingerprint}. "
            "Load the adapter's base model with --model, or train a new adapter for this one."
        )
    return path


def attach_adapter(model: Any, adapter: str, fingerprint: str, model_name: str, force: bool = False) -> Any:
    """Wrap `model` with a peft adapter, after `checked_adapter`."""
    from peft import PeftModel

    path = checked_adapter(adapter, fingerprint, model_name, force)
    try:
        return PeftModel.from_pretrained(model, str(path), is_trainable=False)
    except Exception as exc:  # shape mismatch: another architecture
        raise ModelLoadError(
            f"Adapter {path} does not fit model {model_name!r} (it was made for another base model): "
            f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
        ) from exc


def stop_token_ids(tokenizer: Any, eos: Any = None) -> list[int]:
    """Tokens that end a suggestion: the model's EOS ids (`eos`: an id or a list, from its generation
    config) and every special token of the tokenizer.

    A special token is never code the user types: end of text, a chat turn's end, or a
    code model's structure tokens (`<|fim_pad|>`, `<|file_sep|>`, `<|repo_name|>`, FIM
    markers, SmolLM2's `<jupyter_code>`...). When the model emits one, the middle is over.
    """
    ids = {tokenizer.eos_token_id}
    ids.update(eos if isinstance(eos, list) else [eos])
    ids.update(tokenizer.all_special_ids)
    ids.update(i for i, token in getattr(tokenizer, "added_tokens_decoder", {}).items() if token.special)
    return sorted(i for i in ids if isinstance(i, int) and i >= 0)


def gguf_of(model: str | None) -> tuple[Path, str] | None:
    """(the GGUF file, a display name) when `model` names a pinned model or a .gguf file; None for a
    folder or hub id (and for auto, which tiers.py resolves first). Nothing is fetched here."""
    if model in PINNED_MODELS:
        pinned = PINNED_MODELS[model]
        return cache_dir() / "models" / pinned.gguf_file_name, pinned.display_name
    if model and model.endswith(".gguf"):
        path = Path(model).expanduser()
        return path, path.stem
    return None


def choose_engine(requested: str, device: str, model: str | None, adapter: str | None) -> tuple[str, str]:
    """("torch" | "llama.cpp", why): llama.cpp serves GGUF models on the CPU, torch everything else.

    llama.cpp decodes the pinned models about 2x faster than torch on CPUs (BENCHMARKS.md); the
    llama.cpp wheel is a CPU build, so GPUs keep torch, as do Hugging Face folders (llama.cpp reads
    GGUF only) and adapters the llama.cpp engine cannot take (a full fine-tune's output).
    """
    requested = (requested or "auto").lower()
    if requested not in ENGINES:
        raise ModelLoadError(f"Unknown engine {requested!r}: use one of {', '.join(ENGINES)}.")
    if requested == "torch":
        return "torch", "asked for"
    from ghostframe.server.inference import llama_runtime

    gguf_model = not model or model == "auto" or gguf_of(model) is not None
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
) -> LoadedModel:
    """Load model (+ adapter) for inference on the chosen device and engine.

    torch (the default here: training and tests build on it): the adapter is merged, the model is
    in eval mode, and on a CPU it runs in `precision` (auto: the fastest on this CPU, see
    precision.py; `cpu_int8=False` is the older spelling of precision="float32"). `engine="auto"`
    picks llama.cpp where choose_engine says so (the server's default); there `model` auto is the
    largest pinned model this machine runs at typing speed (tiers.py), and its context holds
    `prompt_tokens` plus the longest suggestion.
    """
    device_name, dtype = pick_device(device)
    engine_name, why = choose_engine(engine, device_name, model, adapter)
    if engine_name == "llama.cpp":
        from ghostframe.server.inference.llama_loading import load_llama

        return load_llama(model, adapter, report, force_adapter, speculation, why, prompt_tokens)
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
    )
