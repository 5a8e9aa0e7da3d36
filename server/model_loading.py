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

from ghostframe.server.default_model import (
    DEFAULT_MODEL_NAME,
    ModelLoadError,
    converted_gguf_dir,
    default_gguf_path,
)
from ghostframe.server import quantization

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
    precision: str = ""  # what the weights run in: "int8", "float32" or "bfloat16"


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


def resolve_model_path(model: str | None, report: Reporter = lambda _: None) -> tuple[str, str]:
    """Turn a --model value into (what from_pretrained takes, a display name).

    Empty means the embedded default; a `.gguf` file is converted once into the cache;
    a folder is used as it is; anything else is taken for a hub id.
    """
    if not model:
        return str(converted_gguf_dir(default_gguf_path(report), report)), DEFAULT_MODEL_NAME
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
    return model, model  # a hub id such as HuggingFaceTB/SmolLM2-135M


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
    import torch

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    cfg = base.config
    shape = [getattr(cfg, k, None) for k in ("model_type", "hidden_size", "num_hidden_layers", "vocab_size")]
    digest = hashlib.sha256(json.dumps(shape).encode())
    weight = base.get_input_embeddings().weight.detach()
    sample = weight[:: max(1, weight.shape[0] // 256)].to("cpu", torch.bfloat16).contiguous()
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


def attach_adapter(model: Any, adapter: str, fingerprint: str, model_name: str) -> Any:
    """Wrap `model` with a peft adapter, refusing one that was trained for another base."""
    from peft import PeftModel

    path = Path(adapter).expanduser()
    if not (path / "adapter_config.json").is_file():
        raise ModelLoadError(f"{path} is not an adapter folder (no adapter_config.json); use a ghostframe-train output.")
    meta = read_adapter_metadata(path)
    expected = meta.get("base_model", {}).get("fingerprint")
    if expected and expected != fingerprint:
        raise ModelLoadError(
            f"Adapter {path} was trained for base model {meta['base_model'].get('name', '?')!r} "
            f"(fingerprint {expected}), but the loaded model {model_name!r} has fingerprint {fingerprint}. "
            "Load the adapter's base model with --model, or train a new adapter for this one."
        )
    try:
        return PeftModel.from_pretrained(model, str(path), is_trainable=False)
    except Exception as exc:  # shape mismatch: another architecture
        raise ModelLoadError(
            f"Adapter {path} does not fit model {model_name!r} (it was made for another base model): "
            f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
        ) from exc


def stop_token_ids(tokenizer: Any, model: Any) -> list[int]:
    """End-of-text tokens to stop on: the tokenizer's EOS, the model's EOS ids and <|endoftext|>."""
    ids = {tokenizer.eos_token_id}
    eos = getattr(model.generation_config, "eos_token_id", None)
    ids.update(eos if isinstance(eos, list) else [eos])
    vocab = tokenizer.get_vocab()
    ids.update(vocab[name] for name in ("<|endoftext|>", "<|im_end|>", "<|end_of_text|>", "</s>") if name in vocab)
    return sorted(i for i in ids if isinstance(i, int) and i >= 0)


def load_model(
    model: str | None = None,
    adapter: str | None = None,
    device: str = "auto",
    report: Reporter = lambda _: None,
    cpu_int8: bool = True,
) -> LoadedModel:
    """Load model (+ adapter, merged) for inference on the chosen device, in eval mode.

    On CPU the linear layers run in int8 unless `cpu_int8` is False (see quantization.py).
    """
    device_name, dtype = pick_device(device)
    source, name = resolve_model_path(model, report)
    report(f"loading {name} on {device_name}")
    tokenizer, lm = load_tokenizer_and_model(source, dtype, name)
    fingerprint = base_model_fingerprint(lm)
    if adapter:
        report(f"loading adapter {adapter}")
        lm = quantization.merge_adapter(attach_adapter(lm, adapter, fingerprint, name))
    lm.to(device_name).eval()
    precision = str(dtype).removeprefix("torch.")
    if cpu_int8 and device_name == "cpu":
        if quantization.int8_kernel_works():
            report("quantizing to int8")
            lm = quantization.quantize_int8(lm)
            precision = "int8" if quantization.is_int8(lm) else precision  # no nn.Linear: nothing to do
        else:
            report("this torch build has no int8 CPU kernel; running in float32")
    return LoadedModel(
        model=lm,
        tokenizer=tokenizer,
        device=device_name,
        dtype=dtype,
        model_name=name,
        adapter=str(Path(adapter).expanduser().resolve()) if adapter else None,
        fingerprint=fingerprint,
        stop_token_ids=stop_token_ids(tokenizer, lm),
        precision=precision,
    )
