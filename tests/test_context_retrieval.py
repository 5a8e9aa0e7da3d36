"""Retrieval from the workspace: imported definitions, similar chunks, determinism, and where it goes in the prompt."""

from __future__ import annotations

import pytest

from conftest import TINY_MODEL
from ghostframe.server.inference.context.retrieval import RegionCache, parse_imports, retrieve
from ghostframe.server.inference.context.workspace_index import WorkspaceIndex
from ghostframe.server.inference.prompt import CONTEXT_SHARE, CompletionContext, annotate, build_prompt

FEATURES = '''"""Feature helpers."""
import pandas as pd

CHURN_COLUMNS = ["tenure", "monthly_charges", "contract"]


def add_ratio(df, numerator, denominator):
    """A ratio column."""
    df[f"{numerator}_per_{denominator}"] = df[numerator] / df[denominator]
    return df


class Scaler:
    def __init__(self, columns):
        self.columns = columns

    def fit(self, df):
        return self
'''
PACKAGE_INIT = "from .features import add_ratio, Scaler\n"
REPORT = '''import matplotlib.pyplot as plt

def plot_revenue_by_region(sales):
    totals = sales.groupby("region")["revenue"].sum()
    totals.plot.bar()
    plt.title("revenue by region")
'''
CURRENT = '''import pandas as pd
from churn import add_ratio, Scaler
from churn.features import CHURN_COLUMNS
import churn.features as feats

df = pd.read_csv("data.csv")
df = add_ratio(df, "revenue", "units")
totals = sales.groupby("region")["revenue"].sum()
x = feats.'''


@pytest.fixture
def snapshot(tmp_path):
    index = WorkspaceIndex((tmp_path,))
    index.update(tmp_path / "churn" / "features.py", FEATURES)
    index.update(tmp_path / "churn" / "__init__.py", PACKAGE_INIT)
    index.update(tmp_path / "reports" / "plots.py", REPORT)
    index.update(tmp_path / "notebooks" / "current.py", "old text of the current file: plot_revenue_by_region\n")
    return index.refresh()


def test_parse_imports_reads_every_form():
    imports = parse_imports("from .a import (x,\n    y as z)\nimport p.q as r, s\nfrom t import *\n")
    assert [(i.level, i.module, i.name, i.alias) for i in imports] == [
        (1, "a", "x", "x"), (1, "a", "y", "z"), (0, "p.q", None, "r"), (0, "s", None, "s")]


def test_definitions_of_imported_names_then_similar_code(snapshot):
    snippets = retrieve(snapshot, "notebooks/current.py", CURRENT, "\nprint(x)\n")
    text = "\n".join(snippets)
    # re-exported through churn/__init__.py, found in churn/features.py
    assert "# churn/features.py\n# def add_ratio(df, numerator, denominator):" in text
    assert "# class Scaler:\n#     def __init__(self, columns):\n#     def fit(self, df):" in text
    assert '# CHURN_COLUMNS = ["tenure", "monthly_charges", "contract"]' in text
    # the code most like the lines above the cursor, from another file, with its path and line
    assert any(s.startswith("# reports/plots.py (line 1)") for s in snippets)
    # never the current file's own (indexed, older) text
    assert "old text of the current file" not in text
    # definitions come before similar chunks (they are the more useful)
    first_chunk = next(i for i, s in enumerate(snippets) if "(line " in s.split("\n", 1)[0])
    assert all("(line " not in s.split("\n", 1)[0] for s in snippets[:first_chunk])


def test_retrieval_is_deterministic_and_ignores_the_line_being_typed(snapshot):
    first = retrieve(snapshot, "notebooks/current.py", CURRENT, "")
    assert retrieve(snapshot, "notebooks/current.py", CURRENT, "") == first
    assert retrieve(snapshot, "notebooks/current.py", CURRENT + "add_rat", "") == first


def test_region_cache_keeps_snippets_while_the_cursor_stays_in_its_region():
    cache = RegionCache(region_lines=8)
    cache.put("doc", 10, ("a",))
    assert cache.get("doc", 10) == ("a",) and cache.get("doc", 17) == ("a",)
    assert cache.get("doc", 18) is None and cache.get("doc", 9) is None and cache.get("other", 10) is None
    cache.forget("doc")
    assert cache.get("doc", 10) is None


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(TINY_MODEL)


def test_snippets_come_first_within_their_share_of_the_budget(tokenizer):
    before = "".join(f"value_{i} = compute({i})\n" for i in range(200)) + "result = df."
    small, large = "# a.py\n# def helper(df):\n", "# b.py\n" + "# x = 1\n" * 400
    ctx = CompletionContext(before, "", snippets=(small, large))
    ids = build_prompt(ctx, tokenizer, 256)
    text = tokenizer.decode(ids)
    assert len(ids) <= 256
    assert text.startswith(small) and "# b.py" not in text  # whole snippets only, and only what fits
    assert text.endswith("result = df.")
    assert len(tokenizer(small)["input_ids"]) <= int(256 * CONTEXT_SHARE)
    # while the user types, the prompt's first tokens stay the same (the KV cache is reused)
    typed = build_prompt(CompletionContext(before + "gr", "", snippets=(small, large)), tokenizer, 256)
    assert typed[:len(tokenizer(small)["input_ids"])] == ids[:len(tokenizer(small)["input_ids"])]


def test_most_useful_snippet_is_nearest_the_code(tokenizer):
    ctx = CompletionContext("x = 1\n", "", snippets=("# first.py\n# a = 1\n", "# second.py\n# b = 2\n"))
    assert tokenizer.decode(build_prompt(ctx, tokenizer, 128)) == "# second.py\n# b = 2\n# first.py\n# a = 1\nx = 1\n"


def test_notes_go_above_their_line_and_never_on_the_cursor_line():
    before = "import pandas as pd\nif True:\n    df = pd.read_csv('s.csv')\n    df."
    notes = ((2, "# s.csv columns: a, b"), (3, "# never here"))
    assert annotate(before, notes) == (
        "import pandas as pd\nif True:\n    # s.csv columns: a, b\n    df = pd.read_csv('s.csv')\n    df.")


def test_a_note_whose_read_left_the_window_leads_the_files_text(tokenizer):
    read = "import pandas as pd\nsales = pd.read_csv('sales.csv')\n"
    body = "".join(f"value_{i} = sales.iloc[{i}]\n" for i in range(300))
    note = "# sales.csv columns: region, revenue"
    ctx = CompletionContext(read + body + "sales[", "", snippets=("# other.py\n# x = 1\n",), notes=((1, note),))
    ids = build_prompt(ctx, tokenizer, 256)
    text = tokenizer.decode(ids)
    assert len(ids) <= 256 and "read_csv" not in text  # the read is far above the window
    assert text.startswith("# other.py\n# x = 1\n" + note + "\n") and text.endswith("sales[")
    # while the user types on, the prompt's start stays the same (the KV cache is reused)
    typed = build_prompt(CompletionContext(read + body + "sales['re", "", snippets=ctx.snippets, notes=ctx.notes),
                         tokenizer, 256)
    head = len(tokenizer("# other.py\n# x = 1\n" + note + "\n")["input_ids"])
    assert typed[:head] == ids[:head]
    # near the read, the note stays above its line and is not repeated
    near = tokenizer.decode(build_prompt(CompletionContext(read + "sales[", "", notes=((1, note),)), tokenizer, 256))
    assert near == "import pandas as pd\n" + note + "\nsales = pd.read_csv('sales.csv')\nsales["
    # many far reads never push the prompt over its budget: the latest notes that fit are kept
    many = tuple((i, f"# file_{i}.csv columns: " + ", ".join(f"c{i}_{j}" for j in range(2))) for i in range(40))
    crowded = CompletionContext("".join(f"x_{i} = 1\n" for i in range(40)) + body + "sales[", "", notes=many)
    ids = build_prompt(crowded, tokenizer, 256)
    text = tokenizer.decode(ids)
    assert len(ids) <= 256 and text.endswith("sales[") and "# file_39.csv" in text and "# file_0.csv" not in text
    # a read on the cursor's own line gets no note, near or far
    own = CompletionContext(body + "sales = pd.read_csv('sales.csv')", "", notes=((300, note),))
    assert note not in tokenizer.decode(build_prompt(own, tokenizer, 256))


def test_bm25_matches_the_textbook_formula():
    import math

    import numpy as np

    from ghostframe.server.inference.context import bm25

    documents = ["alpha beta beta", "beta gamma", "delta epsilon zeta eta", "alpha alpha theta",
                 "iota kappa", "lambda mu", "nu xi", "omicron pi"]
    vocabulary = bm25.Vocabulary()
    scorer = bm25.BM25(bm25.Bags.of([vocabulary.bag(d) for d in documents]), vocabulary)
    query = ["alpha", "beta", "theta", "unknown"]
    bags = [d.split() for d in documents]
    average = sum(map(len, bags)) / len(bags)

    def expected(doc):
        total = 0.0
        for term in set(query):
            df = sum(term in b for b in bags)
            if not df or df > len(bags) * bm25.MAX_DOCUMENT_FREQUENCY:
                continue
            tf = doc.count(term)
            idf = math.log(1 + (len(bags) - df + 0.5) / (df + 0.5))
            total += idf * tf * (bm25.K1 + 1) / (tf + bm25.K1 * (1 - bm25.B + bm25.B * len(doc) / average))
        return total

    assert np.allclose(scorer.scores(query), [expected(b) for b in bags], atol=1e-5)
    assert [d for d, _ in scorer.top(query, 2)] == [3, 0]
    assert [d for d, _ in scorer.top(query, 2, allowed=np.array([i != 3 for i in range(8)]))] == [0, 1]


def test_bench_retrieval_reports_on_a_folder(tmp_path, capsys):
    import json

    from ghostframe.server.tools.terminal_cli import main

    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "features.py").write_text(FEATURES)
    (tmp_path / "report.py").write_text(REPORT + "\nfrom pkg.features import add_ratio\nadd_ratio(df, 'a', 'b')\n")
    with pytest.raises(SystemExit) as done:
        main(["bench", "retrieval", str(tmp_path), "--requests", "5", "--json", str(tmp_path / "r.json")])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "workspace: 2 files" in out and "| repository retrieval |" in out and "per keystroke while typing" in out
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["retrieve"]["n"] == 5 and result["files"] == 2


def test_complete_sends_the_files_checkout_as_its_workspace(tmp_path):
    from ghostframe.server.tools.terminal_cli import workspace_of

    (tmp_path / "repo" / ".git").mkdir(parents=True)
    (tmp_path / "repo" / "notebooks").mkdir()
    script = tmp_path / "repo" / "notebooks" / "report.py"
    script.write_text(REPORT)
    assert workspace_of(script) == (tmp_path / "repo").resolve()
    (tmp_path / "loose").mkdir()
    (tmp_path / "loose" / "a.py").write_text("x = 1\n")
    assert workspace_of(tmp_path / "loose" / "a.py") == (tmp_path / "loose").resolve()


def test_complete_refuses_a_workspace_that_is_not_a_folder(tmp_path, capsys):
    from ghostframe.server.tools.terminal_cli import main

    script = tmp_path / "report.py"
    script.write_text(REPORT)
    with pytest.raises(SystemExit) as done:  # refused before any server starts
        main(["complete", str(script), "--workspace", str(tmp_path / "missing")])
    assert "is not a folder" in str(done.value.code)
