"""Precision per CPU: asked for, measured once and cached per model and CPU, reported with the CPU's flags."""

from __future__ import annotations

import argparse
import json

import pytest
import torch

from conftest import TINY_MODEL
from ghostframe.server.inference import machine, precision
from ghostframe.server.inference.model_loading import load_model
from ghostframe.server.inference.model_options import ModelOptions, add_model_arguments
from ghostframe.server.inference.quantization import Int8WeightLinear, is_int8, wide_dtype
from ghostframe.server.lsp.settings import Settings, parse_settings


def output(loaded) -> torch.Tensor:
    with torch.inference_mode():
        return loaded.model(input_ids=torch.arange(3, 40)[None]).logits[0]


@pytest.mark.parametrize("asked", ["int8", "float32", "bfloat16"])
def test_the_asked_precision_is_what_runs(asked):
    loaded = load_model(str(TINY_MODEL), device="cpu", precision=asked)
    assert loaded.precision == asked and loaded.precision_choice.how == "asked"
    assert is_int8(loaded.model) == (asked == "int8")
    assert output(loaded).dtype == (torch.bfloat16 if asked == "bfloat16" else torch.float32)


def test_int8_prefills_in_float32_without_native_bf16(monkeypatch):
    monkeypatch.setattr(machine, "cpu_flags", lambda: ("AVX2",))
    assert precision.default_prefill() == "float32"
    loaded = load_model(str(TINY_MODEL), device="cpu", precision="int8")
    assert wide_dtype(loaded.model) == torch.float32 and loaded.precision_choice.prefill == "float32"
    monkeypatch.setattr(machine, "cpu_flags", lambda: ("AVX2", "AVX-512", "AVX512-BF16"))
    assert precision.default_prefill() == "bfloat16"


def test_auto_keeps_int8_for_models_too_small_to_time():
    loaded = load_model(str(TINY_MODEL), device="cpu")
    assert loaded.precision == "int8" and loaded.precision_choice.how == "default"


def test_no_cpu_int8_still_means_float32():
    assert load_model(str(TINY_MODEL), device="cpu", cpu_int8=False).precision == "float32"
    parser = argparse.ArgumentParser()
    add_model_arguments(parser)
    options = ModelOptions.from_args(parser.parse_args(["--no-cpu-int8"]))
    assert options.cpu_precision == "float32" and options.server_args()[-2:] == ["--precision", "float32"]
    assert ModelOptions.from_args(parser.parse_args(["--precision", "bfloat16"])).cpu_precision == "bfloat16"
    assert "--precision" not in ModelOptions().server_args()


@pytest.mark.parametrize("winner", ["float32", "int8"])
def test_measuring_keeps_the_fastest_and_leaves_the_model_consistent(monkeypatch, winner):
    reference = load_model(str(TINY_MODEL), device="cpu", precision="float32")
    loaded = load_model(str(TINY_MODEL), device="cpu", precision="float32")
    monkeypatch.setattr(machine, "cpu_flags", lambda: ("AVX2",))

    def fake_timing(model):
        name = "int8" if is_int8(model) else "float32"
        return {"prefill_ms_per_token": 1.0, "decode_ms": 1.0, "request_ms": 1.0 if name == winner else 2.0}

    monkeypatch.setattr(precision, "time_model", fake_timing)
    model, choice = precision.measure(loaded.model)
    assert (choice.precision, choice.how, set(choice.timings)) == (winner, "measured", {"float32", "int8"})
    assert is_int8(model) == (winner == "int8")
    if winner == "float32":  # the original layers are back: exactly the float32 model
        assert torch.equal(output(loaded), output(reference))
    assert winner in choice.describe() and "ms per typical request" in choice.describe()


def test_the_measured_choice_is_cached_per_model_and_cpu(monkeypatch, tmp_path):
    monkeypatch.setenv("GHOSTFRAME_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(precision, "MIN_PARAMETERS_TO_MEASURE", 0)
    monkeypatch.setattr(precision, "busy", lambda: None)  # a quiet machine
    timed = []
    real = precision.time_model
    monkeypatch.setattr(precision, "time_model", lambda model: timed.append(1) or real(model, 16, 2, 1))
    first = load_model(str(TINY_MODEL), device="cpu")
    assert first.precision_choice.how == "measured" and timed
    entries = json.loads(precision.CHOICES.path.read_text())
    (entry,) = entries.values()
    assert entry["precision"] == first.precision and entry["cpu"] == machine.cpu_name()
    timed.clear()
    second = load_model(str(TINY_MODEL), device="cpu")
    assert second.precision_choice.how == "cached" and not timed and second.precision == first.precision
    assert is_int8(second.model) == (second.precision == "int8")


def test_time_model_reports_prefill_and_decode():
    loaded = load_model(str(TINY_MODEL), device="cpu", precision="float32")
    timing = precision.time_model(loaded.model, prefill_tokens=16, decode_steps=2, repeats=1)
    assert timing["prefill_ms_per_token"] > 0 and timing["decode_ms"] > 0
    assert timing["request_ms"] == pytest.approx(timing["prefill_ms_per_token"] * precision.PREFILL_TOKENS_PER_REQUEST
                                                 + timing["decode_ms"] * precision.DECODE_STEPS_PER_REQUEST, abs=0.2)


def test_int8_float32_prefill_matches_the_int8_kernel_row_by_row():
    torch.manual_seed(0)
    layer = Int8WeightLinear(torch.nn.Linear(64, 96), torch.float32)
    x = torch.randn(40, 64)
    one_by_one = torch.cat([layer(x[i:i + 1]) for i in range(40)])  # the kernel, bf16 activations
    assert torch.allclose(layer(x), one_by_one, atol=0.05)


def test_cpu_flags_come_from_cpuinfo(monkeypatch):
    machine.cpu_flags.cache_clear()
    monkeypatch.setattr(machine, "_cpuinfo", lambda: [
        "model name\t: Intel(R) Xeon(R) Platinum 8480+", "flags\t\t: fpu sse avx2 avx512f avx512_bf16 amx_bf16 amx_tile"])
    try:
        assert machine.cpu_flags() == ("AVX2", "AVX-512", "AVX512-BF16", "AMX-BF16")
        assert machine.native_bf16() and "AMX-BF16" in machine.cpu_description()
        assert machine.cpu_name() == "Intel(R) Xeon(R) Platinum 8480+"
    finally:
        machine.cpu_flags.cache_clear()


def test_precision_setting_and_the_older_cpu_int8_setting():
    assert parse_settings({"precision": "float32"})[0].precision == "float32"
    assert parse_settings({"cpuInt8": False}) == (Settings(precision="float32"), [])
    assert parse_settings({"cpuInt8": True, "precision": "bfloat16"})[0].precision == "bfloat16"
    settings, problems = parse_settings({"precision": "fp8"})
    assert settings.precision == "auto" and "precision" in problems[0]


def test_a_choice_measured_on_a_busy_cpu_is_not_cached(monkeypatch, tmp_path):
    monkeypatch.setenv("GHOSTFRAME_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(precision, "MIN_PARAMETERS_TO_MEASURE", 0)
    monkeypatch.setattr(precision, "busy", lambda: 11.0)
    real = precision.time_model
    monkeypatch.setattr(precision, "time_model", lambda model: real(model, 16, 2, 1))
    loaded = load_model(str(TINY_MODEL), device="cpu")
    assert "busy" in loaded.precision_choice.how and not precision.CHOICES.path.exists()
