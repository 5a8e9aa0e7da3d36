"""`ghostframe bench latency` runs end to end and reports every path on the same prompts."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import TINY_MODEL


def test_latency_bench_reports_each_path_against_plain_generate(tmp_path):
    report_path = tmp_path / "latency.json"
    done = subprocess.run(
        [sys.executable, "-m", "ghostframe.server.terminal_cli", "bench", "latency", "--model", str(TINY_MODEL),
         "--device", "cpu", "--keystrokes", "4", "--max-new-tokens", "8", "--json", str(report_path)],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "plain model.generate" in done.stdout and "int8 weights" in done.stdout
    report = json.loads(report_path.read_text())
    assert report["device"] == "cpu" and report["precision"] == "int8" and report["keystrokes"] == 4
    assert report["environment"]["cuda"] is None and report["environment"]["cpu_count"] >= 1
    for path in ("ghostframe_server", "plain_generate", "engine_plain", "engine_cache_lookup",
                 "engine_cache_lookup_int8", "engine_fast"):
        assert report[path]["n"] == 4 and report[path]["p95_ms"] >= report[path]["p50_ms"] >= 0, path
    # the reference runs to max_new_tokens; the engine stops where a suggestion ends
    assert report["plain_generate"]["new_tokens_mean"] >= report["engine_plain"]["new_tokens_mean"]
