"""The torch engine's own speed-ups give the reference's greedy output (the shared ones, the reused
cache, warming and typed-through answers, are tests/test_engine_contract.py's)."""

from __future__ import annotations

import pytest

from conftest import TINY_MODEL
from ghostframe.server.inference.engine import Limits, SpeedOptions, TorchEngine
from ghostframe.server.inference.prefix_cache import PrefixCache
from ghostframe.server.inference.prompt import CompletionContext
from ghostframe.server.inference.reference_engine import ReferenceEngine
from ghostframe.server.tools.terminal_cli import example_path


@pytest.fixture(scope="module")
def loaded():
    from ghostframe.server.inference.model_loading import load_model

    return load_model(str(TINY_MODEL), device="cpu")


def typing_states(keystrokes: int = 8) -> list[CompletionContext]:
    text = example_path().read_text().rstrip()
    return [CompletionContext(text[:i], "\n") for i in range(len(text) - keystrokes, len(text) + 1)]


@pytest.mark.parametrize("options", [
    SpeedOptions(typed_through=False, prefix_cache=False),
    SpeedOptions(typed_through=False, prompt_lookup=True),
], ids=["no-cache", "prompt-lookup"])
@pytest.mark.slow
def test_fast_paths_equal_the_reference(loaded, options):
    reference = ReferenceEngine(loaded)
    fast = TorchEngine(loaded, options)
    reused = []
    for ctx in typing_states():
        for max_new in (6, 24):
            limits = Limits(max_new_tokens=max_new, max_prompt_tokens=256, multiline=True)
            want = reference.complete(ctx, limits)
            got = fast.complete(ctx, limits, document="file:///doc.py")
            assert got.text == want.text and got.new_tokens == want.new_tokens
            reused.append(got.reused_tokens)
    if options.prefix_cache:
        assert sum(r > 0 for r in reused) >= len(reused) - 1  # all but the very first request reuse
    else:
        assert not any(reused)


def test_an_unknown_document_has_no_cache():
    cache = PrefixCache(1)
    assert cache.take("x", [1, 2, 3]) == (None, 0)


def test_decoding_leaves_a_cache_that_holds_what_it_says(loaded):
    """transformers' prompt lookup re-feeds a pre-filled cache's prompt; greedy_decode must not let
    that through: with a reused cache or lookup its tokens are a fresh run's, and its cache equals a
    fresh prefill of `held`."""
    import torch
    from transformers import DynamicCache

    from ghostframe.server.inference.decoding import greedy_decode, prefill

    ids = TorchEngine(loaded).prompt_ids(typing_states()[0], 256)
    model, stop = loaded.model, (lambda new: len(new) >= 12)
    for lookup in (True, False):
        cache = DynamicCache()
        prefill(model, ids[:-3], cache)
        new, cache, held = greedy_decode(model, ids, cache, len(ids) - 3, 24, stop, prompt_lookup=lookup)
        want, _, _ = greedy_decode(model, ids, None, 0, 24, stop)  # nothing reused, no lookup
        assert new == want and held == (ids + new)[:len(held)] and cache.get_seq_length() == len(held)
        fresh = DynamicCache()
        prefill(model, held, fresh)
        for layer, fresh_layer in zip(cache.layers, fresh.layers):
            torch.testing.assert_close(layer.keys, fresh_layer.keys, atol=1e-2, rtol=1e-2)  # chunked vs whole prefill
