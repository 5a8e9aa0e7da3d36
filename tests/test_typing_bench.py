"""`ghostframe bench typing` plays its typing session against the real server and against
llama-server driven as llama.vscode drives it, and reports the same figures for both."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import TINY_QWEN2_GGUF
from ghostframe.server.tools.typing_bench import Document, choose_places

LARGE_FILE = Path(__file__).resolve().parents[1] / "server" / "lsp" / "server.py"  # hundreds of lines of real code


def test_places_are_code_lines_spread_through_the_file():
    text = LARGE_FILE.read_text()
    places = choose_places(text, 5, 4)
    lines = text.split("\n")
    assert len({p.line for p in places}) == 5 and places == sorted(places, key=lambda p: p.line)
    assert places[0].line < len(lines) / 4 and places[-1].line > 3 * len(lines) / 4
    for place in places:
        assert lines[place.line] == place.indentation + place.text and not place.text.startswith("#")


def test_the_document_edits_are_the_lsp_ranges_of_what_changed():
    document = Document("a = 1\n    bcd = 2\n")
    start, end, new = document.replace_line(1, "    ")
    assert (start, end, new) == ((1, 0), (1, 11), "    ") and document.text == "a = 1\n    \n"
    assert document.insert(1, 4, "x\n    ") == ((1, 4), (1, 4), "x\n    ") and document.text == "a = 1\n    x\n    \n"


@pytest.mark.slow
def test_both_sides_play_the_same_session_and_report_it(tmp_path):
    report_path = tmp_path / "typing.json"
    done = subprocess.run(
        [sys.executable, "-m", "ghostframe.server.tools.terminal_cli", "bench", "typing", str(LARGE_FILE),
         "--model", str(TINY_QWEN2_GGUF), "--places", "2", "--keystrokes", "3", "--pause", "0.3",
         "--accept-after", "0.1", "--max-new-tokens", "8", "--json", str(report_path)],
        capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(report_path.read_text())
    assert set(report["sides"]) == {"ghostframe", "llama.vscode + llama-server"}
    for name, side in report["sides"].items():
        assert side["keystrokes_answered"] + side["superseded"] == 2 * 3, name
        assert side["keystrokes_answered"] >= 2  # the last keystroke at each place is always answered
        assert side["p95_ms"] >= side["p50_ms"] > 0 and side["first_suggestion_median_ms"] > 0
        assert side["after_accept_median_ms"] is not None and 0 <= side["exact_lines"] <= side["places"] == 2
    assert report["sides"]["ghostframe"]["engine"] == "llama.cpp"
    assert "llama.vscode + llama-server" in done.stdout and report["cpu"] in done.stdout


@pytest.mark.slow
def test_decode_bench_times_each_engine_and_llama_server_on_one_prompt(tmp_path):
    from conftest import TINY_GGUF

    report_path = tmp_path / "decode.json"
    done = subprocess.run(
        [sys.executable, "-m", "ghostframe.server.tools.terminal_cli", "bench", "decode", str(LARGE_FILE),
         "--model", str(TINY_GGUF), "--prompt-tokens", "64", "--new-tokens", "8", "--repeats", "1",
         "--json", str(report_path)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads(report_path.read_text())["rows"]
    assert [r["engine"].split(" (")[0] for r in rows] == ["torch", "llama.cpp engine", "llama-server"]
    assert all(r["prefill_ms_per_token"] > 0 and r["decode_ms_per_token"] > 0 for r in rows)
    assert "decode ms/token" in done.stdout
