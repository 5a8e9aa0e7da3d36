"""Run the model for one completion: prompt in, finished suggestion out, cancellable per token."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from ghostframe.server.model_loading import LoadedModel
from ghostframe.server.prompt import CompletionContext, build_prompt, cut_completion, finish_completion


@dataclass
class Completion:
    text: str
    prompt_tokens: int
    new_tokens: int
    seconds: float
    cancelled: bool = False


class _StopWhenDone:
    """Stopping criterion: the suggestion has ended (per `cut_completion`) or the request was cancelled.

    Called once per decode step, so a cancellation takes effect within one token.
    """

    def __init__(self, engine: "CompletionEngine", ctx: CompletionContext, multiline: bool,
                 prompt_length: int, cancel: threading.Event):
        self.engine, self.ctx, self.multiline = engine, ctx, multiline
        self.prompt_length, self.cancel = prompt_length, cancel

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        if self.cancel.is_set():
            done = True
        else:
            text = self.engine.decode(input_ids[0, self.prompt_length:].tolist())
            done = cut_completion(text, self.ctx, self.multiline)[1]
        return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)


class CompletionEngine:
    """Greedy completion with a loaded model. Not thread-safe: call it from one worker thread."""

    def __init__(self, loaded: LoadedModel):
        self.loaded = loaded

    def decode(self, ids: list[int]) -> str:
        return self.loaded.tokenizer.decode(ids, skip_special_tokens=True)

    def prompt_ids(self, ctx: CompletionContext, max_prompt_tokens: int) -> list[int]:
        return build_prompt(ctx, self.loaded.tokenizer, max_prompt_tokens)

    def complete(self, ctx: CompletionContext, max_new_tokens: int, max_prompt_tokens: int,
                 multiline: bool, cancel: threading.Event | None = None) -> Completion:
        """The suggestion at `ctx`, or an empty one if cancelled before or during decoding."""
        import torch
        from transformers import StoppingCriteriaList

        cancel = cancel or threading.Event()
        start = time.perf_counter()
        ids = self.prompt_ids(ctx, max_prompt_tokens)
        if cancel.is_set() or not ids:
            return Completion("", len(ids), 0, time.perf_counter() - start, cancelled=cancel.is_set())
        model = self.loaded.model
        input_ids = torch.tensor([ids], device=self.loaded.device)
        stop = _StopWhenDone(self, ctx, multiline, len(ids), cancel)
        with torch.inference_mode():
            output = model.generate(
                input_ids=input_ids,
                attention_mask=torch.ones_like(input_ids),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                eos_token_id=self.loaded.stop_token_ids or None,
                pad_token_id=self.loaded.tokenizer.pad_token_id,
                stopping_criteria=StoppingCriteriaList([stop]),
            )
        new = output[0, len(ids):].tolist()
        new = [t for t in new if t not in self.loaded.stop_token_ids]
        if cancel.is_set():
            return Completion("", len(ids), len(new), time.perf_counter() - start, cancelled=True)
        text = finish_completion(self.decode(new), ctx, multiline)
        return Completion(text, len(ids), len(new), time.perf_counter() - start)
