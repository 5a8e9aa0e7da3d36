"""The llama.cpp engine keeps the engine contract: the torch engine's answers, per-document KV reuse,
warming, forgetting, typed-through answers, cancellation within one token, the same stop tokens.

The models are the tiny random Llama and Qwen2 written as float32 GGUF files (conftest), so
llama.cpp and torch run the same weights and greedy decoding gives the same tokens.
"""

from __future__ import annotations

import threading

import pytest

from conftest import TINY_GGUF, TINY_GGUF_HF, TINY_QWEN2_GGUF, TINY_QWEN2_GGUF_HF
from ghostframe.server.inference.engine import SpeedOptions, TorchEngine, make_engine
from ghostframe.server.inference.llama_engine import LlamaEngine
from ghostframe.server.inference.model_loading import load_model
from ghostframe.server.inference.prompt import CompletionContext
from ghostframe.server.tools.terminal_cli import example_path

PAIRS = {"llama": (TINY_GGUF, TINY_GGUF_HF), "qwen2": (TINY_QWEN2_GGUF, TINY_QWEN2_GGUF_HF)}
CONTEXTS = [
    CompletionContext("import pandas as pd\ndf = pd.read_csv('sales.csv')\ndf.", "\nprint(df)\n"),
    CompletionContext("def load_data(path):\n    ", "\n\nX = load_data('x.csv')\n"),
    CompletionContext("X_train, X_test, y_train, y_test = train_test_split(", ")\n"),
    CompletionContext("model = RandomForestClassifier(n_estimators=100)\nmodel.fit(X", ""),
]


@pytest.fixture(scope="module", params=sorted(PAIRS))
def pair(request):
    gguf, folder = PAIRS[request.param]
    llama = load_model(str(gguf), device="cpu", engine="llama")
    torch_model = load_model(str(folder), device="cpu", precision="float32")
    yield llama, torch_model
    llama.model.close()


def engines(pair, options=SpeedOptions(typed_through=False)):
    llama, torch_model = pair
    return LlamaEngine(llama, options), TorchEngine(torch_model, SpeedOptions(plain=True))


def test_auto_serves_gguf_models_on_the_cpu_through_llama_cpp(pair):
    llama, torch_model = pair
    assert llama.engine == "llama.cpp" and isinstance(make_engine(llama), LlamaEngine)
    assert torch_model.engine == "torch" and "not a GGUF" in torch_model.engine_reason or torch_model.engine_reason
    auto = load_model(str(TINY_GGUF), device="cpu", engine="auto")
    try:
        assert auto.engine == "llama.cpp"
    finally:
        auto.model.close()


def test_same_weights_same_greedy_answers_and_stop_tokens(pair):
    llama, torch_model = pair
    ours, reference = engines(pair)
    assert llama.fingerprint == torch_model.fingerprint  # the adapter check sees one base model
    assert set(llama.stop_token_ids) == set(torch_model.stop_token_ids)
    for ctx in CONTEXTS:
        for multiline, max_new in ((False, 12), (True, 24)):
            got, want = ours.complete(ctx, max_new, 256, multiline), reference.complete(ctx, max_new, 256, multiline)
            assert (got.text, got.new_tokens) == (want.text, want.new_tokens), ctx.before


def typing_states(keystrokes: int = 6) -> list[CompletionContext]:
    text = example_path().read_text().rstrip()
    return [CompletionContext(text[:i], "\n") for i in range(len(text) - keystrokes, len(text) + 1)]


def test_each_document_keeps_its_prefix_across_keystrokes_and_other_documents(pair):
    ours, reference = engines(pair)
    reused = []
    for ctx in typing_states():
        got = ours.complete(ctx, 8, 512, True, document="a")
        ours.complete(CompletionContext("other = 1\n" + ctx.before[-40:], ""), 4, 512, True, document="b")
        want = reference.complete(ctx, 8, 512, True)
        assert got.text == want.text
        reused.append(got.reused_tokens)
    assert reused[0] == 0 and all(r >= len(ours.prompt_ids(typing_states()[0], 512)) - 8 for r in reused[1:])


def test_warming_fills_the_cache_a_request_then_reuses(pair):
    ours, reference = engines(pair)
    ctx = typing_states()[-1]
    ids = ours.prompt_ids(ctx, 512)
    steps = []
    while not (step := ours.warm_step("doc", ids, 64)).done:
        steps.append(step)
    assert steps and all(s.computed > 0 for s in steps) and step.cached == len(ids) - 1
    assert ours.warm_step("doc", ids, 64).computed == 0  # nothing left to do
    done = ours.complete(ctx, 8, 512, True, document="doc")
    assert done.reused_tokens >= len(ids) - 1 and done.text == reference.complete(ctx, 8, 512, True).text


def test_forget_frees_the_documents_slot_and_bounds_hold(pair):
    llama, _ = pair
    ours = LlamaEngine(llama, SpeedOptions(typed_through=False), max_cached_documents=2)
    for name in ("a", "b", "c"):
        ours.complete(CompletionContext(f"{name} = df.", ""), 4, 256, True, document=name)
    assert ours.cached_documents() == {"b", "c"}  # the least recently used gave its slot up
    ours.forget("c")
    assert ours.cached_documents() == {"b"}
    again = ours.complete(CompletionContext("c = df.", ""), 4, 256, True, document="c")
    assert again.reused_tokens == 0


def test_typed_through_answers_without_the_model(pair):
    llama, _ = pair
    ours = LlamaEngine(llama)
    ctx = CompletionContext("score = model.score(", "")
    first = ours.complete(ctx, 12, 256, False, document="d")
    assert len(first.text) > 2 and first.new_tokens > 0
    again = ours.complete(CompletionContext(ctx.before + first.text[:2], ""), 12, 256, False, document="d")
    assert again.typed_through and again.new_tokens == 0 and again.text == first.text[2:]


class _CancelAfter(LlamaEngine):
    """Sets the request's cancel event (a newer keystroke) once the stop rule has seen `after` new tokens."""

    after = 5

    def _generate(self, ids, max_new_tokens, should_stop, document, cancel):
        def cancelling(new, text=None):
            if len(new) >= self.after:
                cancel.set()
            return should_stop(new, text)

        return super()._generate(ids, max_new_tokens, cancelling, document, cancel)


def test_cancel_stops_within_one_token_and_keeps_the_shared_prefix(pair):
    llama, _ = pair
    ours = _CancelAfter(llama, SpeedOptions(typed_through=False, predict_cap=None))
    cancel = threading.Event()
    ctx = CompletionContext("model = RandomForestClassifier(n_estimators=100)\nmodel.fit(X", "")
    stopped = ours.complete(ctx, 200, 256, True, cancel=cancel, document="d")
    assert stopped.cancelled and stopped.text == "" and stopped.new_tokens <= ours.after + 1
    ours.after = 10_000  # never again
    ids = ours.prompt_ids(ctx, 256)
    later = ours.complete(ctx, 8, 256, True, document="d")
    assert not later.cancelled and later.text and later.reused_tokens >= len(ids) - 1


def test_a_cancelled_prefill_stops_early_and_the_next_request_is_answered(pair):
    llama, reference_model = pair
    ours = LlamaEngine(llama, SpeedOptions(typed_through=False))
    cancel = threading.Event()
    cancel.set()  # the user typed on before the request started
    ctx = typing_states()[-1]
    assert ours.complete(ctx, 8, 512, True, cancel=cancel, document="d").cancelled
    assert ours.complete(ctx, 8, 512, True, document="d").text == \
        TorchEngine(reference_model, SpeedOptions(plain=True)).complete(ctx, 8, 512, True).text


def test_the_llama_engine_refuses_what_it_cannot_serve():
    from ghostframe.server.inference.model_loading import ModelLoadError

    with pytest.raises(ModelLoadError, match="not a GGUF file"):
        load_model(str(TINY_GGUF_HF), device="cpu", engine="llama")
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model("/nowhere/model.gguf", device="cpu", engine="llama")
