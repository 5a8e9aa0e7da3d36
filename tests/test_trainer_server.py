"""The language server serves a ghostframe-train adapter, and refuses one made for another base model."""

from __future__ import annotations

from pathlib import Path

import pytest

from ghostframe.server.tools import lsp_client
from ghostframe.trainer.cli import main
from trainer_fixtures import build_tiny_model, make_repo

pytestmark = pytest.mark.slow  # a training run, then the server on its adapter

@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("served")
    tiny = build_tiny_model(root / "tiny")
    repo = make_repo(root / "repo", files=12)
    out = root / "adapter"
    assert main([str(repo), "--output", str(out), "--model", str(tiny), "--context-length", "64",
                 "--batch-size", "4", "--max-steps", "4", "--lr", "1e-2", "--quiet", "--no-gate"]) == 0
    return tiny, out


DOCUMENT = "import pandas as pd\ndf = pd.read_csv('sales.csv')\ndf = df."


async def _status_and_completion(server_args: list[str], tmp_path: Path, ask: bool) -> tuple[dict, str | None]:
    client = lsp_client.EditorClient(verbose=False)
    await client.start(server_args, settings={"showFilter": False})  # the tiny model is never sure: see conftest
    try:
        await client.wait_ready(timeout=120)
        status = dict(client.status)
        text = None
        if ask and status.get("state") == "ready":
            uri = (tmp_path / "analysis.py").as_uri()
            client.open(uri, DOCUMENT)
            text, _seconds = await client.inline(uri, 2, len("df = df."))
        return status, text
    finally:
        await client.close()


async def test_server_answers_an_inline_completion_with_the_adapter(trained, tmp_path):
    tiny, adapter = trained
    status, text = await _status_and_completion(
        ["--model", str(tiny), "--adapter", str(adapter), "--device", "cpu"], tmp_path, ask=True)
    assert status["state"] == "ready", status
    assert Path(status["adapter"]) == adapter.resolve()
    # The server's answer is the trained model's: the same engine in this process, base + adapter.
    from ghostframe.server.inference.engine import Limits, TorchEngine
    from ghostframe.server.inference.model_loading import load_model
    from ghostframe.server.inference.prompt import CompletionContext
    from ghostframe.server.lsp.settings import Settings

    settings = Settings()
    engine = TorchEngine(load_model(str(tiny), str(adapter), device="cpu"))
    expected = engine.complete(CompletionContext(DOCUMENT, ""), Limits(
        max_new_tokens=settings.max_new_tokens, max_prompt_tokens=settings.max_prompt_tokens,
        multiline=settings.multiline)).text
    assert text == expected


async def test_server_refuses_an_adapter_for_another_base_model(trained, tmp_path):
    _tiny, adapter = trained
    other = build_tiny_model(tmp_path / "other", seed=1)
    status, _ = await _status_and_completion(
        ["--model", str(other), "--adapter", str(adapter), "--device", "cpu"], tmp_path, ask=False)
    assert status["state"] == "error"
    assert "was trained for base model" in status["error"]
