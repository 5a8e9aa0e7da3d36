"""What is the llama.cpp engine's own: it serves GGUF files on the CPU, sees the torch model's base
and stop tokens in the same weights, and refuses what it cannot serve. The contract it shares with
the torch engine (answers, reuse, warming, cancellation...) is tests/test_engine_contract.py.

The models are the tiny random Llama and Qwen2 written as float32 GGUF files (conftest), so
llama.cpp and torch run the same weights and greedy decoding gives the same tokens.
"""

from __future__ import annotations

import pytest

from conftest import TINY_GGUF, TINY_GGUF_HF, TINY_QWEN2_GGUF, TINY_QWEN2_GGUF_HF
from ghostframe.server.inference.engine import Limits, SpeedOptions
from ghostframe.server.inference.engines import make_engine
from ghostframe.server.inference.llama_engine import LlamaEngine
from ghostframe.server.inference.model_loading import load_model
from ghostframe.server.inference.prompt import CompletionContext
from ghostframe.server.inference.reference_engine import ReferenceEngine

PAIRS = {"llama": (TINY_GGUF, TINY_GGUF_HF), "qwen2": (TINY_QWEN2_GGUF, TINY_QWEN2_GGUF_HF)}
CONTEXTS = [
    CompletionContext("import pandas as pd\ndf = pd.read_csv('sales.csv')\ndf.", "\nprint(df)\n"),
    CompletionContext("model = RandomForestClassifier(n_estimators=100)\nmodel.fit(X", ""),
]


@pytest.fixture(scope="module", params=sorted(PAIRS))
def pair(request):
    gguf, folder = PAIRS[request.param]
    llama = load_model(str(gguf), device="cpu", engine="llama")
    torch_model = load_model(str(folder), device="cpu", precision="float32")
    yield llama, torch_model
    llama.model.close()


def test_auto_serves_gguf_models_on_the_cpu_through_llama_cpp(pair):
    llama, torch_model = pair
    assert llama.engine == "llama.cpp" and isinstance(make_engine(llama), LlamaEngine)
    assert torch_model.engine == "torch" and "not a GGUF" in torch_model.engine_reason or torch_model.engine_reason
    auto = load_model(str(TINY_GGUF), device="cpu", engine="auto")
    try:
        assert auto.engine == "llama.cpp"
    finally:
        auto.model.close()


def test_same_weights_same_base_stop_tokens_and_greedy_answers(pair):
    """Both architectures (the contract test runs the Llama one): the same answers as torch's reference."""
    llama, torch_model = pair
    assert llama.fingerprint == torch_model.fingerprint  # the adapter check sees one base model
    assert set(llama.stop_token_ids) == set(torch_model.stop_token_ids)
    ours, reference = LlamaEngine(llama, SpeedOptions(typed_through=False)), ReferenceEngine(torch_model)
    for ctx in CONTEXTS:
        for multiline, max_new in ((False, 12), (True, 24)):
            limits = Limits(max_new_tokens=max_new, max_prompt_tokens=256, multiline=multiline)
            got, want = ours.complete(ctx, limits, document="d"), reference.complete(ctx, limits)
            assert (got.text, got.new_tokens) == (want.text, want.new_tokens), ctx.before


def test_plain_on_llama_cpp_is_the_engine_with_every_speed_up_off(pair):
    llama, _ = pair
    plain = make_engine(llama, SpeedOptions(plain=True))
    assert isinstance(plain, LlamaEngine) and not (plain.warms or plain.looks_ahead)
    limits = Limits(max_new_tokens=8, max_prompt_tokens=256, multiline=True)
    plain.complete(CONTEXTS[0], limits, document="d")
    assert plain.cached_documents() == set() and not plain.complete(CONTEXTS[0], limits, document="d").typed_through


def test_the_llama_engine_refuses_what_it_cannot_serve():
    from ghostframe.server.inference.model_loading import ModelLoadError

    with pytest.raises(ModelLoadError, match="not a GGUF file"):
        load_model(str(TINY_GGUF_HF), device="cpu", engine="llama")
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model("/nowhere/model.gguf", device="cpu", engine="llama")
