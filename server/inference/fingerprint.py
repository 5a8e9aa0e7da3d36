"""The base fingerprint: a short hash that tells whether an adapter was made for these base weights.

Computed on a strided sample of the input embeddings rounded to bf16, plus the shape-defining
config, so it is the same from a Hugging Face model in any dtype (`base_model_fingerprint`) and
from the GGUF file it was converted from (gguf_adapter reads the same rows from the file).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import torch


def base_model_fingerprint(model: Any) -> str:
    """The fingerprint of a transformers model (or of the base under its peft adapter)."""
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
    and these sampled embedding rows (a float tensor or array), rounded to bf16."""
    digest = hashlib.sha256(json.dumps(shape).encode())
    sample = torch.as_tensor(rows).to("cpu", torch.bfloat16).contiguous()
    digest.update(sample.view(torch.int16).numpy().tobytes())
    return digest.hexdigest()[:16]
