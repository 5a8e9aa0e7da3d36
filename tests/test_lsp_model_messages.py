"""Loading failures say what is wrong: pickle adapters are refused as such, and a hub id that
can be neither read from the cache nor downloaded fails at once with a message that says so."""

from __future__ import annotations

import pytest

from conftest import TINY_MODEL, make_adapter
from ghostframe.server.inference.model_loading import ModelLoadError, load_model


def test_pickle_adapter_is_refused_as_not_safetensors(tmp_path):
    adapter = make_adapter(TINY_MODEL, tmp_path / "adapter", with_metadata=True)
    (adapter / "adapter_model.safetensors").unlink()
    import torch
    from safetensors.torch import load_file

    # the same kind of adapter, saved as a pickle (adapter_model.bin) as older peft versions did
    reference = make_adapter(TINY_MODEL, tmp_path / "reference", with_metadata=False)
    torch.save(load_file(str(reference / "adapter_model.safetensors")), adapter / "adapter_model.bin")
    with pytest.raises(ModelLoadError, match="only safetensors adapters are loaded") as refused:
        load_model(str(TINY_MODEL), str(adapter), device="cpu")
    assert "adapter_model.bin" in str(refused.value)


def test_hub_id_offline_is_refused_with_a_message(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelLoadError, match="HF_HUB_OFFLINE"):
        load_model("someone/not-a-cached-model", device="cpu")


def test_unreachable_hub_is_refused_with_a_message(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    with pytest.raises(ModelLoadError, match="cannot be reached"):
        load_model("someone/not-a-cached-model", device="cpu")
