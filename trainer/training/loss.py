"""The training loss: next-token cross-entropy, computed in chunks, optionally key-token weighted.

Mathematically this is the model's own causal-LM loss (labels = input ids). It is
computed from the decoder's hidden states a chunk of tokens at a time, each chunk's
logits recomputed in the backward pass, so a large batch never holds the full
(batch x length x vocabulary) logits tensor, which is what runs out of memory first
for small models with large vocabularies. Models whose logits are post-processed
(soft-capping, scaling) fall back to the model's own forward with labels.

`keytoken_weight` > 0 gives a key-token weighted loss after the Hugging Face course: each
predicted token that is a key token (`plt`, `pd`, `fit`, ...) weighs 1 + weight, the others
1, and the weights are normalised so the number stays on the cross-entropy scale. The
course weighs whole samples by their key-token count instead; that only shifts weight
between the samples of one batch, so at batch size 1 (the CPU default at 1,024 tokens) it
changed nothing: a run with it gave the same losses and the same answers as one without.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

DEFAULT_KEYTOKENS = ("plt", "pd", "sk", "np", "fit", "predict", "transform", "df")
DEFAULT_CHUNK_TOKENS = 4096


def keytoken_ids(tokenizer: Any, words: Iterable[str] = DEFAULT_KEYTOKENS) -> list[int]:
    """Ids of the key words that the tokenizer keeps as one token (with and without a leading space)."""
    ids = set()
    for word in words:
        for variant in (word, " " + word):
            tokens = tokenizer(variant, add_special_tokens=False)["input_ids"]
            if len(tokens) == 1:
                ids.add(tokens[0])
    return sorted(ids)


def _chunk_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, labels: torch.Tensor):
    logits = F.linear(hidden, weight, bias).float()
    return F.cross_entropy(logits, labels, reduction="none")


def _plain_logits_head(model: Any) -> bool:
    config = model.config
    if getattr(config, "final_logit_softcapping", None) or getattr(config, "logit_scale", None):
        return False
    return hasattr(model, "get_decoder") and isinstance(model.get_output_embeddings(), nn.Linear)


class CausalLMLoss(nn.Module):
    """Wraps a causal LM (peft or not) so that forward(input_ids) returns the mean training loss.

    Being a module that contains the model lets `accelerate` wrap it for DDP as one unit.
    """

    def __init__(
        self,
        model: nn.Module,
        keytoken_ids: list[int] | None = None,
        keytoken_weight: float = 0.0,
        chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
    ):
        super().__init__()
        self.model = model
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        self.chunked = chunk_tokens > 0 and _plain_logits_head(base)
        self._base = [base]  # not a submodule: it is inside self.model already
        self.register_buffer("keytokens", torch.tensor(keytoken_ids or [], dtype=torch.long), persistent=False)
        self.keytoken_weight = keytoken_weight
        self.chunk_tokens = chunk_tokens

    def compile_decoder(self) -> None:
        """torch.compile the decoder stack (the part the chunked loss calls directly)."""
        self._base[0].get_decoder().compile()

    def token_losses(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Per-token next-token losses, shape (batch, length - 1)."""
        batch, length = input_ids.shape
        labels = input_ids[:, 1:]
        if not self.chunked:
            logits = self.model(input_ids=input_ids).logits[:, :-1].float()
            return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), reduction="none").view(
                batch, length - 1
            )
        base = self._base[0]
        hidden = base.get_decoder()(input_ids=input_ids).last_hidden_state[:, :-1]
        hidden = hidden.reshape(-1, hidden.shape[-1])
        flat_labels = labels.reshape(-1)
        head = base.get_output_embeddings()
        pieces = []
        for start in range(0, hidden.shape[0], self.chunk_tokens):
            stop = start + self.chunk_tokens
            args = (hidden[start:stop], head.weight, head.bias, flat_labels[start:stop])
            if torch.is_grad_enabled():
                pieces.append(checkpoint(_chunk_cross_entropy, *args, use_reentrant=False))
            else:
                pieces.append(_chunk_cross_entropy(*args))
        return torch.cat(pieces).view(batch, length - 1)

    def forward(self, input_ids: torch.Tensor, weighted: bool = True) -> torch.Tensor:
        losses = self.token_losses(input_ids)
        if not weighted or self.keytoken_weight <= 0 or self.keytokens.numel() == 0:
            return losses.mean()
        weights = 1.0 + self.keytoken_weight * torch.isin(input_ids[:, 1:], self.keytokens).to(losses.dtype)
        return (losses * weights).sum() / weights.sum()
