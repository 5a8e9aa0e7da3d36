"""Evaluation cases: which lines count, what the prompt is, and that sampling is
deterministic and never crosses the train/valid split. Also the metrics' arithmetic."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ghostframe.trainer.data.corpus import CorpusOptions, iter_clean_files
from ghostframe.trainer.evaluation.cases import case_at, eligible_lines, file_cases, load_cases
from ghostframe.trainer.evaluation.metrics import edit_similarity, exact_match, percentile, score, summarise
from ghostframe.trainer.data.split import TRAIN, VALID, split_of

SOURCE = '''"""Module docstring
spanning lines."""
import pandas as pd

# a comment that is long enough


def clean(frame):
    """Drop bad rows."""
    query = """
        select * from sales
    """
    x = 1
    return frame.dropna()
'''


def ds_file(seed: int) -> str:
    """A distinct, parseable data-science script (distinct enough to survive near-dedup)."""
    names = [f"col_{seed}_{i}" for i in range(8)]
    body = "\n".join(f"df['{n}'] = df['{names[i - 1]}'] * {seed + i} + {i * seed % 7}" for i, n in enumerate(names))
    return (f"import pandas as pd\n\n\ndef load_{seed}(path):\n    frame = pd.read_csv(path, sep=';')\n"
            f"    return frame.head({seed})\n\n\ndf = load_{seed}('data_{seed}.csv')\n{body}\nprint(df.describe())\n")


def make_folder(root: Path, files: int = 40) -> Path:
    for i in range(files):
        (root / "pkg").mkdir(parents=True, exist_ok=True)
        (root / "pkg" / f"module_{i:02d}.py").write_text(ds_file(i))
    (root / "notes.ipynb").write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "markdown", "metadata": {}, "source": ["# Notes"]},
        {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None, "source": [ds_file(99)]},
    ]}))
    (root / "plain.py").write_text("print('no data science in here at all')\nx = 1 + 2\n")
    return root


def test_only_code_lines_are_eligible():
    lines = SOURCE.split("\n")
    chosen = [lines[i].strip() for i in eligible_lines(SOURCE, min_chars=4)]
    assert chosen == ["import pandas as pd", "def clean(frame):", 'query = """', "x = 1", "return frame.dropna()"]
    assert "x = 1" not in [lines[i].strip() for i in eligible_lines(SOURCE, min_chars=6)]
    assert eligible_lines("def broken(:\n    pass\n") is None


def test_a_case_is_the_file_before_the_line_plus_its_indentation():
    lines = SOURCE.split("\n")
    index = lines.index("    x = 1")
    case = case_at("m.py", lines, index)
    assert case.reference == "x = 1" and case.indentation == "    "
    assert case.before == "\n".join(lines[:index]) + "\n    "
    assert case.after == "\n" + "\n".join(lines[index + 1:])
    assert case.document.split("\n")[index] == "    " and case.document.split("\n")[index + 1] == lines[index + 1]
    assert case.context.line_prefix == "    " and case.context.line_suffix == ""
    first = case_at("m.py", ["import os", "x = 1"], 0)
    assert (first.before, first.after, first.reference) == ("", "\nx = 1", "import os")


def test_sampling_is_deterministic_and_depends_only_on_the_file():
    text = ds_file(3)
    one, two = file_cases("a.py", text, 5, seed=0), file_cases("a.py", text, 5, seed=0)
    assert [c.line for c in one] == [c.line for c in two] and len(one) == 5
    assert [c.line for c in one] == sorted(c.line for c in one)
    others = [[c.line for c in file_cases("a.py", text, 5, seed=s)] for s in range(1, 6)]
    assert any(lines != [c.line for c in one] for lines in others)
    assert len(file_cases("a.py", text, 1000, seed=0)) == len(eligible_lines(text))


def test_cases_come_only_from_valid_files_that_pass_the_filter(tmp_path):
    root = make_folder(tmp_path / "repo")
    options = CorpusOptions(valid_fraction=0.3)
    first = load_cases([root], options=options, per_file=4, seed=1)
    again = load_cases([root], options=options, per_file=4, seed=1)
    assert [c.id for c in first.cases] == [c.id for c in again.cases]
    splits = {f.relative_path: f.split for f in iter_clean_files([root], options=options)}
    assert {TRAIN, VALID} <= set(splits.values())
    expected_files = sorted(p for p, s in splits.items() if s == VALID)
    assert sorted(first.valid_files) == expected_files
    assert {c.file for c in first.cases} == set(expected_files)
    for case in first.cases:
        assert split_of(case.file, 0.3) == VALID
    assert "plain.py" not in splits  # the data-science filter dropped it
    # adding a file never changes the other files' cases
    (root / "pkg" / "module_new.py").write_text(ds_file(1234))
    more = load_cases([root], options=options, per_file=4, seed=1)
    assert {c.id for c in first.cases} <= {c.id for c in more.cases}
    capped = load_cases([root], options=options, per_file=4, max_cases=5, seed=1)
    assert len(capped.cases) == 5 and {c.id for c in capped.cases} <= {c.id for c in first.cases}
    # a smaller sample is part of a larger one (a gate cut down by --budget reuses stored answers)
    for smaller, larger in ((2, 5), (5, 9), (3, len(first.cases) - 1)):
        few = load_cases([root], options=options, per_file=4, max_cases=smaller, seed=1)
        many = load_cases([root], options=options, per_file=4, max_cases=larger, seed=1)
        assert len(few.cases) == smaller and {c.id for c in few.cases} < {c.id for c in many.cases}


@pytest.mark.parametrize("prediction, reference, exact", [
    ("x = f(a, b)", "x = f(a, b)", True),
    ("x = f(a, b)  ", "x  = f(a, b)", True),
    (" x = f(a, b)", "x = f(a, b)", False),  # a stray leading space breaks the indentation
    ("x = f(a,b)", "x = f(a, b)", False),
    ("", "x = 1", False),
])
def test_exact_match_compares_tokens(prediction, reference, exact):
    assert exact_match(prediction, reference) is exact


def test_edit_similarity_and_summary():
    assert edit_similarity("abcd", "abcd") == 100.0
    assert edit_similarity("abcx", "abcd") == pytest.approx(75.0)
    assert edit_similarity("", "abcd") == 0.0
    assert edit_similarity(" abc", "abc") == pytest.approx(75.0)
    scored = [score("f:1", "f", "x = 1", "x = 1", 0.010), score("f:2", "f", "", "y = 2", 0.030),
              score("g:1", "g", "z = 4", "z = 3", 0.020), score("g:2", "g", "w", "w", 0.040)]
    summary = summarise(scored)
    assert summary.cases == 4 and summary.exact_match == 50.0 and summary.empty == 25.0
    assert summary.edit_sim == pytest.approx((100 + 0 + 80 + 100) / 4)
    assert summary.p50_ms == pytest.approx(25.0) and summary.p95_ms == pytest.approx(38.5)
    assert percentile([], 50) == 0.0
    assert summarise([score("h:1", "h", " y = 2", "y = 2", 0.01)]).leading_space == 100.0
