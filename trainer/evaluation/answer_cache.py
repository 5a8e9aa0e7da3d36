"""The base model's answers, kept between gate runs: a second training run pays for one system, not two.

The gate compares the base model with each new adapter on the run's held-out lines. The base
model's answer to a line only changes when something that decides it changes, so every answer
is stored under two keys:

- the system: a sample of every weight of the loaded model (after int8 quantisation, when that
  is what runs), its precision and device, the generation settings, the completion code's own
  source and the torch/transformers versions;
- the case: everything the prompt is built from (text before and after, snippets, data notes).

Greedy decoding makes the answer a function of those. The one thing outside the key is the
thread count: CPU sums may round differently with other thread counts, which can (rarely) flip
a token; a cached answer is the answer the same model gave on this machine before.
Only answers are reused; each system's latency in a report then includes the earlier run's.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

KEEP_SYSTEMS = 16                 # answer files kept; the least recently used go first
SAMPLES_PER_TENSOR = 64           # weights read from each tensor for the system key


def default_folder() -> Path:
    """`answers/` in ghostframe's cache folder (where the fetched models live)."""
    from ghostframe.server.inference.default_model import cache_dir

    return cache_dir() / "answers"


def case_key(context: Any) -> str:
    """A hash of what a prompt is built from (a `CompletionContext`)."""
    parts = [context.before, context.after, list(context.snippets), [list(n) for n in context.notes]]
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode()).hexdigest()[:32]


def weights_digest(model: Any) -> str:
    """A hash of a strided sample of every tensor in the model's state: unlike the adapter
    fingerprint (embeddings only), it tells apart two fine-tunes of one base model."""
    import torch

    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        flat = tensor.detach().reshape(-1)
        sample = flat[:: max(1, flat.numel() // SAMPLES_PER_TENSOR)][:SAMPLES_PER_TENSOR]
        if sample.is_floating_point():
            sample = sample.to(torch.float32)
        digest.update(name.encode() + str(tuple(tensor.shape)).encode())
        digest.update(sample.cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


@lru_cache(maxsize=1)
def _completion_code_digest() -> str:
    """A hash of the inference core's sources: a change to prompts or decoding invalidates answers."""
    import ghostframe.server.inference as inference

    digest = hashlib.sha256()
    root = Path(inference.__file__).parent
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + path.read_bytes())
    return digest.hexdigest()


def system_key(loaded: Any, settings: dict) -> str:
    """The key of a loaded model (`LoadedModel`) answering under `settings` (generation options)."""
    import transformers

    facts = {"precision": loaded.precision, "device": str(loaded.device).split(":")[0], "settings": settings,
             "code": _completion_code_digest(), "transformers": transformers.__version__, "engine": loaded.engine}
    if loaded.engine == "llama.cpp":  # the GGUF file and adapter as llama.cpp reads them, and its build
        import xllamacpp

        config = loaded.model.config
        files = [config.gguf, *(path for path, _ in config.lora)]
        facts.update(weights=[file_digest(path) for path in files], llama_cpp=xllamacpp.__version__,
                     speculation=config.speculation)
    else:
        import torch

        facts.update(weights=weights_digest(loaded.model), torch=torch.__version__,
                     prefill=sorted({str(m.wide_dtype) for m in loaded.model.modules() if hasattr(m, "wide_dtype")}))
    return hashlib.sha256(json.dumps(facts, sort_keys=True, default=str).encode()).hexdigest()[:32]


@lru_cache(maxsize=16)
def _digest_of(path: str, size: int, mtime: float) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def file_digest(path: Any) -> str:
    """SHA-256 of a file, computed once per size and modification time."""
    stat = os.stat(path)
    return _digest_of(str(path), stat.st_size, stat.st_mtime)


class AnswerCache:
    """Answers on disk, one JSON file per system key: {case key: [text, seconds]}."""

    def __init__(self, folder: Path | None = None):
        self.folder = Path(folder) if folder is not None else default_folder()

    def _path(self, system: str) -> Path:
        return self.folder / f"{system}.json"

    def load(self, system: str) -> dict[str, list]:
        """The answers stored for `system` ({} when none, or when the file is unreadable);
        reading marks them used, so they are the last to be dropped."""
        path = self._path(system)
        try:
            answers = json.loads(path.read_text())
            os.utime(path)
        except (OSError, ValueError):
            return {}
        return answers if isinstance(answers, dict) else {}

    def count(self, system: str, contexts: Iterable[Any]) -> int:
        """How many of these prompts (`CompletionContext`s) have a stored answer."""
        answers = self.load(system)
        return sum(case_key(c) in answers for c in contexts)

    def save(self, system: str, answers: dict[str, list]) -> None:
        """Write atomically (a concurrent run sees the old or the new file), then drop old systems."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self._path(system)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(answers, ensure_ascii=False))
        tmp.replace(path)
        files = sorted(self.folder.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in files[KEEP_SYSTEMS:]:
            old.unlink(missing_ok=True)
