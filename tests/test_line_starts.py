"""No silent line starts: where the model ranks a line break (or an end) first at a line start, the
suggestion is the likeliest line of code instead of nothing, on both engines and the reference alike.

The model here is the tiny random one with the embeddings of its line-break tokens made large: a
prompt that ends in a line break (every line start does) then ranks a line break first, as small
real models often do (BENCHMARKS.md, "Line starts").
"""

from __future__ import annotations

import pytest

from ghostframe.server.inference import engine as engine_module
from ghostframe.server.inference.engine import Limits, SpeedOptions
from ghostframe.server.inference.engines import make_engine
from ghostframe.server.inference.line_start import at_line_start, opens_code
from ghostframe.server.inference.model_loading import load_model
from ghostframe.server.inference.prompt import CompletionContext
from ghostframe.server.inference.reference_engine import ReferenceEngine
from ghostframe.server.testing import random_gguf
from ghostframe.server.testing.random_gguf import build_random_gguf
from ghostframe.server.testing.random_model import build_random_model

LINE_STARTS = [
    CompletionContext("import numpy as np\nx = np.arange(3)\n", "\nprint(x)\n"),  # at the left margin
    CompletionContext("def f(x):\n    ", "\n    return x\n"),  # indented: the healed space must open it
]


def _favour_line_breaks(folder):
    """Scale up the (tied) embeddings of every token that begins with a line break, in place."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    breaks = [i for i in range(len(tokenizer)) if tokenizer.decode([i]).startswith("\n")]
    with torch.no_grad():
        model.get_input_embeddings().weight[breaks] *= 20
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module", params=["torch", "llama.cpp"])
def subject(request, tmp_path_factory):
    """(fast engine builder, reference engine) for each engine, on the line-break-loving weights."""
    root = tmp_path_factory.mktemp("line-breaks")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(random_gguf, "build_random_model",
                      lambda path, **kw: _favour_line_breaks(build_random_model(path, **kw)))
        gguf, folder = build_random_gguf(root / "gguf")
    torch_loaded = load_model(str(folder), device="cpu", precision="float32")
    reference = ReferenceEngine(torch_loaded)
    if request.param == "torch":
        yield (lambda options=SpeedOptions(): make_engine(torch_loaded, options)), reference
        return
    loaded = load_model(str(gguf), device="cpu", engine="llama")
    engines = []

    def fresh(options=SpeedOptions()):
        for slot in range(loaded.model.config.slots):
            loaded.model.erase(slot)
        engines.append(make_engine(loaded, options))
        return engines[-1]

    yield fresh, reference
    loaded.model.close()


@pytest.mark.parametrize("multiline", [False, True])
def test_a_line_start_gets_the_likeliest_line_of_code_not_nothing(subject, multiline, monkeypatch):
    build, reference = subject
    limits = Limits(max_new_tokens=8, max_prompt_tokens=256, multiline=multiline)
    for ctx in LINE_STARTS:
        got = build().complete(ctx, limits, document="doc")
        want = reference.complete(ctx, limits)
        assert got.text.strip() and got.text == want.text, (ctx.before, got.text, want.text)
        assert not got.text.startswith((" ", "\n"))
    with monkeypatch.context() as patch:  # without the rule, as before: the model's line break leaves it empty
        patch.setattr(engine_module, "at_line_start", lambda ctx: False)
        assert [build().complete(ctx, limits, document="doc").text for ctx in LINE_STARTS] == ["", ""]


def test_the_rule_holds_with_every_speed_up_off_and_with_a_warm_document(subject):
    build, reference = subject
    limits = Limits(max_new_tokens=8, max_prompt_tokens=256, multiline=False)
    plain, warm = build(engine_module.NO_SPEEDUPS), build()
    for ctx in LINE_STARTS:
        want = reference.complete(ctx, limits).text
        warm.complete(CompletionContext(ctx.before[:-2], ""), limits, document="doc")  # the prefix cached
        assert plain.complete(ctx, limits).text == warm.complete(ctx, limits, document="doc").text == want != ""


def test_what_counts_as_a_line_start_and_as_code():
    assert at_line_start(CompletionContext("x = 1\n    ", "\ny = 2"))
    assert not at_line_start(CompletionContext("x = 1\n    y", "\n"))  # code before the cursor on its line
    assert not at_line_start(CompletionContext("x = 1\n    ", "y\n"))  # code after it
    assert opens_code(" return", " ") and opens_code("x", "") and opens_code("  x", " ")
    assert not opens_code("\n", "") and not opens_code("\n   ", " ") and not opens_code(" \n", "")
    assert not opens_code(" ", " ") and not opens_code("", "") and not opens_code("x", " ")  # the healed space missing
