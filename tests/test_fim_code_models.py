"""The code-model family (Qwen2 with FIM tokens): fill-in-the-middle prompts, the model's own
end tokens stop a suggestion, and no special token's text ever reaches the editor."""

from __future__ import annotations

import pytest
import torch

from ghostframe.server.inference.engine import Limits, SpeedOptions, TorchEngine
from ghostframe.server.inference.engines import make_engine
from ghostframe.server.inference.reference_engine import ReferenceEngine
from ghostframe.server.inference.model_loading import load_model
from ghostframe.server.inference.prompt import CompletionContext, build_prompt
from ghostframe.server.testing.random_model import QWEN2_SPECIAL_TOKENS, build_random_model

BEFORE = "import pandas as pd\ndf = pd.read_csv('data.csv')\ntotal = df["
AFTER = "]\nprint(total)\n"


@pytest.fixture(scope="module")
def qwen2(tmp_path_factory):
    return build_random_model(tmp_path_factory.mktemp("qwen2"), shape="tiny-qwen2")


@pytest.fixture(scope="module")
def loaded(qwen2):
    return load_model(str(qwen2), device="cpu", precision="float32")


def test_fim_prompt_is_prefix_suffix_middle_with_the_cursor_line_opening_the_middle(loaded):
    tok = loaded.tokenizer
    ids = build_prompt(CompletionContext(BEFORE, AFTER), tok, 256)
    p, s, m = tok.convert_tokens_to_ids(["<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"])
    assert ids[0] == p and ids.count(s) == 1 and ids.count(m) == 1
    split, middle = ids.index(s), ids.index(m)
    line_start = BEFORE.rindex("\n") + 1
    assert tok.decode(ids[1:split]) == BEFORE[:line_start]
    assert tok.decode(ids[split + 1:middle]) == AFTER
    assert tok.decode(ids[middle + 1:]) == BEFORE[line_start:]
    assert "<|im_start|>" not in tok.decode(ids)  # raw completion: no chat template


def test_typing_on_a_line_only_appends_to_a_fim_prompt(loaded):
    """The prefix and the suffix stay token for token, so their KV cache is reused while typing."""
    tok = loaded.tokenizer
    before = build_prompt(CompletionContext(BEFORE, AFTER), tok, 256)
    typed = build_prompt(CompletionContext(BEFORE + "x_", AFTER), tok, 256)
    keep = before.index(tok.convert_tokens_to_ids("<|fim_middle|>")) + 1
    assert typed[:keep] == before[:keep] and len(typed) > len(before)


def test_every_special_token_of_the_code_model_stops_generation(loaded):
    tok = loaded.tokenizer
    for name in QWEN2_SPECIAL_TOKENS:
        assert tok.convert_tokens_to_ids(name) in loaded.stop_token_ids, name


def _force_chain(model, chain: dict[int, int], otherwise: int) -> None:
    """Make the model's greedy next token a function of the current one: chain[t], else `otherwise`.

    It edits the logits of whatever positions a forward pass returns, so plain `generate`,
    prefill with last-position logits, and draft verification all see the same rule.
    """
    original = model.forward

    def forward(*args, **kwargs):
        out = original(*args, **kwargs)
        ids = kwargs["input_ids"] if "input_ids" in kwargs else args[0]
        last = ids[:, -out.logits.shape[1]:]
        target = torch.full_like(last, otherwise)
        for current, following in chain.items():
            target[last == current] = following
        out.logits.scatter_add_(-1, target[..., None], torch.full_like(target[..., None], 1e4, dtype=out.logits.dtype))
        return out

    model.forward = forward


@pytest.mark.parametrize("name", ["<|fim_pad|>", "<|file_sep|>", "<|endoftext|>", "<|fim_prefix|>"])
@pytest.mark.parametrize("plain", [True, False])
def test_a_special_token_ends_the_suggestion_and_its_text_never_shows(qwen2, name, plain):
    loaded = load_model(str(qwen2), device="cpu", precision="float32")
    tok = loaded.tokenizer
    first, second = tok(" price", add_special_tokens=False)["input_ids"][0], tok(" sum", add_special_tokens=False)["input_ids"][0]
    _force_chain(loaded.model, {first: second, second: tok.convert_tokens_to_ids(name)}, otherwise=first)
    engine = make_engine(loaded, SpeedOptions(plain=plain, typed_through=False, warm=False))
    done = engine.complete(CompletionContext(BEFORE, AFTER), Limits(max_new_tokens=12, max_prompt_tokens=256,
                                                                     multiline=False), document="a")
    assert done.text == tok.decode([first, second]).rstrip()  # the special token ended it, unseen
    assert done.new_tokens <= 3


def _suppress(model, token_ids: list[int]) -> None:
    """Keep a random model from ending at once on a special token, the same way on every path."""
    original = model.forward

    def forward(*args, **kwargs):
        out = original(*args, **kwargs)
        out.logits[..., token_ids] -= 1e4
        return out

    model.forward = forward


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["float32", "int8"])
def test_fast_path_equals_plain_generate_on_the_code_model_with_fim(qwen2, precision):
    loaded = load_model(str(qwen2), device="cpu", precision=precision)
    _suppress(loaded.model, loaded.stop_token_ids)
    plain = ReferenceEngine(loaded)
    fast = TorchEngine(loaded, SpeedOptions(typed_through=False, warm=False))
    text = BEFORE + "price"
    produced, reused = 0, 0
    for cut in range(len(text) - 6, len(text) + 1):
        ctx = CompletionContext(text[:cut], AFTER)
        for max_new in (4, 16):
            limits = Limits(max_new_tokens=max_new, max_prompt_tokens=256, multiline=True)
            want = plain.complete(ctx, limits)
            got = fast.complete(ctx, limits, document="file:///doc.py")
            assert (got.text, got.new_tokens) == (want.text, want.new_tokens)
            produced += want.new_tokens
            reused += got.reused_tokens > 0
    assert produced > 0  # the comparison is about real generated tokens
    assert reused >= 10  # and the KV prefix cache (FIM prompt: prefix first) was actually reused
