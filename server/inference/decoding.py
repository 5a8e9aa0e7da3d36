"""Greedy decoding through transformers' own `generate`, continuing the document's reused KV cache.

Every request shares most of its prompt with the last one from the same document, so the
engine keeps that document's cache (prefix_cache) and `generate` only computes what changed.
Prompt lookup (`prompt_lookup_num_tokens`: draft the next tokens by copying what followed the
last occurrence of the current n-gram, check the draft in one pass) is an option, off by
default: transformers (5.24) cannot combine it with a pre-filled cache (its first step feeds the
whole prompt on top of the cache and decodes wrong tokens; a test shows it), so with lookup each
request starts from a new cache.

A hand-written decoding loop that did both was dropped: it was not faster than `generate`
with the reused cache on the CPU or the GPU (BENCHMARKS.md).
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable

import torch

from ghostframe.server.inference.prefix_cache import crop

# Longest prompt-lookup draft to check in one forward pass. On a GPU checking 10 tokens costs
# about what one does (decoding is bound by reading the weights). On a CPU the cost grows with
# every drafted token and a rejected draft is wasted work.
MAX_DRAFT_TOKENS = {"cuda": 10, "cpu": 3}


@functools.cache
def _takes_logits_to_keep(model_class: type) -> bool:
    """Most transformers causal LMs do; a model with its own code may not."""
    return "logits_to_keep" in inspect.signature(model_class.forward).parameters


@torch.inference_mode()
def prefill(model: Any, ids: list[int], cache: Any) -> torch.Tensor:
    """Run `ids` through the model after what `cache` holds, extending it; the last position's logits."""
    # only the last position's logits are needed: skips the vocabulary projection for the rest of the
    # prompt, a large share of a small model's prefill (its vocabulary is wide next to its layers)
    last_only = {"logits_to_keep": 1} if _takes_logits_to_keep(type(model)) else {}
    return model(input_ids=torch.tensor([ids], device=model.device), cache=cache, use_cache=True,
                 **last_only).logits[0, -1]


def likeliest(logits: torch.Tensor, count: int) -> list[tuple[int, float]]:
    """The `count` likeliest tokens of one position's `logits`, likeliest first, with their log-probabilities."""
    top = torch.log_softmax(logits.float(), -1).topk(count)
    return list(zip(top.indices.tolist(), top.values.tolist()))


def stopping_criteria(should_stop: Callable[[list[int]], bool], prompt_length: int) -> Any:
    """`should_stop(new_ids)` as transformers' `generate` asks it, after every step."""
    from transformers import StoppingCriteria, StoppingCriteriaList

    class _Stop(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            done = should_stop(input_ids[0, prompt_length:].tolist())
            return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)

    return StoppingCriteriaList([_Stop()])


@torch.inference_mode()
def greedy_decode(
    model: Any,
    prompt: list[int],
    cache: Any,
    cached: int,
    max_new_tokens: int,
    should_stop: Callable[[list[int]], bool],
    prompt_lookup: bool = False,
    max_draft: int = MAX_DRAFT_TOKENS["cpu"],
    logprobs: list[float] | None = None,
) -> tuple[list[int], Any, list[int]]:
    """Generate up to `max_new_tokens` greedily after `prompt`.

    `cache` holds keys/values for `prompt[:cached]` (or is None). `should_stop(new_ids)` is
    asked after every step (end of suggestion, end of text, cancellation). Returns (new token
    ids, the cache, the ids the cache now holds). With `prompt_lookup` the cache is not reused
    (see the module docstring). `logprobs`, when given, gets each new token's log-probability under
    the model (what show_filter judges a suggestion by).
    """
    from transformers import DynamicCache

    if cache is None or (prompt_lookup and cached):
        cache = DynamicCache()
    input_ids = torch.tensor([prompt], device=model.device)
    lookup = {"prompt_lookup_num_tokens": max_draft, "max_matching_ngram_size": 3} if prompt_lookup else {}
    output = model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), cache=cache,
                            max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=None,
                            pad_token_id=0, stopping_criteria=stopping_criteria(should_stop, len(prompt)),
                            return_dict_in_generate=True, output_logits=logprobs is not None, **lookup)
    generated = output.sequences[0, len(prompt):].tolist()
    # a draft accepted whole may run past the stop: keep what one token at a time would have kept
    new = next((generated[:n] for n in range(1, len(generated) + 1) if should_stop(generated[:n])), generated)
    if logprobs is not None:  # the raw logits: the model's own probability, before any logits processor
        logprobs.extend(torch.log_softmax(step[0].float(), -1)[token].item() for step, token in zip(output.logits, new))
    sequence = prompt + new
    crop(cache, len(sequence) - 1)
    return new, cache, sequence[: cache.get_seq_length()]
