"""`ghostframe bench latency` runs end to end and reports every path on the same prompts."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import TINY_MODEL
from ghostframe.server.inference.machine import cpu_flags, native_bf16

pytestmark = pytest.mark.slow  # a benchmark run end to end


def test_latency_bench_reports_each_path_against_plain_generate(tmp_path):
    report_path = tmp_path / "latency.json"
    done = subprocess.run(
        [sys.executable, "-m", "ghostframe.server.tools.terminal_cli", "bench", "latency", "--model", str(TINY_MODEL),
         "--device", "cpu", "--keystrokes", "4", "--max-new-tokens", "8", "--pause-after-open", "0.5",
         "--json", str(report_path)],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "plain model.generate" in done.stdout and "int8 weights" in done.stdout
    report = json.loads(report_path.read_text())
    assert report["device"] == "cpu" and report["precision"] == "int8" and report["keystrokes"] == 4
    assert report["environment"]["cuda"] is None and report["environment"]["cpu_count"] >= 1
    assert report["environment"]["cpu_flags"] == list(cpu_flags()) and "int8" in report["precision_choice"]
    for flag in cpu_flags():
        assert flag in done.stdout  # the CPU's flags are printed next to the numbers
    precision_rows = ["engine_cache_int8", "engine_cache_bfloat16",
                      "engine_cache_int8_prefill_" + ("float32" if native_bf16() else "bfloat16")]
    for path in ("ghostframe_server", "plain_generate", "engine_plain", "engine_cache", "engine_lookup", *precision_rows,
                 "engine_fast"):
        assert report[path]["n"] == 4 and report[path]["p95_ms"] >= report[path]["p50_ms"] >= 0, path
    # the first request in a just-opened file: warming leaves it less to prefill
    first = report["first_request"]
    assert first["cold"]["prefilled_tokens"] > first["fully warm"]["prefilled_tokens"] == 1
    assert set(report["prefill_decode"]) == {"float32", "int8", "bfloat16", precision_rows[-1].split("_prefill_")[0]
                                             .removeprefix("engine_cache_") + ", prefill in "
                                             + precision_rows[-1].split("_prefill_")[1]}
    llama = report["llama_cpp"]  # a GGUF-less tiny model: skipped, saying why
    assert "skipped" in llama and "llama.cpp row skipped" in done.stdout
    # the reference runs to max_new_tokens; the engine stops where a suggestion ends
    assert report["plain_generate"]["new_tokens_mean"] >= report["engine_plain"]["new_tokens_mean"]
