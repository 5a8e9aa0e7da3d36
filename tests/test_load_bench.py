"""`ghostframe bench load`: N typists, each through a ghostframe server of its own with --engine remote, against
one real llama-server (--parallel N), on the tiny GGUF and a short timeline."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

from conftest import TINY_QWEN2_GGUF
from test_replay_bench import write_short_sources
from ghostframe.server.tools.load_bench import typist_counts


def test_typist_counts_are_read_and_bad_ones_refused():
    assert typist_counts("1,4,16") == [1, 4, 16]
    for bad in ("", "0", "4,x", "1000"):
        with pytest.raises(argparse.ArgumentTypeError):
            typist_counts(bad)


@pytest.mark.slow
def test_several_typists_type_at_once_against_one_server(tmp_path):
    paths = write_short_sources(tmp_path)
    report_path = tmp_path / "load.json"
    done = subprocess.run(
        [sys.executable, "-m", "ghostframe.server.tools.terminal_cli", "bench", "load", *map(str, paths),
         "--model", str(TINY_QWEN2_GGUF), "--typists", "1,2", "--places", "1", "--lines-per-place", "1",
         "--speedup", "10", "--max-new-tokens", "8", "--server-threads", "1", "--json", str(report_path)],
        capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(report_path.read_text())
    assert [row["typists"] for row in report["rows"]] == [1, 2]
    for row in report["rows"]:
        assert row["requests"] == row["answered"] + row["superseded"] and row["answered"] >= row["typists"]
        assert row["p95_ms"] >= row["p50_ms"] > 0 and 0 <= row["chars_saved_pct"] <= 100
        assert row["errors"] == 0 and row["errors_by_state"] == {}
    one, two = report["rows"]
    assert two["requests"] > one["requests"]  # two people typed
    assert "ghostframe bench load" in done.stdout and "typists" in done.stdout
