"""Greedy decoding with a reusable KV cache and prompt-lookup speculation.

Code repeats itself: column names, variable names, whole call patterns recur in the
file. Prompt-lookup decoding drafts the next tokens by copying what followed the last
occurrence of the current n-gram in the context, then checks the whole draft with one
forward pass and keeps the part the model agrees with — the output is exactly what
plain greedy decoding gives, in fewer forward passes.

Which decoder serves (`SpeedOptions.decoder`, "auto"): on a CPU, transformers' own `generate`
continuing the document's reused, cropped KV cache, without prompt lookup (`library_decode`);
on a GPU, the hand-written loop here (`greedy_decode`), because the library cannot combine
the two: with `prompt_lookup_num_tokens` 5.24 re-feeds the prompt onto a reused cache and
decodes wrong tokens (`library_decode` and its test show it), so it must choose between
prompt lookup and cache reuse.

Why: on the 2-core AVX2 EPYC (int8, SmolLM2-135M) the hand-written loop was not faster by
any margin. 60 keystrokes over 5 files: this loop p50 578 / p95 1,412 ms, `generate` with the
reused cache and no lookup p50 494 / p95 1,987 ms (equal means, 686 vs 689 ms); `bench
latency`'s 12 keystrokes, 486 / 1,217 vs 391 / 1,071 ms; 144 keystrokes over 12 files, the arms
interleaved per keystroke, 1 thread: this loop 897 / 3,554 ms, without lookup 839 / 3,783 ms,
`generate` with the reused cache 862 / 3,618 ms (means 1,178 / 1,130 / 1,131 ms). 3-token drafts
do not pay on that CPU, so the library serves it. The loop stays for GPUs, where checking a
10-token draft costs about one step (not measured: no GPU was lent); `--decoder` forces either.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable

import torch

from ghostframe.server.inference.prefix_cache import crop

# Longest draft to check in one forward pass. On a GPU checking 10 tokens costs about what
# one does (decoding is bound by reading the weights). On a CPU the cost grows with every
# drafted token and a rejected draft is wasted work: on the 2-core dev machine (int8, default
# model) the typing-session p50 was 175 ms with 3-token drafts, 315 ms with 10.
MAX_DRAFT_TOKENS = {"cuda": 10, "cpu": 3}


def draft_from_context(tokens: list[int], max_ngram: int = 3, max_draft: int = 10) -> list[int]:
    """Tokens that followed the latest earlier occurrence of the trailing n-gram (longest n first)."""
    for n in range(min(max_ngram, len(tokens) - 1), 0, -1):
        tail = tokens[-n:]
        for start in range(len(tokens) - n - 1, -1, -1):
            if tokens[start:start + n] == tail:
                return tokens[start + n:start + n + max_draft]
    return []


@functools.cache
def _takes_logits_to_keep(model_class: type) -> bool:
    """Most transformers causal LMs do; a model with its own code may not."""
    return "logits_to_keep" in inspect.signature(model_class.forward).parameters


@torch.inference_mode()
def prefill(model: Any, ids: list[int], cache: Any) -> torch.Tensor:
    """Run `ids` through the model after what `cache` holds, extending it; the last position's logits."""
    # only the last position's logits are needed: skips the vocabulary projection for the
    # rest of the prompt (467 -> 376 ms for a 340-token int8 prefill on the 2-core CPU)
    last_only = {"logits_to_keep": 1} if _takes_logits_to_keep(type(model)) else {}
    return model(input_ids=torch.tensor([ids], device=model.device), cache=cache, use_cache=True,
                 **last_only).logits[0, -1]


@torch.inference_mode()
def greedy_decode(
    model: Any,
    prompt: list[int],
    cache: Any,
    cached: int,
    max_new_tokens: int,
    should_stop: Callable[[list[int]], bool],
    prompt_lookup: bool = True,
    max_draft: int = MAX_DRAFT_TOKENS["cpu"],
) -> tuple[list[int], Any, list[int]]:
    """Generate up to `max_new_tokens` greedily after `prompt`.

    `cache` holds keys/values for `prompt[:cached]` (or is None). `should_stop(new_ids)` is
    asked after every accepted token (end of suggestion, end of text, cancellation).
    Returns (new token ids, the cache, the ids the cache now holds).
    """
    from transformers import DynamicCache

    device = model.device
    if cache is None:
        cache, cached = DynamicCache(), 0
    sequence = list(prompt)
    new: list[int] = []
    pending = int(prefill(model, prompt[cached:], cache).argmax())  # predicted, not yet fed to the model
    while True:
        new.append(pending)
        sequence.append(pending)
        if len(new) >= max_new_tokens or should_stop(new):
            break
        draft = draft_from_context(sequence, max_draft=max_draft)[: max_new_tokens - len(new)] if prompt_lookup else []
        inputs = torch.tensor([[pending, *draft]], device=device)
        logits = model(input_ids=inputs, cache=cache, use_cache=True).logits
        predicted = logits[0].argmax(-1).tolist()
        accepted = 0
        while accepted < len(draft) and draft[accepted] == predicted[accepted]:
            accepted += 1
        # the cache now holds pending + the whole draft; keep pending + accepted draft
        crop(cache, len(sequence) + accepted)
        stopped = False
        for token in draft[:accepted]:
            new.append(token)
            sequence.append(token)
            if len(new) >= max_new_tokens or should_stop(new):
                stopped = True
                break
        if stopped:
            crop(cache, len(sequence) - 1)
            return new, cache, sequence[:-1]
        pending = predicted[accepted]
    return new, cache, sequence[:-1]


def stopping_criteria(should_stop: Callable[[list[int]], bool], prompt_length: int) -> Any:
    """`should_stop(new_ids)` as transformers' `generate` asks it, after every step."""
    from transformers import StoppingCriteria, StoppingCriteriaList

    class _Stop(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            done = should_stop(input_ids[0, prompt_length:].tolist())
            return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)

    return StoppingCriteriaList([_Stop()])


@torch.inference_mode()
def library_decode(
    model: Any,
    prompt: list[int],
    cache: Any,
    cached: int,
    max_new_tokens: int,
    should_stop: Callable[[list[int]], bool],
    prompt_lookup: bool = True,
    max_draft: int = MAX_DRAFT_TOKENS["cpu"],
) -> tuple[list[int], Any, list[int]]:
    """`greedy_decode`'s contract through transformers' own `generate`, for `bench latency`'s rows.

    transformers (5.24) cannot do both at once: with `prompt_lookup_num_tokens` its first step
    feeds the whole prompt on top of a pre-filled cache (342 cached + 348 fed = 690 positions)
    and the greedy tokens come out wrong. So prompt lookup here starts from an empty cache,
    and a reused cache is used only without it.
    """
    from transformers import DynamicCache

    if cache is None or (prompt_lookup and cached):
        cache, cached = DynamicCache(), 0
    input_ids = torch.tensor([prompt], device=model.device)
    lookup = {"prompt_lookup_num_tokens": max_draft, "max_matching_ngram_size": 3} if prompt_lookup else {}
    output = model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), cache=cache,
                            max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=None,
                            pad_token_id=0, stopping_criteria=stopping_criteria(should_stop, len(prompt)), **lookup)
    generated = output[0, len(prompt):].tolist()
    # a draft accepted whole may run past the stop: keep what greedy_decode would have kept
    new = next((generated[:n] for n in range(1, len(generated) + 1) if should_stop(generated[:n])), generated)
    sequence = prompt + new
    crop(cache, len(sequence) - 1)
    return new, cache, sequence[: cache.get_seq_length()]
