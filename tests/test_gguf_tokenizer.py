"""The prompt is built with the Hugging Face tokenizer made from a GGUF file, and llama.cpp is fed
those ids: they must be the ids llama.cpp's own tokenizer gives, on real code, notebooks and
text that is not ASCII. Checked on the pinned models' GGUF files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ghostframe.server.inference.default_model import PINNED_MODELS, pinned_gguf_path
from ghostframe.server.inference.gguf_files import gguf_tokenizer_and_facts
from ghostframe.server.inference.llama_runtime import LlamaRuntime, RuntimeConfig
from ghostframe.server.inference.text import CELL_SEPARATOR
from ghostframe.server.tools.terminal_cli import example_path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_CELLS = ["import pandas as pd\nimport seaborn as sns", "%matplotlib inline\ndf = pd.read_csv('ventes_été.csv')",
                  "sns.histplot(df['prix_€'], bins=30)\nplt.title('Répartition des prix — 2024')"]
TEXTS = [
    example_path().read_text(),
    (ROOT / "server" / "lsp" / "server.py").read_text(),
    (ROOT / "trainer" / "data" / "scrubbing.py").read_text(),
    CELL_SEPARATOR.join(NOTEBOOK_CELLS),
    "df['温度'] = df['気温'] * 1.8 + 32  # 摂氏→華氏 🌡️\nprint(f\"{len(df):,} rows ✓\")\n",
    "def f(x):\n\tif x:\n\t\treturn x  \n\n\n    # mixed    spacing\t\t\n" + " " * 40 + "end\n",
    json.dumps({"cells": [{"source": NOTEBOOK_CELLS}]}, ensure_ascii=False),
]


@pytest.mark.slow
@pytest.mark.default_model
@pytest.mark.parametrize("model", ["smollm2-135m", "qwen2.5-coder-0.5b"])
def test_the_hugging_face_tokenizer_gives_llama_cpps_ids(model):
    gguf = pinned_gguf_path(PINNED_MODELS[model])
    tokenizer, _ = gguf_tokenizer_and_facts(gguf)
    runtime = LlamaRuntime(RuntimeConfig(gguf, slots=1, slot_tokens=256))
    try:
        for text in TEXTS:
            ours = tokenizer(text, add_special_tokens=False)["input_ids"]
            assert ours == runtime.tokenize(text), text[:60]
    finally:
        runtime.close()
