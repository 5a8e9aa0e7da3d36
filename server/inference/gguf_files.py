"""What the llama.cpp engine needs from a GGUF file besides llama.cpp itself, derived once and cached.

The prompt is built with a Hugging Face tokenizer (prompt.build_prompt, shared with the torch
engine and the evaluation), made from the GGUF's own vocabulary by transformers; adapters are
checked against the base's fingerprint; reports name the weights' type. Reading a GGUF's header
and vocabulary takes seconds, so all three are kept in the cache beside each other, keyed by
the file's name, size and modification time.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from filelock import FileLock

from ghostframe.server.inference.default_model import ModelLoadError, cache_dir

Reporter = Callable[[str], None]
INFO_FILE = "ghostframe-gguf.json"
# llama.cpp's pre-tokenizers that split digits one by one before GPT-2's pattern, as the models' own
# tokenizers do (SmolLM2's is Digits + ByteLevel); transformers' GGUF converter leaves the digits
# out, and "\n\n1." then becomes two newline tokens where the model was trained on one.
DIGIT_SPLITTING_PRE_TOKENIZERS = {"smollm", "codeshell", "exaone", "minerva", "mellum2"}


def match_llama_cpp(tokenizer: Any, gguf_pre: str | None) -> None:
    """Make a tokenizer transformers built from a GGUF file split text as llama.cpp (and the model's
    own tokenizer) does, for the GGUF's `tokenizer.ggml.pre`."""
    if gguf_pre in DIGIT_SPLITTING_PRE_TOKENIZERS:
        from tokenizers import pre_tokenizers

        tokenizer.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])


def gguf_pre_tokenizer(gguf_file: Path) -> str | None:
    """The GGUF's `tokenizer.ggml.pre` (None when it has none)."""
    import gguf

    field = gguf.GGUFReader(gguf_file).fields.get(gguf.Keys.Tokenizer.PRE)
    return None if field is None else str(field.contents())


@dataclass(frozen=True)
class GGUFFacts:
    architecture: str   # llama, qwen2, ...
    weights: str        # the file's weight type, e.g. Q4_K_M
    fingerprint: str    # model_loading.base_model_fingerprint of the model transformers makes of it
    eos_token_id: int | None


def _folder(gguf_file: Path) -> Path:
    stat = gguf_file.stat()
    return cache_dir() / "gguf" / f"{gguf_file.stem}-{stat.st_size}-{int(stat.st_mtime)}-2"


def _weights_type(reader: Any) -> str:
    import gguf

    field = reader.fields.get(gguf.Keys.General.FILE_TYPE)
    if field is None:
        return "unknown"
    try:
        return gguf.LlamaFileType(int(field.contents())).name.removeprefix("MOSTLY_")
    except ValueError:
        return f"file type {int(field.contents())}"


def _derive(gguf_file: Path, target: Path, report: Reporter) -> None:
    """Write the tokenizer and the facts of `gguf_file` into `target` (atomically)."""
    import gguf
    from transformers import AutoTokenizer

    from ghostframe.server.inference.gguf_adapter import read_base_gguf

    report(f"reading {gguf_file.name}'s vocabulary (first run only)")
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name)
        reader = gguf.GGUFReader(gguf_file)
    except Exception as exc:  # corrupt, truncated or not a GGUF file
        raise ModelLoadError(f"Could not read GGUF model {gguf_file}: {type(exc).__name__}: {exc}") from exc
    pre = reader.fields.get(gguf.Keys.Tokenizer.PRE)
    match_llama_cpp(tokenizer, None if pre is None else str(pre.contents()))
    eos = reader.fields.get(gguf.Keys.Tokenizer.EOS_ID)
    facts = GGUFFacts(architecture=str(reader.fields[gguf.Keys.General.ARCHITECTURE].contents()),
                      weights=_weights_type(reader), fingerprint=read_base_gguf(gguf_file).fingerprint or "",
                      eos_token_id=None if eos is None else int(eos.contents()))
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        tokenizer.save_pretrained(tmp)
        Path(tmp, INFO_FILE).write_text(json.dumps(asdict(facts)))
        os.replace(tmp, target)
        os.makedirs(tmp)  # TemporaryDirectory cleans up a path that exists


def gguf_tokenizer_and_facts(gguf_file: Path, report: Reporter = lambda _: None) -> tuple[Any, GGUFFacts]:
    """The Hugging Face tokenizer of a GGUF file and what the engine needs to know of it."""
    from transformers import AutoTokenizer

    gguf_file = Path(gguf_file).expanduser().resolve()
    if not gguf_file.is_file():
        raise ModelLoadError(f"Model file {gguf_file} does not exist.")
    target = _folder(gguf_file)
    if not (target / INFO_FILE).is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(target) + ".lock"):
            if not (target / INFO_FILE).is_file():
                _derive(gguf_file, target, report)
    tokenizer = AutoTokenizer.from_pretrained(target)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer, GGUFFacts(**json.loads((target / INFO_FILE).read_text()))
