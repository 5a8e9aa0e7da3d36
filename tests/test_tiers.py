"""`auto` serves the largest pinned model this machine runs at typing speed, from measured rates.

The rates are injected, so the choice is tested without depending on this machine's speed.
"""

from __future__ import annotations

import pytest

from conftest import TINY_GGUF, TINY_MODEL
from ghostframe.server.inference import llama_loading, model_loading, tiers
from ghostframe.server.inference.default_model import PINNED_MODELS
from ghostframe.server.inference.model_loading import load_model
from ghostframe.server.inference.tiers import CANDIDATES, Rates, TierChoice, choose_tier, pick

FAST = Rates(prefill_ms_per_token=0.5, decode_ms_per_token=5.0)    # an 8-core laptop or a GPU-class CPU
SLOW = Rates(prefill_ms_per_token=15.0, decode_ms_per_token=90.0)  # a model too large for this machine


def rates(table: dict[str, Rates]):
    timed = []

    def measure(model: str, report=lambda _: None) -> Rates:
        timed.append(model)
        return table[model]

    return measure, timed


def test_the_estimate_follows_the_rates_and_the_targets():
    assert FAST.fits() and not SLOW.fits()
    p50, p95 = Rates(3.3, 13.5).typing_ms()
    assert p50 == pytest.approx(3.3 * tiers.KEYSTROKE_PREFILL_TOKENS + 13.5 * tiers.SUGGESTION_TOKENS) and p95 > p50


def test_the_largest_model_that_fits_is_chosen_trying_each_only_after_the_one_below_fits():
    measure, timed = rates({"smollm2-135m": FAST, "qwen2.5-coder-0.5b": FAST, "qwen2.5-coder-1.5b": SLOW})
    model, measured, why = pick(measure)
    assert model == "qwen2.5-coder-0.5b" and timed == list(CANDIDATES)
    assert "qwen2.5-coder-1.5b is over" in why and set(measured) == set(CANDIDATES)


def test_a_machine_that_runs_every_model_gets_the_largest():
    measure, _ = rates(dict.fromkeys(CANDIDATES, FAST))
    assert pick(measure)[0] == "qwen2.5-coder-1.5b"


def test_a_slow_machine_gets_the_smallest_and_downloads_nothing_larger():
    measure, timed = rates({"smollm2-135m": SLOW})
    model, _, why = pick(measure)
    assert model == "smollm2-135m" and timed == ["smollm2-135m"] and "none fits" in why


def test_a_larger_model_far_over_the_target_is_not_fetched_to_time_it():
    """The model below fits, but scaled by file size the next is far over: it is not downloaded."""
    barely = Rates(prefill_ms_per_token=1.5, decode_ms_per_token=12.0)  # p50 ~288 ms: fits, little room
    measure, timed = rates({"smollm2-135m": barely})
    model, _, why = pick(measure)
    assert model == "smollm2-135m" and timed == ["smollm2-135m"] and "slower" in why


def test_the_choice_is_cached_per_machine_and_a_busy_measurement_is_not(monkeypatch, tmp_path):
    monkeypatch.setenv("GHOSTFRAME_CACHE_DIR", str(tmp_path))
    measure, timed = rates(dict.fromkeys(CANDIDATES, FAST))
    monkeypatch.setattr(tiers, "busy", lambda: 9.0)
    busy = choose_tier(measure=measure, threads=2)
    assert busy.model == "qwen2.5-coder-1.5b" and "busy" in busy.how and not tiers.RATES.path.exists()
    monkeypatch.setattr(tiers, "busy", lambda: None)
    first = choose_tier(measure=measure, threads=2)
    assert first.how == "measured" and tiers.RATES.path.is_file()
    timed.clear()
    again = choose_tier(measure=measure, threads=2)
    assert again.how == "cached" and timed == [] and again.model == first.model and again.rates == first.rates
    monkeypatch.setattr(tiers, "cpu_name", lambda: "another CPU")  # a new machine (or a new CPU) measures again
    assert choose_tier(measure=measure, threads=2).how == "measured" and timed


def test_the_description_names_the_model_the_rates_and_the_reason():
    choice = TierChoice("smollm2-135m", "measured", {"smollm2-135m": Rates(3.3, 13.5)}, "the largest model that fits")
    text = choice.describe()
    assert text.startswith("smollm2-135m (measured: the largest model that fits")
    assert "prefill 3.3 ms/token" in text and "decode 13.5 ms/token" in text and "typing p50 ~" in text


# Fits the default targets with little room: each retuning below puts it over.
NEARLY = Rates(prefill_ms_per_token=2.6, decode_ms_per_token=8.0)


@pytest.mark.parametrize("constant, value", [("TARGET_P50_MS", 250.0), ("TARGET_P95_MS", 650.0),
                                             ("SUGGESTION_TOKENS", 20), ("COLD_BUDGET_SECONDS", 1.0)])
def test_a_retuned_target_changes_the_choice_from_the_cached_rates(monkeypatch, tmp_path, constant, value):
    """The cache keeps what was measured, not what was decided: a change to what the choice depends on
    takes effect at once, without timing any model again."""
    monkeypatch.setenv("GHOSTFRAME_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(tiers, "busy", lambda: None)
    measure, timed = rates({"smollm2-135m": FAST, "qwen2.5-coder-0.5b": NEARLY, "qwen2.5-coder-1.5b": SLOW})
    assert choose_tier(measure=measure, threads=2).model == "qwen2.5-coder-0.5b"
    timed.clear()
    monkeypatch.setattr(tiers, constant, value)
    retuned = choose_tier(measure=measure, threads=2)
    assert retuned.model == "smollm2-135m" and timed == [] and retuned.how == "cached"
    assert "qwen2.5-coder-0.5b is over" in retuned.reason


def test_both_engines_resolve_auto_once_and_keep_how_it_was_chosen(monkeypatch):
    """`auto` is asked of tiers.auto_model once per load, and the TierChoice reaches the LoadedModel
    whichever engine runs it (the torch loader used to drop it). The pinned files are swapped for the
    tests' tiny models so nothing is fetched."""
    choice = TierChoice("smollm2-135m", "cached", {"smollm2-135m": FAST}, "the largest model that fits")
    asked = []
    monkeypatch.setattr(model_loading, "auto_model",
                        lambda device, report: asked.append(device) or (PINNED_MODELS[choice.model], choice))
    monkeypatch.setattr(model_loading, "resolve_model_path", lambda model, report, device: (str(TINY_MODEL), model))
    monkeypatch.setattr(llama_loading, "gguf_file", lambda model, report: (TINY_GGUF, model))
    on_torch = load_model(None, device="cpu", engine="torch")
    assert on_torch.tier is choice and on_torch.model_name == "smollm2-135m"
    on_llama = load_model("auto", device="cpu", engine="llama")
    try:
        assert on_llama.tier is choice and on_llama.model_name == "smollm2-135m" and on_llama.engine == "llama.cpp"
    finally:
        on_llama.model.close()
    assert asked == ["cpu", "cpu"]
    assert load_model(str(TINY_MODEL), device="cpu", engine="torch").tier is None and asked == ["cpu", "cpu"]
