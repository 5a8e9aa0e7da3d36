"""The reference engine: transformers' own `generate` on the whole prompt, nothing kept between requests.

The greedy text every other engine must give (the exactness tests compare with it; `--plain`
serves it): only the prompt and the stop rules `CompletionEngine` shares, and none of the
speed-ups — no KV cache, no typed-through answers, no warming, no look-ahead, no time cap.
"""

from __future__ import annotations

from ghostframe.server.inference.decoding import likeliest, stopping_criteria
from ghostframe.server.inference.engine import NO_SPEEDUPS, CompletionEngine, Generated, StopRule
from ghostframe.server.inference.loaded_model import LoadedModel


class ReferenceEngine(CompletionEngine):
    """A torch model run by `generate` from scratch for every request."""

    kind = "torch"

    def __init__(self, loaded: LoadedModel):
        super().__init__(loaded, NO_SPEEDUPS)

    def _decode(self, ids: list[int], max_new_tokens: int, stop: StopRule, cache: str | None) -> Generated:
        import torch

        input_ids = torch.tensor([ids], device=self.loaded.device)
        with torch.inference_mode():
            output = self.loaded.model.generate(
                input_ids=input_ids, attention_mask=torch.ones_like(input_ids), max_new_tokens=max_new_tokens,
                do_sample=False, eos_token_id=self.loaded.stop_token_ids or None,
                pad_token_id=self.loaded.tokenizer.pad_token_id, stopping_criteria=stopping_criteria(stop, len(ids)),
            )
        return Generated(output[0, len(ids):].tolist(), 0)

    def _next_tokens(self, ids: list[int], count: int, cache: str | None) -> list[tuple[int, float]]:
        import torch

        with torch.inference_mode():
            logits = self.loaded.model(input_ids=torch.tensor([ids], device=self.loaded.device)).logits[0, -1]
        return likeliest(logits, count)
