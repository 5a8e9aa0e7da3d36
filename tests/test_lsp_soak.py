"""`ghostframe bench soak` runs end to end on the tiny model: two whole cycles (a fixed amount of work,
whatever the machine's speed) serve requests over files and a notebook without errors and report memory
with nothing left held."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import TINY_MODEL

pytestmark = pytest.mark.slow  # a benchmark run end to end


def test_short_soak_on_the_tiny_model(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "prep.py").write_text("import pandas as pd\n\ndf = pd.read_csv('a.csv')\ndf = df.dropna()\n"
                                    "totals = df.groupby('region')['amount'].sum()\n")
    (corpus / "plot.py").write_text("import matplotlib.pyplot as plt\n\nfig, ax = plt.subplots()\n"
                                    "ax.plot([1, 2, 3], [4, 5, 6])\nplt.savefig('out.png')\n")
    report_path = tmp_path / "soak.json"
    run = subprocess.run([sys.executable, "-m", "ghostframe.server.tools.terminal_cli", "bench", "soak",
                          "--cycles", "2", "--files-per-cycle", "1", "--minutes", "60", "--window-minutes", "60",
                          "--model", str(TINY_MODEL), "--corpus", str(corpus), "--max-new-tokens", "4",
                          "--json", str(report_path)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    report = json.loads(report_path.read_text())
    # each cycle's notebook cancels one request, and the first cycle sets the memory baseline
    assert report["cycles"] == 2 and report["errors"] == 0 and report["cancelled"] >= 2 and report["requests"] > 0
    assert report["held_at_end"]["documents"] == 0 and report["held_at_end"]["engineDocuments"] == []
    assert report["rss_start_mb"] > 0 and report["rss_baseline_mb"] > 0 and report["rss_end_mb"] > 0
    assert report["verdict"] == "flat"
    assert [w["requests"] for w in report["windows"]] == [report["requests"]] and report["windows"][0]["p50_ms"] > 0
    assert "requests served" in run.stdout and "verdict: flat" in run.stdout
