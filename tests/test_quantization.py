"""CPU int8 weights and merged adapters: the model computes (nearly) the same function, cheaper."""

from __future__ import annotations

import pytest
import torch

from conftest import TINY_MODEL, make_adapter
from ghostframe.server.inference.engine import Limits, SpeedOptions, TorchEngine
from ghostframe.server.inference.reference_engine import ReferenceEngine
from ghostframe.server.inference.model_loading import load_model
from ghostframe.server.inference.prompt import CompletionContext
from ghostframe.server.inference.quantization import is_int8
from ghostframe.server.tools.terminal_cli import example_path


def logits(loaded, text: str) -> torch.Tensor:
    ids = loaded.tokenizer(text, return_tensors="pt").input_ids
    with torch.inference_mode():
        return loaded.model(input_ids=ids).logits[0]


@pytest.fixture(scope="module")
def float32():
    return load_model(str(TINY_MODEL), device="cpu", cpu_int8=False)


@pytest.fixture(scope="module")
def int8():
    return load_model(str(TINY_MODEL), device="cpu")


def test_cpu_int8_quantizes_every_linear_layer_and_stays_close_to_float32(float32, int8):
    assert (int8.precision, float32.precision) == ("int8", "float32")
    assert is_int8(int8.model) and not is_int8(float32.model)
    assert not any(type(m) is torch.nn.Linear for m in int8.model.modules())  # lm_head included

    text = example_path().read_text()[:600]
    exact, approx = logits(float32, text), logits(int8, text)
    cosine = torch.nn.functional.cosine_similarity(exact, approx, dim=-1)
    assert cosine.min() > 0.98, cosine.min()
    assert (exact.argmax(-1) == approx.argmax(-1)).float().mean() > 0.9  # the same greedy token
    assert not torch.equal(exact, approx)  # it really runs other kernels


def test_speed_ups_stay_exact_on_int8_weights(int8):
    plain = ReferenceEngine(int8)
    fast = TorchEngine(int8, SpeedOptions(typed_through=False))
    text = example_path().read_text().rstrip()
    for cut in range(len(text) - 6, len(text) + 1):
        ctx = CompletionContext(text[:cut], "\n")
        limits = Limits(max_new_tokens=16, max_prompt_tokens=256, multiline=True)
        assert fast.complete(ctx, limits, document="d").text == plain.complete(ctx, limits).text


def test_merged_adapter_computes_what_the_unmerged_adapter_does(float32, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    adapter = make_adapter(TINY_MODEL, tmp_path / "adapter", with_metadata=True)
    merged = load_model(str(TINY_MODEL), str(adapter), device="cpu", cpu_int8=False)
    assert not isinstance(merged.model, PeftModel)  # folded in: no LoRA matmuls per token
    unmerged = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(TINY_MODEL), str(adapter)).eval()

    text = "df = pd.read_csv('sales.csv')\ndf.groupby("
    ids = merged.tokenizer(text, return_tensors="pt").input_ids
    with torch.inference_mode():
        reference = unmerged(input_ids=ids).logits[0]
    assert torch.allclose(logits(merged, text), reference, atol=1e-4)
    assert not torch.allclose(logits(float32, text), reference, atol=1e-2)  # the adapter matters


@pytest.mark.parametrize("rows", [1, 11, 40], ids=["decode", "draft-check", "prefill"])
def test_int8_linear_matches_float32_on_both_paths(rows):
    from ghostframe.server.inference.quantization import KERNEL_MAX_ROWS, Int8WeightLinear

    torch.manual_seed(0)
    linear = torch.nn.Linear(64, 96)
    x = torch.randn(2, rows, 64)
    got, want = Int8WeightLinear(linear)(x), linear(x)
    assert got.shape == want.shape and got.dtype == want.dtype
    assert ((got - want).norm() / want.norm()) < 0.02
    if rows > KERNEL_MAX_ROWS:  # the dequantised path agrees with the int8 kernel row by row
        one_by_one = torch.cat([Int8WeightLinear(linear)(x[:, i:i + 1]) for i in range(rows)], dim=1)
        assert torch.allclose(got, one_by_one, atol=0.05)


def test_without_an_int8_kernel_the_model_runs_in_float32(monkeypatch):
    from ghostframe.server.inference import quantization

    monkeypatch.setattr(quantization, "int8_kernel_works", lambda: False)
    messages = []
    loaded = load_model(str(TINY_MODEL), device="cpu", report=messages.append)
    assert loaded.precision == "float32" and not is_int8(loaded.model)
    assert any("no int8 CPU kernel" in m for m in messages)
