"""`ghostframe-eval --context`: the index holds train-split files only, and the data-aware selection."""

from __future__ import annotations

from pathlib import Path

import pytest

from ghostframe.trainer.data.corpus import CorpusOptions
from ghostframe.trainer.data.split import TRAIN, VALID, split_of
from ghostframe.trainer.evaluation.cases import load_cases
from ghostframe.trainer.evaluation.context import _read_sources, apply_context, with_context

OPTIONS = CorpusOptions(filter_keywords=False, valid_fraction=0.5, near_dedup_threshold=None)
SCRIPT = '''import pandas as pd
from helpers_{n} import tidy_{n}

sales = pd.read_csv("sales.csv")
north = sales[sales["region"] == "north"]
total = north["revenue"].sum()
print(tidy_{n}(north), total, {n})
'''


@pytest.fixture
def corpus(tmp_path: Path) -> tuple[Path, list[str], list[str]]:
    (tmp_path / "sales.csv").write_text("date,region,revenue\n2024-01-01,north,10\n")
    for n in range(12):
        (tmp_path / f"script_{n}.py").write_text(SCRIPT.format(n=n))
        (tmp_path / f"helpers_{n}.py").write_text(f"def tidy_{n}(df):\n    return df.dropna().reset_index()  # {n}\n")
    names = sorted(p.name for p in tmp_path.glob("*.py"))
    train = [n for n in names if split_of(n, OPTIONS.valid_fraction) == TRAIN]
    valid = [n for n in names if split_of(n, OPTIONS.valid_fraction) == VALID]
    assert train and valid
    return tmp_path, train, valid


def test_repo_context_indexes_train_files_only(corpus):
    folder, train, valid = corpus
    case_set = load_cases([str(folder)], options=OPTIONS, per_file=3)
    sources = _read_sources([str(folder)], [], OPTIONS)
    cases, info = with_context(case_set.cases, sources, "repo")
    assert info["indexed_files"] == len(train)
    shown = "\n".join(s for c in cases for s in c.snippets)
    assert shown and all(f"# {name}" not in shown for name in valid)  # no held-out file, the case's own included
    assert all(c.notes == () for c in cases)
    assert [c.id for c in cases] == [c.id for c in case_set.cases]


def test_data_context_notes_the_csv_columns(corpus):
    folder, _, _ = corpus
    case_set = load_cases([str(folder)], options=OPTIONS, per_file=20)
    info = apply_context(case_set, [str(folder)], [], OPTIONS, "data", False, None, 0)
    assert info["cases_with_data_notes"] > 0
    noted = [c for c in case_set.cases if c.notes]
    assert all(c.notes == ((3, "# sales.csv columns: date, region, revenue"),) and c.line > 3 for c in noted)
    assert all(c.snippets == () for c in case_set.cases)


def test_column_lines_keep_only_lines_that_name_a_column(corpus):
    folder, _, valid = corpus
    case_set = load_cases([str(folder)], options=OPTIONS, per_file=100)
    apply_context(case_set, [str(folder)], [], OPTIONS, "none", True, None, 0)
    assert case_set.cases
    assert {c.reference for c in case_set.cases} == {
        'north = sales[sales["region"] == "north"]', 'total = north["revenue"].sum()'}
    assert all(c.notes == () for c in case_set.cases)  # selection alone adds no context
    assert len(case_set.cases) == 2 * sum(name.startswith("script_") for name in valid)


def test_unknown_mode_is_refused(corpus):
    with pytest.raises(ValueError, match="context must be one of"):
        with_context([], _read_sources([str(corpus[0])], [], OPTIONS), "everything")


def test_context_needs_in_process_evaluation(corpus):
    from ghostframe.trainer.evaluation.cli import build_parser
    from ghostframe.trainer.evaluation.run import EvalConfig, EvaluationError, System, evaluate

    args = build_parser().parse_args([str(corpus[0]), "-o", "out", "--context", "all", "--column-lines"])
    assert (args.context, args.column_lines) == ("all", True)
    with pytest.raises(EvaluationError, match="in process only"):
        evaluate(EvalConfig(folders=[str(corpus[0])], systems=[System("base")], via_lsp=True, context="repo"))
