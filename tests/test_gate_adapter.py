"""An adapter its training run's gate did not approve is kept but not served, unless forced."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import TINY_MODEL, make_adapter
from ghostframe.server.inference.model_loading import ModelLoadError, load_model


@pytest.fixture(scope="module")
def adapter(tmp_path_factory):
    return make_adapter(TINY_MODEL, tmp_path_factory.mktemp("adapter"), with_metadata=True)


def _mark(adapter, verdict: str) -> None:
    meta_path = adapter / "ghostframe.json"
    meta = json.loads(meta_path.read_text())
    meta["gate"] = {"verdict": verdict, "reason": "test"}
    meta_path.write_text(json.dumps(meta))


@pytest.mark.parametrize("verdict", ["no better", "worse", "too few"])
def test_a_marked_adapter_is_refused_and_forcing_loads_it(adapter, verdict):
    _mark(adapter, verdict)
    with pytest.raises(ModelLoadError, match="--force-adapter") as refused:
        load_model(str(TINY_MODEL), str(adapter), device="cpu", precision="float32")
    assert repr(verdict) in str(refused.value)
    forced = load_model(str(TINY_MODEL), str(adapter), device="cpu", precision="float32", force_adapter=True)
    assert forced.adapter


def test_an_approved_adapter_loads(adapter):
    _mark(adapter, "use it")
    assert load_model(str(TINY_MODEL), str(adapter), device="cpu", precision="float32").adapter


def test_the_server_command_refuses_a_marked_adapter_unless_told(adapter):
    _mark(adapter, "no better")
    probe = ("import sys; from ghostframe.server.inference.model_options import ModelOptions, add_model_arguments;"
             "import argparse; p = argparse.ArgumentParser(); add_model_arguments(p);"
             "print(ModelOptions.from_args(p.parse_args(sys.argv[1:])).force_adapter)")
    assert subprocess.run([sys.executable, "-c", probe, "--force-adapter"], capture_output=True,
                          text=True).stdout.strip() == "True"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout.strip() == "False"
