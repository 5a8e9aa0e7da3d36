"""Unit tests of the trainer's data pipeline: filter, notebooks, ignore rules, dedup, secrets, split, packing."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from ghostframe.trainer.data.corpus import CorpusError, CorpusOptions, DatasetSource, build_corpus, iter_clean_files
from ghostframe.trainer.data.dedup import Deduplicator, content_hash
from ghostframe.server.inference.source_files.hygiene import (DEFAULT_KEYWORDS, any_keyword_in_string, decode_source,
                                                             generated_reason)
from ghostframe.server.inference.source_files.notebooks import NotebookError, notebook_to_python
from ghostframe.trainer.data.packing import pack_token_lists, packed_blocks
from ghostframe.trainer.data.scrubbing import scrub_secrets
from ghostframe.trainer.data.sources import iter_folder_files
from ghostframe.trainer.data.split import normalise_relative_path, split_of
from trainer_fixtures import build_tiny_model, data_science_file, make_repo, notebook_json

# --------------------------------------------------------------------------- filter


def test_any_keyword_in_string_matches_the_course():
    # The examples of the Hugging Face course, chapter 7.6.
    filters = ["pandas", "sklearn", "matplotlib", "seaborn"]
    example_1 = "import numpy as np"
    example_2 = "import pandas as pd"
    assert not any_keyword_in_string(example_1, filters)
    assert any_keyword_in_string(example_2, filters)
    assert tuple(filters) == DEFAULT_KEYWORDS


def test_filter_is_a_plain_case_sensitive_substring_test():
    assert any_keyword_in_string("# uses matplotlib.pyplot somewhere in a comment", DEFAULT_KEYWORDS)
    assert any_keyword_in_string("from sklearn.linear_model import Ridge", DEFAULT_KEYWORDS)
    assert not any_keyword_in_string("import Pandas", DEFAULT_KEYWORDS)
    assert not any_keyword_in_string("anything", [])


def test_no_filter_and_custom_keywords(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "a.py").write_text("import torch\n")
    (repo / "b.py").write_text("import pandas\n")
    kept = lambda options: sorted(f.relative_path for f in iter_clean_files([repo], options=options))  # noqa: E731
    assert kept(CorpusOptions()) == ["b.py"]
    assert kept(CorpusOptions(keywords=("torch",))) == ["a.py"]
    assert kept(CorpusOptions(filter_keywords=False)) == ["a.py", "b.py"]


# --------------------------------------------------------------------------- notebooks


def test_notebook_code_cells_in_order_markdown_dropped_magics_commented():
    text = notebook_json([
        ("markdown", "# Title\nSome prose"),
        ("code", "%matplotlib inline\nimport pandas as pd"),
        ("code", "df = pd.read_csv('x.csv')\n!pip install seaborn"),
        ("raw", "raw text"),
        ("code", "   "),
        ("code", "df.plot()"),
    ])
    assert notebook_to_python(text) == (
        "# %matplotlib inline\nimport pandas as pd\n\n"
        "df = pd.read_csv('x.csv')\n# !pip install seaborn\n\n"
        "df.plot()\n"
    )


def test_notebook_source_as_string_and_nbformat3():
    v4 = json.dumps({"cells": [{"cell_type": "code", "source": "a = 1\nb = 2"}]})
    assert notebook_to_python(v4) == "a = 1\nb = 2\n"
    v3 = json.dumps({"worksheets": [{"cells": [{"cell_type": "code", "input": ["x = 1\n", "y = 2"]}]}]})
    assert notebook_to_python(v3) == "x = 1\ny = 2\n"


def test_broken_notebook_is_an_error_and_counted(tmp_path):
    with pytest.raises(NotebookError):
        notebook_to_python("{not json")
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "bad.ipynb").write_text("{not json pandas")
    (repo / "good.py").write_text("import pandas\n")
    report_files = list(iter_clean_files([repo]))
    assert [f.relative_path for f in report_files] == ["good.py"]


# --------------------------------------------------------------------------- ignore rules and hygiene


def test_ignore_rules(tmp_path):
    root = tmp_path / "repo"
    files = {
        "keep.py": "", "pkg/mod.py": "", "notes/a.ipynb": "", "README.md": "",
        ".git/hooks/x.py": "", ".venv/lib/x.py": "", "env2/pyvenv.cfg": "", "env2/lib/y.py": "",
        "lib/site-packages/z.py": "", "node_modules/n.py": "", "build/b.py": "", "dist/d.py": "",
        "pkg.egg-info/e.py": "", "__pycache__/c.py": "", "notes/.ipynb_checkpoints/a-checkpoint.ipynb": "",
        "data/generated.py": "", "data/keep_me.py": "", "logs/debug.py": "", "sub/.gitignore": "local_*.py\n",
        "sub/local_x.py": "", "sub/shared.py": "", "sub/deeper/local_y.py": "",
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    (root / ".gitignore").write_text("data/*.py\n!data/keep_me.py\nlogs/\n")
    (root / ".git" / "info").mkdir(parents=True)
    (root / ".git" / "info" / "exclude").write_text("pkg/mod.py\n")
    stats = Counter()
    found = sorted(c.relative_path for c in iter_folder_files(root, stats))
    assert found == ["data/keep_me.py", "keep.py", "notes/a.ipynb", "sub/shared.py"]
    assert stats["skipped_gitignore"] == 4  # data/generated.py, pkg/mod.py, sub/local_x.py, sub/deeper/local_y.py
    assert stats["skipped_dirs_gitignore"] == 1  # logs/
    assert stats["skipped_dirs_environment_vcs_build"] >= 9


def test_binary_non_utf8_large_and_generated_files_are_skipped_and_counted(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "ok.py").write_text("import pandas as pd\nprint(pd)\n")
    (repo / "binary.py").write_bytes(b"import pandas\x00\x01\x02")
    (repo / "latin1.py").write_bytes("# pandas café\n".encode("latin-1"))
    (repo / "big.py").write_text("import pandas\n" + "x = 1\n" * 2000)
    (repo / "minified.py").write_text("import pandas;" + "a=1;" * 400)
    (repo / "symbols.py").write_text("pandas = '" + "{}[]()<>=+-*/" * 30 + "'\n")
    options = CorpusOptions(max_file_bytes=5000)
    report = build_corpus(tmp_path / "data", [repo], options=options)
    skipped = report.to_dict()["skipped"]
    assert report.to_dict()["files_seen"] == 6 and report.to_dict()["files_kept"] == 1
    assert skipped["skipped_binary_or_not_utf8"] == 2
    assert skipped["skipped_too_large"] == 1
    assert skipped["skipped_generated_or_minified"] == 2
    assert decode_source("\ufeffx = 1".encode()) == "x = 1"
    assert generated_reason("x = 1\n") is None


def test_sources_are_never_written(tmp_path):
    repo = make_repo(tmp_path / "repo", files=5)
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in repo.rglob("*") if p.is_file()}
    build_corpus(tmp_path / "data", [repo])
    after = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in repo.rglob("*") if p.is_file()}
    assert before == after


def test_missing_empty_and_filtered_out_sources_give_clear_errors(tmp_path):
    with pytest.raises(CorpusError, match="does not exist"):
        build_corpus(tmp_path / "d1", [tmp_path / "nope"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match="no .py or .ipynb files"):
        build_corpus(tmp_path / "d2", [tmp_path / "empty"])
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "a.py").write_text("import numpy as np\n")
    with pytest.raises(CorpusError, match="--no-filter"):
        build_corpus(tmp_path / "d3", [tmp_path / "plain"])


# --------------------------------------------------------------------------- dedup


def test_exact_and_near_duplicates_are_dropped(tmp_path):
    original = data_science_file(7, snippets=20)
    dedup = Deduplicator()
    assert dedup.check(original) is None
    assert dedup.check(original + "   \n\n") == "exact"  # trailing whitespace does not hide a copy
    near = original.replace("print(df.head())", "print(df.tail())", 1) + "\nprint('done')\n"
    assert dedup.check(near) == "near"
    assert dedup.check(data_science_file(8, snippets=20)) is None
    assert content_hash("a\nb") == content_hash("a  \nb\n")
    assert Deduplicator(near_threshold=None).check(original) is None

    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "a.py").write_text(original)
    (repo / "a_copy.py").write_text(original)
    (repo / "a_edit.py").write_text(near)
    report = build_corpus(tmp_path / "data", [repo])
    assert report.to_dict()["duplicates"] == {"duplicates_exact": 1, "duplicates_near": 1}
    assert report.to_dict()["files_kept"] == 1


# --------------------------------------------------------------------------- secrets

FAKE_SECRETS = {
    "private_key": '''KEY = """-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo\n-----END RSA PRIVATE KEY-----"""''',
    "openssh_key": "k = '-----BEGIN OPENSSH PRIVATE KEY-----\\nb3BlbnNzaC1rZXktdjEAAAAA\\n-----END OPENSSH PRIVATE KEY-----'",
    "aws_access_key_id": 'aws_id = "AKIAIOSFODNN7EXAMPLE"',
    "aws_secret": 'aws_secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"',
    "github": 'gh = "ghp_0123456789abcdefghijklmnopqrstuvwxyzAB"',
    "openai": 'client = OpenAI(api_key="sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv")',
    "slack": 'hook = "xoxb-123456789012-abcdefghijkl"',
    "google": 'g = "AIzaSyA1234567890abcdefghijklmnopqrstuv"',
    "huggingface": 'HF = "hf_abcdefghijklmnopqrstuvwxyzABCDEFGH"',
    "stripe": 'stripe.api_key = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"',
    "jwt": 'jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"',
    "connection_string": 'engine = create_engine("postgresql://analyst:Sup3rS3cret@db.internal:5432/sales")',
    "mongo": 'client = MongoClient("mongodb+srv://admin:hunter2hunter2@cluster0.example.net/test")',
    "password_assignment": 'password = "correct-horse-battery"',
    "password_kwarg": 'conn = psycopg2.connect(host="db", user="me", password=\'p@ssw0rd!\')',
    "dict_secret": 'config = {"client_secret": "a1b2c3d4e5f6", "db_pwd": "letmein99"}',
    "token_with_suffix": 'auth = {"access_token_value": "q7Zr9Wm2Kx8Tb4Nc"}',
}
SECRET_VALUES = [
    "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo", "b3BlbnNzaC1rZXktdjEAAAAA", "AKIAIOSFODNN7EXAMPLE",
    "wJalrXUtnFEMI", "ghp_0123456789", "sk-proj-Ab3dEf", "xoxb-1234", "AIzaSyA123", "hf_abcdefghij",
    "sk_live_4eC39", "eyJhbGciOiJIUzI1NiJ9", "Sup3rS3cret", "hunter2hunter2", "correct-horse-battery",
    "p@ssw0rd!", "a1b2c3d4e5f6", "letmein99", "q7Zr9Wm2Kx8Tb4Nc",
]


@pytest.mark.parametrize("kind", sorted(FAKE_SECRETS))
def test_each_kind_of_secret_is_replaced_by_a_placeholder(kind):
    scrubbed, counts = scrub_secrets(FAKE_SECRETS[kind])
    assert sum(counts.values()) >= 1, scrubbed
    assert not [value for value in SECRET_VALUES if value in scrubbed], scrubbed
    assert "<" in scrubbed and ">" in scrubbed


def test_ordinary_code_is_not_scrubbed():
    code = (
        'DB_PASSWORD = os.environ["DB_PASSWORD"]\n'
        'password = getpass.getpass()\n'
        'tokenizer = AutoTokenizer.from_pretrained("gpt2-medium")\n'
        'n_tokens = "many"\n'
        'url = "https://example.com/data.csv"\n'
        'help_text = "the token used to log in to the server"\n'
        'df = pd.read_sql("select * from t", "postgresql://localhost/db")\n'
        'vec = TfidfVectorizer(token_pattern=r"(?u)\\b\\w\\w+\\b", lowercase=True)\n'
        'headers = {"token_type": "bearer"}\n'
        'form = {"password_field": "pwd_input", "SECRET_ENV_VAR": "APP_SECRET"}\n'
    )
    scrubbed, counts = scrub_secrets(code)
    assert scrubbed == code and not counts


def test_secrets_are_scrubbed_in_the_corpus_and_counted(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "etl.py").write_text("import pandas as pd\n" + "\n".join(FAKE_SECRETS.values()) + "\n")
    report = build_corpus(tmp_path / "data", [repo], options=CorpusOptions(valid_fraction=0.0))
    written = (tmp_path / "data" / "train.jsonl").read_text()
    assert not [value for value in SECRET_VALUES if value in written]
    assert sum(report.to_dict()["secrets_scrubbed"].values()) >= len(FAKE_SECRETS)
    assert "secrets scrubbed" in report.summary()
    assert "SECRET" not in (repo / "etl.py").read_text()  # the user's file is untouched


# --------------------------------------------------------------------------- split


def test_split_is_stable_deterministic_and_near_the_fraction():
    paths = [f"pkg/module_{i}.py" for i in range(4000)]
    first = [split_of(p) for p in paths]
    assert first == [split_of(p) for p in paths]
    share = first.count("valid") / len(first)
    assert 0.08 < share < 0.12
    assert split_of("pkg/module_1.py") == split_of("./pkg/module_1.py") == split_of("pkg\\module_1.py")
    assert normalise_relative_path("./a//b.py") == "a/b.py"
    # Pinned values: changing the hash would silently move files between splits.
    assert [split_of(f"f{i}.py") for i in range(12)] == [_pinned(i) for i in range(12)]
    assert {split_of(p, 0.0) for p in paths} == {"train"}
    assert {split_of(p, 1.0) for p in paths} == {"valid"}  # an evaluation set: every file held out
    with pytest.raises(ValueError):
        split_of("a.py", 1.5)


def test_training_must_keep_files_to_train_on_while_an_evaluation_may_hold_out_all(capsys):
    from ghostframe.trainer.cli import build_parser as train_parser
    from ghostframe.trainer.evaluation.cli import build_parser as eval_parser

    assert eval_parser().parse_args(["src", "-o", "out", "--valid-fraction", "1"]).valid_fraction == 1.0
    for parser, value in ((train_parser(), "1"), (train_parser(), "-0.1"), (eval_parser(), "1.5"),
                          (eval_parser(), "all")):
        with pytest.raises(SystemExit) as stopped:
            parser.parse_args(["src", "-o", "out", "--valid-fraction", value])
        assert stopped.value.code == 2
        assert ("is not a number" if value == "all" else "share of files from 0 to 1") in capsys.readouterr().err


def _pinned(i: int) -> str:
    import hashlib

    digest = hashlib.sha256(f"f{i}.py".encode()).digest()
    return "valid" if int.from_bytes(digest[:8], "big") / 2**64 < 0.1 else "train"


def test_split_depends_on_the_path_relative_to_its_source_not_on_the_machine(tmp_path):
    one = make_repo(tmp_path / "one", files=20)
    two = make_repo(tmp_path / "elsewhere" / "two", files=20)
    splits = lambda root: {f.relative_path: f.split for f in iter_clean_files([root])}  # noqa: E731
    assert splits(one) == splits(two)
    files = list(iter_clean_files([one]))
    train = {f.relative_path for f in files if f.split == "train"}
    valid = {f.relative_path for f in files if f.split == "valid"}
    assert train and valid and not train & valid


# --------------------------------------------------------------------------- packing


def test_pack_token_lists_puts_eos_between_files_and_drops_the_tail():
    blocks = pack_token_lists([[1, 2, 3], [4, 5], [6, 7, 8, 9]], eos_token_id=0, context_length=4)
    assert blocks == [[1, 2, 3, 0], [4, 5, 0, 6], [7, 8, 9, 0]]
    assert pack_token_lists([[1]], 0, 4) == []


def test_packed_blocks_with_datasets_are_full_length_and_cached(tmp_path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(build_tiny_model(tmp_path / "tiny"))
    repo = make_repo(tmp_path / "repo", files=10)
    build_corpus(tmp_path / "data", [repo])
    blocks = packed_blocks(tmp_path / "data" / "train.jsonl", tokenizer, 32, tmp_path / "cache")
    assert len(blocks) > 10
    ids = blocks[:]["input_ids"]
    assert tuple(ids.shape) == (len(blocks), 32)
    assert (ids == tokenizer.eos_token_id).sum() >= 1
    texts = [json.loads(line)["text"] for line in (tmp_path / "data" / "train.jsonl").read_text().splitlines()]
    expected = pack_token_lists(tokenizer(texts, add_special_tokens=False)["input_ids"], tokenizer.eos_token_id, 32)
    assert ids.tolist() == expected
    cached = list((tmp_path / "cache").rglob("cache-*.arrow"))
    assert cached, "datasets.map should cache its result on disk"
    again = packed_blocks(tmp_path / "data" / "train.jsonl", tokenizer, 32, tmp_path / "cache")
    assert again[:]["input_ids"].tolist() == expected


# --------------------------------------------------------------------------- datasets source


def test_local_datasets_source_in_codeparrot_layout(tmp_path):
    import datasets

    records = {
        "repo_name": ["alice/analysis", "alice/analysis", "bob/tools", "carol/nb"],
        "path": ["src/clean.py", "src/plot.py", "cli.py", "explore.ipynb"],
        "content": [data_science_file(1), data_science_file(2), "import os\n",
                    notebook_json([("code", "import seaborn as sns\nsns.set()")])],
    }
    datasets.Dataset.from_dict(records).save_to_disk(str(tmp_path / "ds"))
    pd_file = tmp_path / "records.jsonl"
    pd_file.write_text("".join(json.dumps({"content": data_science_file(3), "path": "x.py"}) + "\n" for _ in range(1)))
    for streaming in (False, True):
        sources = [DatasetSource(str(tmp_path / "ds"), streaming=streaming), DatasetSource(str(pd_file))]
        files = list(iter_clean_files(datasets=sources))
        paths = sorted(f.relative_path for f in files)
        assert paths == ["alice/analysis/src/clean.py", "alice/analysis/src/plot.py", "carol/nb/explore.ipynb", "x.py"]
        notebook = next(f for f in files if f.relative_path.endswith(".ipynb"))
        assert notebook.text == "import seaborn as sns\nsns.set()\n"
    limited = list(iter_clean_files(datasets=[DatasetSource(str(tmp_path / "ds"), limit=1)]))
    assert len(limited) == 1
    with pytest.raises(CorpusError, match="no column"):
        list(iter_clean_files(datasets=[DatasetSource(str(tmp_path / "ds"), text_column="code")]))


def test_a_notebook_is_judged_by_the_size_of_its_code_not_of_its_saved_outputs(tmp_path):
    from ghostframe.server.lsp.workspace_context import discover

    repo = tmp_path / "repo"
    repo.mkdir()
    plot = {"output_type": "display_data", "metadata": {},
            "data": {"image/png": "iVBORw0KGgo" * 200_000, "text/plain": ["<Figure>"]}}  # a 2.2 MB plot

    def notebook(code: str) -> str:
        return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
            {"cell_type": "code", "metadata": {}, "execution_count": 1, "source": code, "outputs": [plot]}]})

    (repo / "plots.ipynb").write_text(notebook("import pandas as pd\ndf = pd.read_csv('x.csv')\ndf.plot()\n"))
    (repo / "huge_code.ipynb").write_text(notebook("import pandas as pd\n" + "x = 1\n" * 2000))
    options = CorpusOptions(max_file_bytes=5000)
    report = build_corpus(tmp_path / "data", [repo], options=options).to_dict()
    assert report["files_kept"] == 1 and report["skipped"] == {"skipped_too_large": 1}
    # The server's workspace index reads files by the same rule.
    indexed = dict(discover([repo], Counter(), max_file_bytes=5000))
    assert list(indexed) == [repo.resolve() / "plots.ipynb"] and "df.plot()" in indexed[repo.resolve() / "plots.ipynb"]


def test_corpus_options_come_from_a_training_configuration_in_one_place():
    import dataclasses

    from ghostframe.trainer.config import TrainConfig

    cfg = TrainConfig(keywords=["polars"], filter_keywords=False, max_file_bytes=5, near_dedup_threshold=None,
                      valid_fraction=0.3)
    expected = CorpusOptions(keywords=("polars",), filter_keywords=False, max_file_bytes=5, near_dedup_threshold=None,
                             valid_fraction=0.3)
    assert CorpusOptions.from_config(dataclasses.asdict(cfg)) == expected
    saved = json.loads(json.dumps(dataclasses.asdict(cfg)))  # as ghostframe.json holds it
    assert CorpusOptions.from_config(saved) == expected
    assert CorpusOptions.from_config({"valid_fraction": 0.2}) == CorpusOptions(valid_fraction=0.2)
