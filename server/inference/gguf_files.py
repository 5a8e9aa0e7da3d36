"""What ghostframe derives from a GGUF file besides what llama.cpp reads itself, made once in the cache.

- For the llama.cpp engine: the prompt is built with a Hugging Face tokenizer (prompt.build_prompt,
  shared with the torch engine and the evaluation), made from the GGUF's own vocabulary by
  transformers; adapters are checked against the base's fingerprint; reports name the weights'
  type (`gguf_tokenizer_and_facts`).
- For torch: the GGUF dequantized into a plain Hugging Face folder (`converted_gguf_dir`), since
  transformers would dequantize it again on every load.

Reading a GGUF's header and vocabulary takes seconds, so each is kept in the cache, keyed by the
file's name, size and modification time.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import gguf
import torch
from tokenizers import pre_tokenizers

from ghostframe.server.inference.default_model import ModelLoadError
from ghostframe.server.inference.gguf_adapter import read_base_gguf
from ghostframe.server.inference.progress import Reporter
from ghostframe.server.inference.user_cache import build_once, cache_dir

INFO_FILE = "ghostframe-gguf.json"
TOKENIZER_MATCHED = "ghostframe-tokenizer-matched"
# llama.cpp's pre-tokenizers that split digits one by one before GPT-2's pattern, as the models' own
# tokenizers do (SmolLM2's is Digits + ByteLevel); transformers' GGUF converter leaves the digits
# out, and "\n\n1." then becomes two newline tokens where the model was trained on one.
DIGIT_SPLITTING_PRE_TOKENIZERS = {"smollm", "codeshell", "exaone", "minerva", "mellum2"}


def match_llama_cpp(tokenizer: Any, gguf_pre: str | None) -> None:
    """Make a tokenizer transformers built from a GGUF file split text as llama.cpp (and the model's
    own tokenizer) does, for the GGUF's `tokenizer.ggml.pre`."""
    if gguf_pre in DIGIT_SPLITTING_PRE_TOKENIZERS:
        tokenizer.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])


def gguf_pre_tokenizer(gguf_file: Path) -> str | None:
    """The GGUF's `tokenizer.ggml.pre` (None when it has none)."""
    field = gguf.GGUFReader(gguf_file).fields.get(gguf.Keys.Tokenizer.PRE)
    return None if field is None else str(field.contents())


@dataclass(frozen=True)
class GGUFFacts:
    architecture: str   # llama, qwen2, ...
    weights: str        # the file's weight type, e.g. Q4_K_M
    fingerprint: str    # fingerprint.base_model_fingerprint of the model transformers makes of it
    eos_token_id: int | None


def _cache_name(gguf_file: Path) -> str:
    stat = gguf_file.stat()
    return f"{gguf_file.stem}-{stat.st_size}-{int(stat.st_mtime)}"


def _weights_type(reader: Any) -> str:
    field = reader.fields.get(gguf.Keys.General.FILE_TYPE)
    if field is None:
        return "unknown"
    try:
        return gguf.LlamaFileType(int(field.contents())).name.removeprefix("MOSTLY_")
    except ValueError:
        return f"file type {int(field.contents())}"


def _derive(gguf_file: Path, target: Path, report: Reporter) -> None:
    """Write the tokenizer and the facts of `gguf_file` into the folder `target`."""
    from transformers import AutoTokenizer  # transformers takes seconds to import: only when a file is read

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
    tokenizer.save_pretrained(target)
    (target / INFO_FILE).write_text(json.dumps(asdict(facts)))


def gguf_tokenizer_and_facts(gguf_file: Path, report: Reporter = lambda _: None) -> tuple[Any, GGUFFacts]:
    """The Hugging Face tokenizer of a GGUF file and what the engine needs to know of it."""
    from transformers import AutoTokenizer  # transformers takes seconds to import: only when a model loads

    gguf_file = Path(gguf_file).expanduser().resolve()
    if not gguf_file.is_file():
        raise ModelLoadError(f"Model file {gguf_file} does not exist.")
    target = build_once(cache_dir() / "gguf" / f"{_cache_name(gguf_file)}-2",
                        lambda folder: _derive(gguf_file, folder, report))
    tokenizer = AutoTokenizer.from_pretrained(target)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer, GGUFFacts(**json.loads((target / INFO_FILE).read_text()))


def converted_gguf_dir(gguf_file: Path, report: Reporter = lambda _: None) -> Path:
    """Dequantize a GGUF file once into a Hugging Face folder in the cache and return it
    (transformers dequantizes a GGUF on every load; the converted folder loads at once)."""
    gguf_file = gguf_file.resolve()
    target = build_once(cache_dir() / "converted" / _cache_name(gguf_file),
                        lambda folder: _convert(gguf_file, folder, report))
    _match_llama_cpp_once(target, gguf_file)
    return target


def _convert(gguf_file: Path, target: Path, report: Reporter) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer  # seconds to import: only when converting

    report(f"converting {gguf_file.name} (first run only)")
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name)
        model = AutoModelForCausalLM.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name, dtype=torch.float32)
    except Exception as exc:  # corrupt or unsupported file
        raise ModelLoadError(f"Could not read GGUF model {gguf_file}: {exc}") from exc
    # The weights are dequantized already; drop the GGUF marker so the folder is a plain model.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)


def _match_llama_cpp_once(folder: Path, gguf_file: Path) -> None:
    """Give a converted folder's tokenizer llama.cpp's splitting (`match_llama_cpp`), once; folders
    converted before this was done get it on their next load."""
    def match(marker: Path) -> None:
        from transformers import AutoTokenizer  # seconds to import: only for a folder that lacks the marker

        tokenizer = AutoTokenizer.from_pretrained(folder)
        match_llama_cpp(tokenizer, gguf_pre_tokenizer(gguf_file))
        tokenizer.save_pretrained(folder)
        marker.write_text("tokenizer.ggml.pre applied\n")

    if not (folder / TOKENIZER_MATCHED).is_file():
        build_once(folder / TOKENIZER_MATCHED, match)
