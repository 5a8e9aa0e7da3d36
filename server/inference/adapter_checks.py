"""Whether an adapter folder may be served: every engine checks the same things before loading one.

A LoRA adapter is refused when its weights are not safetensors (a pickle can run code when read),
when it was trained for another base (its ghostframe.json's fingerprint), or when its training
run's evaluation gate did not approve it (unless forced).
"""

from __future__ import annotations

import json
from pathlib import Path

from ghostframe.server.inference.default_model import ModelLoadError

ADAPTER_METADATA = "ghostframe.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")


def read_adapter_metadata(adapter: Path) -> dict:
    """The trainer's ghostframe.json beside an adapter ({} when the adapter came from elsewhere)."""
    meta = adapter / ADAPTER_METADATA
    if not meta.is_file():
        return {}
    try:
        return json.loads(meta.read_text())
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{meta} is not valid JSON: {exc}") from exc


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
    base, or that its own evaluation gate did not approve (unless `force`)."""
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
