"""`LoadedModel`: what a loader hands an engine — the model, its tokenizer, its end tokens, and what a
user needs to know about how it was chosen. Both loaders (model_loading for torch, llama_loading for
llama.cpp) make one; the engines, the server's status and the evaluation read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ghostframe.server.inference.precision import PrecisionChoice


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
    # tiers.TierChoice when `auto` chose the model by measuring this machine (typed loosely: tiers
    # estimates with the engine's constants, and the engine module needs this one)
    tier: Any = None


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
