"""A ghostframe-train LoRA adapter as a llama.cpp GGUF LoRA, for engines that run the base as GGUF.

llama.cpp adds `scale * alpha / r * B @ A` to each adapted weight, with `A` stored as
[n_in, r] and `B` as [r, n_out] in ggml's order (what torch calls (r, n_in) and (n_out, r)),
named after the base GGUF's tensors (`blk.N.attn_q.weight.lora_a`). Two things must match what
the base GGUF went through: llama-family conversion permutes the rows of q and k for its RoPE
layout, so B's rows are permuted the same way (Qwen2 has no permutation), and rsLoRA's
alpha/sqrt(r) is written as an alpha that gives the same scale through llama.cpp's alpha/r.
The base fingerprint (fingerprint.base_model_fingerprint) is stored in the GGUF so that an
engine can refuse the adapter on another base, as the torch path does.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import gguf
import numpy as np
from safetensors.torch import load_file

from ghostframe.server.inference.adapter_checks import ADAPTER_WEIGHTS, check_adapter_weights, read_adapter_metadata
from ghostframe.server.inference.default_model import PINNED_MODELS, ModelLoadError, gguf_of, pinned_gguf_path
from ghostframe.server.inference.fingerprint import fingerprint_of, fingerprint_stride
from ghostframe.server.inference.user_cache import build_once, cache_dir

GGUF_LORA_NAME = "adapter.gguf"
ADAPTER_CONFIG = "adapter_config.json"
FINGERPRINT_KEY = "ghostframe.base_model.fingerprint"
BASE_NAME_KEY = "ghostframe.base_model.name"

# The base architectures whose GGUF conversion we follow, and those among them that permute q/k.
ARCHITECTURES = {"llama": gguf.MODEL_ARCH.LLAMA, "qwen2": gguf.MODEL_ARCH.QWEN2}
ROPE_PERMUTED = {gguf.MODEL_ARCH.LLAMA}
_LORA_KEY = re.compile(r"^base_model\.model\.(?P<module>.+)\.lora_(?P<part>[AB])\.weight$")
_TENSOR_SUFFIX = re.compile(r"\.(lora_[AB]\.weight|lora_embedding_[AB]|base_layer\.weight|weight|bias)$")

__all__ = [
    "GGUF_LORA_NAME",
    "base_gguf_of",
    "check_gguf_lora_base",
    "export_gguf_lora",
    "gguf_base_fingerprint",
    "gguf_lora_path",
]


@dataclass(frozen=True)
class BaseShape:
    """What the export needs of the base: its GGUF architecture name and head counts, and when read
    from a base GGUF, its tensors' ggml shapes and fingerprint (to refuse an adapter made for another)."""

    arch: str
    n_layer: int | None
    n_head: int | None
    n_head_kv: int | None
    where: str
    tensor_shapes: dict[str, tuple[int, ...]] | None = None
    fingerprint: str | None = None


def _field(reader: gguf.GGUFReader, key: str):
    field = reader.fields.get(key)
    return None if field is None else field.contents()


def _int(value) -> int | None:
    return None if value is None else int(value)


def read_base_gguf(base_gguf: Path) -> BaseShape:
    """The base's shape and fingerprint from its GGUF file (memory-mapped: of the weights only a few
    embedding rows are read). Any architecture is read; the export refuses those it cannot follow."""
    try:
        reader = gguf.GGUFReader(base_gguf)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"Could not read the base model GGUF {base_gguf}: {exc}") from exc
    arch = str(_field(reader, gguf.Keys.General.ARCHITECTURE))
    n_head = _int(_field(reader, gguf.Keys.Attention.HEAD_COUNT.format(arch=arch)))
    return BaseShape(
        arch=arch, n_layer=_int(_field(reader, gguf.Keys.LLM.BLOCK_COUNT.format(arch=arch))), n_head=n_head,
        n_head_kv=_int(_field(reader, gguf.Keys.Attention.HEAD_COUNT_KV.format(arch=arch))) or n_head,
        where=str(base_gguf), tensor_shapes={t.name: tuple(int(n) for n in t.shape) for t in reader.tensors},
        fingerprint=_fingerprint(reader, arch),
    )


def read_base_config(source: str) -> BaseShape:
    """The base's shape from its Hugging Face config (the folder or hub id the adapter was trained on)."""
    from transformers import AutoConfig  # transformers takes seconds to import: only for this fallback

    try:
        config = AutoConfig.from_pretrained(source)
    except Exception as exc:  # gone from the cache, not a model folder, offline hub id
        raise ModelLoadError(
            f"The adapter's base model config could not be read from {source!r} ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:200]}). Export against the base GGUF instead "
            "(ghostframe-train --export-gguf DIR --model BASE.gguf or a pinned model name).") from exc
    n_head = getattr(config, "num_attention_heads", None)
    return BaseShape(arch=config.model_type, n_layer=getattr(config, "num_hidden_layers", None), n_head=n_head,
                     n_head_kv=getattr(config, "num_key_value_heads", None) or n_head, where=source)


def _fingerprint(reader: gguf.GGUFReader, arch_name: str) -> str:
    """fingerprint.base_model_fingerprint of the model transformers makes of this GGUF, from the
    same strided embedding rows, dequantized as transformers does (gguf.dequantize). Equal to it
    where transformers' model_type is the GGUF architecture's name (llama and qwen2 are)."""
    embedding = next((t for t in reader.tensors if t.name == "token_embd.weight"), None)
    if embedding is None:
        raise ModelLoadError("The base model GGUF has no token_embd.weight tensor.")
    hidden, vocab = (int(n) for n in embedding.shape)
    n_layer = _int(_field(reader, gguf.Keys.LLM.BLOCK_COUNT.format(arch=arch_name)))
    rows = np.asarray(embedding.data)[:: fingerprint_stride(vocab)]
    sample = gguf.dequantize(rows, embedding.tensor_type).reshape(-1, hidden).astype(np.float32)
    return fingerprint_of([arch_name, hidden, n_layer, vocab], sample)


def gguf_base_fingerprint(base_gguf: Path) -> str:
    """The fingerprint an adapter trained on this base GGUF (through the torch loader) carries."""
    reader = gguf.GGUFReader(base_gguf)
    return _fingerprint(reader, str(_field(reader, gguf.Keys.General.ARCHITECTURE)))


def base_gguf_of(model: str | None) -> Path | None:
    """The GGUF file a --model value names (a .gguf path, or a pinned model's name: fetched the
    first time), else None."""
    found = gguf_of(model)
    return None if found is None else pinned_gguf_path(PINNED_MODELS[model]) if model in PINNED_MODELS else found[0]


def _check_config(config: dict, path: Path) -> float:
    """Refuse what llama.cpp's LoRA cannot express; return the alpha that gives peft's scale."""
    def refuse(why: str) -> ModelLoadError:
        return ModelLoadError(f"Adapter {path} cannot be exported for llama.cpp: {why}")

    if config.get("peft_type", "LORA") != "LORA":
        raise refuse(f"it is a {config['peft_type']} adapter, not a LoRA.")
    if config.get("modules_to_save"):
        raise refuse(f"it saves whole modules ({', '.join(config['modules_to_save'])}) besides the LoRA "
                     "matrices (modules_to_save), which a llama.cpp LoRA cannot carry.")
    for key, why in (("use_dora", "DoRA's magnitude vectors"), ("lora_bias", "LoRA bias terms"),
                     ("fan_in_fan_out", "fan_in_fan_out (Conv1D) weights"), ("layer_replication", "layer replication"),
                     ("rank_pattern", "a rank per module (rank_pattern)"),
                     ("alpha_pattern", "an alpha per module (alpha_pattern)")):
        if config.get(key):
            raise refuse(f"it uses {why}; llama.cpp applies one plain alpha/r LoRA.")
    if config.get("bias", "none") != "none":
        raise refuse(f"it trains biases (bias={config['bias']!r}), which a llama.cpp LoRA cannot carry.")
    r, alpha = int(config["r"]), float(config["lora_alpha"])
    # llama.cpp scales by alpha/r; rsLoRA's alpha/sqrt(r) is the same scale with alpha*sqrt(r).
    return alpha * math.sqrt(r) if config.get("use_rslora") else alpha


def _permute_rows(weights: np.ndarray, n_head: int) -> np.ndarray:
    """convert_hf_to_gguf's LlamaModel.permute of the rows (per head: interleaved halves to pairs)."""
    return (weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2).reshape(weights.shape))


def _model_arch(base: BaseShape, path: Path) -> gguf.MODEL_ARCH:
    if base.arch not in ARCHITECTURES or not (base.n_layer and base.n_head and base.n_head_kv):
        raise ModelLoadError(f"Adapter {path} cannot be exported for llama.cpp: its base ({base.where}) is a "
                             f"{base.arch!r} model; adapters are exported for {' and '.join(ARCHITECTURES)} bases.")
    return ARCHITECTURES[base.arch]


def _lora_tensors(path: Path, base: BaseShape) -> dict[str, np.ndarray]:
    """peft's lora_A/lora_B of every module, named and laid out as llama.cpp loads them."""
    arch = _model_arch(base, path)
    names = gguf.get_tensor_name_map(arch, base.n_layer)
    pairs: dict[str, dict] = {}
    for key, tensor in load_file(str(path / ADAPTER_WEIGHTS)).items():
        module = _TENSOR_SUFFIX.sub("", key.removeprefix("base_model.model."))
        found = names.get_type_and_name(module)
        if found is not None and found[0] in (gguf.MODEL_TENSOR.TOKEN_EMBD, gguf.MODEL_TENSOR.OUTPUT):
            raise ModelLoadError(
                f"Adapter {path} cannot be exported for llama.cpp: it adapts {module!r} (the token embeddings or "
                "the output head), which llama.cpp cannot apply as peft does (a tied model has a single tensor "
                "for both). Train with --lora-targets naming only attention and MLP projections.")
        match = _LORA_KEY.match(key)
        if match is None:
            raise ModelLoadError(f"Adapter {path} cannot be exported for llama.cpp: it holds {key!r}, which is not "
                                 "a LoRA A or B matrix of a linear layer.")
        if found is None:
            raise ModelLoadError(f"Adapter {path} cannot be exported for llama.cpp: module {module!r} has no "
                                 f"tensor in a {base.arch} GGUF of {base.n_layer} layers "
                                 f"({base.where}); was it made for another base model?")
        kind, name = found
        pairs.setdefault(name, {"kind": kind})[match["part"]] = tensor.float().numpy()

    tensors = {}
    for name, pair in sorted(pairs.items()):
        if "A" not in pair or "B" not in pair:
            raise ModelLoadError(f"Adapter {path} is damaged: {name} has only one of its LoRA matrices.")
        a, b = pair["A"], pair["B"]  # torch (r, n_in) and (n_out, r): ggml [n_in, r] and [r, n_out]
        if base.tensor_shapes is not None:
            want = base.tensor_shapes.get(f"{name}.weight")
            if want is None or tuple(want) != (a.shape[1], b.shape[0]):
                raise ModelLoadError(
                    f"Adapter {path} does not fit base model {base.where}: its {name} LoRA maps {a.shape[1]} to "
                    f"{b.shape[0]} values, the base's {name}.weight is {'missing' if want is None else list(want)}.")
        if arch in ROPE_PERMUTED and pair["kind"] in (gguf.MODEL_TENSOR.ATTN_Q, gguf.MODEL_TENSOR.ATTN_K):
            b = _permute_rows(b, base.n_head if pair["kind"] == gguf.MODEL_TENSOR.ATTN_Q else base.n_head_kv)
        tensors[f"{name}.weight.lora_a"] = np.ascontiguousarray(a)
        tensors[f"{name}.weight.lora_b"] = np.ascontiguousarray(b)
    if not tensors:
        raise ModelLoadError(f"Adapter {path} has no LoRA matrices to export.")
    return tensors


def _check_fingerprint(path: Path, wanted: str | None, base_name: str, base: BaseShape) -> None:
    if wanted and base.fingerprint and wanted != base.fingerprint:
        raise ModelLoadError(
            f"Adapter {path} was trained for base model {base_name!r} (fingerprint {wanted}), but {base.where} "
            f"has fingerprint {base.fingerprint}. Serve the adapter with its base model, or train a new "
            "adapter for this one.")


def export_gguf_lora(adapter_dir: Path, out_path: Path | None = None, base_gguf: Path | None = None) -> Path:
    """Write the peft LoRA in `adapter_dir` as a llama.cpp GGUF LoRA (default: adapter.gguf beside it).

    With `base_gguf` the adapter is checked against that file (fingerprint, tensor shapes) and its
    head counts are read from it; without, from the base config the adapter names.
    """
    adapter_dir = Path(adapter_dir).expanduser()
    if not (adapter_dir / ADAPTER_CONFIG).is_file():
        raise ModelLoadError(f"{adapter_dir} is not a LoRA adapter folder (no {ADAPTER_CONFIG}); a full "
                             "fine-tune has no adapter to export: convert the whole model to GGUF instead.")
    check_adapter_weights(adapter_dir)
    config = json.loads((adapter_dir / ADAPTER_CONFIG).read_text())
    alpha = _check_config(config, adapter_dir)
    meta = read_adapter_metadata(adapter_dir).get("base_model", {})
    if base_gguf is not None:
        base = read_base_gguf(Path(base_gguf).expanduser())
    else:
        source = meta.get("source") or config.get("base_model_name_or_path")
        if not source:
            raise ModelLoadError(f"Adapter {adapter_dir} does not say which base model it was trained on; "
                                 "export it against the base GGUF (--model BASE.gguf).")
        base = read_base_config(source)
    _check_fingerprint(adapter_dir, meta.get("fingerprint"), meta.get("name", "?"), base)
    tensors = _lora_tensors(adapter_dir, base)

    out_path = Path(out_path) if out_path is not None else adapter_dir / GGUF_LORA_NAME
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=out_path.name, suffix=".partial", dir=out_path.parent)
    os.close(fd)
    try:
        writer = gguf.GGUFWriter(tmp, base.arch)
        writer.add_type(gguf.GGUFType.ADAPTER)
        writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
        writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
        if meta.get("fingerprint"):
            writer.add_string(FINGERPRINT_KEY, meta["fingerprint"])
            writer.add_string(BASE_NAME_KEY, str(meta.get("name", "")))
        for name, data in tensors.items():
            writer.add_tensor(name, data)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(tmp, out_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out_path


def check_gguf_lora_base(lora_gguf: Path, base_gguf: Path) -> None:
    """Refuse a GGUF LoRA made for another base than `base_gguf` (architecture, then fingerprint);
    llama.cpp's own errors ("model arch and LoRA arch mismatch") do not say which base it needs."""
    reader = gguf.GGUFReader(lora_gguf)
    base = read_base_gguf(Path(base_gguf))
    arch = _field(reader, gguf.Keys.General.ARCHITECTURE)
    if arch != base.arch:
        raise ModelLoadError(f"Adapter {lora_gguf} is for a {arch} base model, but {base_gguf} is a {base.arch} "
                             "model. Serve the adapter with its base model.")
    _check_fingerprint(lora_gguf, _field(reader, FINGERPRINT_KEY), _field(reader, BASE_NAME_KEY) or "?", base)


def gguf_lora_path(adapter_dir: Path, base_gguf: Path | None = None) -> Path:
    """The GGUF LoRA of `adapter_dir`: the one beside it when it is at least as new as the adapter's
    weights and config (ghostframe-train writes it there), else one exported into ghostframe's cache
    (a server writes nothing but its cache: the adapter's folder is left as it is). With `base_gguf`,
    refused unless it was made for that base."""
    adapter_dir = Path(adapter_dir).expanduser().resolve()
    sources = [adapter_dir / ADAPTER_WEIGHTS, adapter_dir / ADAPTER_CONFIG]
    newest = max((p.stat().st_mtime for p in sources if p.is_file()), default=0.0)
    target = adapter_dir / GGUF_LORA_NAME
    if not target.is_file() or target.stat().st_mtime < newest:
        key = hashlib.sha256(f"{adapter_dir}\0{newest}".encode()).hexdigest()[:20]
        exported = cache_dir() / "adapters" / f"{key}.gguf"
        if not exported.is_file():  # the export checks it against the base as it writes it
            return build_once(exported, lambda path: export_gguf_lora(adapter_dir, path, base_gguf))
        target = exported
    if base_gguf is not None:
        check_gguf_lora_base(target, base_gguf)
    return target
