"""Data-file headers: column names only, bounded reads, bad files, and never outside the workspace."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ghostframe.server.inference.context import data_headers
from ghostframe.server.inference.context.data_headers import HeaderReader, find_reads


def notes(text: str, folder: Path, roots=None):
    return HeaderReader().notes(text, folder, roots or [folder])


def test_csv_header_becomes_a_note_with_names_and_no_values(tmp_path):
    (tmp_path / "sales.csv").write_text("date,region,revenue,units\n2024-01-01,north,1234.5,7\n")
    text = "import pandas as pd\n\ndf = pd.read_csv('sales.csv')\ndf["
    assert notes(text, tmp_path) == ((2, "# sales.csv columns: date, region, revenue, units"),)
    assert "north" not in str(notes(text, tmp_path)) and "1234.5" not in str(notes(text, tmp_path))


def test_every_reader_and_separator(tmp_path):
    (tmp_path / "t.tsv").write_text("a\tb\n1\t2\n")
    (tmp_path / "semi.csv").write_text("x;y;z\n1;2;3\n")
    (tmp_path / "rows.json").write_text(json.dumps([{"name": "secret-value", "age": 3}]))
    (tmp_path / "lines.jsonl").write_text('{"k1": 1, "k2": "v"}\n{"k1": 2}\n')
    (tmp_path / "nums.txt").write_text("1 2 3\n4 5 6\n")
    text = ("df1 = pd.read_table('t.tsv')\ndf2 = pd.read_csv(\"semi.csv\", sep=';')\n"
            "df3 = pd.read_json('rows.json')\ndf4 = pd.read_json('lines.jsonl', lines=True)\n"
            "arr = np.loadtxt('nums.txt')\n")
    assert notes(text, tmp_path) == (
        (0, "# t.tsv columns: a, b"), (1, "# semi.csv columns: x, y, z"),
        (2, "# rows.json columns: name, age"), (3, "# lines.jsonl columns: k1, k2"))  # numbers: no header


def test_parquet_schema_with_pyarrow(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"store": ["secret-store"], "amount": [1.5]}), tmp_path / "s.parquet")
    found = notes("df = pd.read_parquet('s.parquet')\n", tmp_path)
    assert found == ((0, "# s.parquet columns: store (string), amount (double)"),)


def test_excel_is_skipped_without_openpyxl(tmp_path, monkeypatch):
    import builtins

    (tmp_path / "book.xlsx").write_bytes(b"PK\x03\x04 not really a workbook")
    real_import = builtins.__import__

    def no_openpyxl(name, *args, **kwargs):
        if name == "openpyxl":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_openpyxl)
    assert notes("df = pd.read_excel('book.xlsx')\n", tmp_path) == ()


def test_reads_are_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(data_headers, "MAX_HEADER_BYTES", 64)
    (tmp_path / "wide.csv").write_text(",".join(f"column_{i}" for i in range(100)) + "\n1\n")
    (tmp_path / "ok.csv").write_text("a,b\n" + "1,2\n" * 100_000)
    opened = []
    real_open = open

    def spy(path, mode="r", *args, **kwargs):
        handle = real_open(path, mode, *args, **kwargs)
        if str(path).endswith(".csv"):
            original = handle.read
            handle.read = lambda size=-1: opened.append(size) or original(size)
        return handle

    monkeypatch.setattr("builtins.open", spy)
    text = "w = pd.read_csv('wide.csv')\nk = pd.read_csv('ok.csv')\n"
    assert notes(text, tmp_path) == ((1, "# ok.csv columns: a, b"),)  # a header longer than the bound: no note
    assert opened and all(0 < size <= 64 for size in opened)


def test_many_columns_and_long_names_are_clipped(tmp_path):
    (tmp_path / "w.csv").write_text(",".join(f"c{i}_" + "x" * 60 for i in range(80)) + "\n")
    (note,) = notes("df = pd.read_csv('w.csv')\n", tmp_path)
    assert len(note[1]) <= data_headers.MAX_NOTE_CHARS + 5 and note[1].endswith(", ...")


@pytest.mark.parametrize("content", [b"", b"\x00\x01\x02binary", b"\xff\xfe\xfa not utf8 \n1,2\n", b"1,2,3\n4,5,6\n"])
def test_bad_or_headerless_files_give_no_note_and_no_error(tmp_path, content):
    (tmp_path / "bad.csv").write_bytes(content)
    (tmp_path / "bad.json").write_bytes(content)
    (tmp_path / "bad.parquet").write_bytes(content)
    text = "a = pd.read_csv('bad.csv')\nb = pd.read_json('bad.json')\nc = pd.read_parquet('bad.parquet')\n"
    result = notes(text, tmp_path)
    assert result == ()


def test_never_outside_the_workspace(tmp_path):
    workspace, elsewhere = tmp_path / "ws", tmp_path / "elsewhere"
    workspace.mkdir()
    elsewhere.mkdir()
    (elsewhere / "secret.csv").write_text("ssn,salary\n")
    (workspace / "link.csv").symlink_to(elsewhere / "secret.csv")
    text = ("a = pd.read_csv('../elsewhere/secret.csv')\nb = pd.read_csv('link.csv')\n"
            f"c = pd.read_csv('{elsewhere / 'secret.csv'}')\nd = pd.read_csv('missing.csv')\n")
    assert notes(text, workspace, [workspace]) == ()


def test_paths_the_file_does_not_name_give_no_read_and_header_none_is_respected(tmp_path):
    (tmp_path / "a.csv").write_text("p,q\n")
    unknown = ("def load(path):\n    return pd.read_csv(path)\n"
               "pd.read_csv(f'{x}.csv')\npd.read_csv(args.input)\npd.read_csv(FILES['a'])\n"
               "pd.read_csv(download(url))\npd.read_csv(io.StringIO(text))\n")
    assert find_reads(unknown) == []
    assert notes("df = pd.read_csv('a.csv', header=None)\n", tmp_path) == ()
    assert notes("df = pandas.read_csv(filepath_or_buffer='a.csv')\n", tmp_path) == ((0, "# a.csv columns: p, q"),)


def test_relative_paths_resolve_from_the_file_then_the_workspace_root(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "data" / "sales.csv").write_text("region,revenue\n")
    text = "df = pd.read_csv('data/sales.csv')\n"
    assert notes(text, tmp_path / "notebooks", [tmp_path]) == ((0, "# sales.csv columns: region, revenue"),)


def test_two_reads_on_one_line():
    reads = find_reads('a = pd.read_csv("a.csv", sep=";"); b = pd.read_parquet("b.parquet")\n')
    assert [(r.line, r.reader, r.path) for r in reads] == [(0, "read_csv", "a.csv"), (0, "read_parquet", "b.parquet")]


def test_a_call_over_several_lines_as_formatters_write_it(tmp_path):
    (tmp_path / "sales.tsv").write_text("region\trevenue\n")
    (tmp_path / "b.csv").write_text("x,y\n")
    text = ('import pandas as pd\n\ndf = pd.read_csv(\n    "sales.tsv",\n    sep="\\t",\n    parse_dates=["d"],\n'
            '    usecols=list(range(2)),\n)\nother = pd.read_csv("b.csv")\n')
    assert [(r.line, r.path) for r in find_reads(text)] == [(2, "sales.tsv"), (8, "b.csv")]
    assert notes(text, tmp_path) == ((2, "# sales.tsv columns: region, revenue"), (8, "# b.csv columns: x, y"))


@pytest.mark.parametrize("written", ['sep="\\t"', "sep='\\t'", 'delimiter="\\t"', 'sep=r"\\t"'])
def test_an_escaped_separator_is_read_as_python_reads_it(tmp_path, written):
    (tmp_path / "my_data.txt").write_text("y\tx\tz\n1\t2\t3\n")
    text = f"df = pd.read_table('my_data.txt', {written})\n"
    # r"\t" is a backslash and a t for Python, but pandas reads a two-character separator as a
    # regular expression, and that one matches a tab too.
    assert notes(text, tmp_path) == ((0, "# my_data.txt columns: y, x, z"),)


def test_whitespace_separators(tmp_path):
    (tmp_path / "w.txt").write_text("alpha  beta gamma\n1 2 3\n")
    for written in ('sep="\\\\s+"', 'sep=r"\\s+"', "sep=' +'"):
        assert notes(f"df = pd.read_csv('w.txt', {written})\n", tmp_path) == ((0, "# w.txt columns: alpha, beta, gamma"),)


@pytest.mark.parametrize("suffix, opener", [(".gz", "gzip"), (".bz2", "bz2"), (".xz", "lzma")])
def test_compressed_files_give_their_header_and_reads_stay_bounded(tmp_path, monkeypatch, suffix, opener):
    module = __import__(opener)
    with module.open(tmp_path / f"big.csv{suffix}", "wb") as handle:
        handle.write(b"state,votes,turnout\n" + b"ohio,1,0.5\n" * 200_000)
    read = []
    real = data_headers._OPENERS[suffix]

    def spy(path, mode="rb"):
        handle = real(path, mode)
        original = handle.read
        handle.read = lambda size=-1: read.append(size) or original(size)
        return handle

    monkeypatch.setitem(data_headers._OPENERS, suffix, spy)
    assert notes(f"df = pd.read_csv('big.csv{suffix}')\n", tmp_path) == ((0, f"# big.csv{suffix} columns: state, votes, turnout"),)
    assert read == [data_headers.MAX_HEADER_BYTES]


def test_paths_named_through_constants_joins_pathlib_and_f_strings(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "sales.csv").write_text("region,revenue\n")
    text = ("import os\nfrom pathlib import Path\n"
            "DATA = Path(__file__).resolve().parent / 'data'\n"
            "ROOT: str = 'data'\n"
            "a = pd.read_csv(DATA / 'sales.csv')\n"                     # 4
            "b = pd.read_csv(os.path.join(ROOT, 'sales.csv'))\n"        # 5
            "c = pd.read_csv(f'{ROOT}/sales.csv')\n"                    # 6
            "name = 'sales'\n"
            "d = pd.read_csv(ROOT + '/' + name + '.csv', sep=',')\n"    # 8
            "SALES = os.path.join(\n    ROOT,\n    'sales.csv',\n)\n"
            "e = pd.read_csv(filepath_or_buffer=SALES)\n"               # 13
            "f = pd.read_csv(Path('data').joinpath('sales.csv'))\n"     # 14
            "g = pd.read_csv(str(Path.cwd() / ROOT / 'sales.csv'))\n")  # 15
    note = "# sales.csv columns: region, revenue"
    assert notes(text, tmp_path) == tuple((line, note) for line in (4, 5, 6, 8, 13, 14, 15))
    assert [r.path for r in find_reads(text)][:2] == ["data/sales.csv", "data/sales.csv"]
    assert find_reads(text)[3].arguments.strip() == "sep=','"


def test_the_latest_assignment_above_the_read_counts(tmp_path):
    (tmp_path / "old.csv").write_text("a,b\n")
    (tmp_path / "new.csv").write_text("c,d\n")
    text = "P = 'old.csv'\nx = pd.read_csv(P)\nP = 'new.csv'\ny = pd.read_csv(P)\nP = 'old.csv'\n"
    assert notes(text, tmp_path) == ((1, "# old.csv columns: a, b"), (3, "# new.csv columns: c, d"))
    assert find_reads("z = pd.read_csv(LATER)\nLATER = 'new.csv'\n") == []


def test_loops_in_names_end(tmp_path):
    assert find_reads("A = B\nB = A\nC = C + 'x'\npd.read_csv(A)\npd.read_csv(C)\n") == []


def test_paths_from_the_files_folder_resolve_there_only_and_stay_inside_the_workspace(tmp_path):
    workspace = tmp_path / "ws"
    (workspace / "notebooks").mkdir(parents=True)
    (workspace / "sales.csv").write_text("region,revenue\n")
    (tmp_path / "outside.csv").write_text("ssn,salary\n")
    here = "HERE = os.path.dirname(os.path.abspath(__file__))\n"
    # Relative to the file's folder (notebooks/), not to the workspace root where sales.csv is.
    assert notes(here + "pd.read_csv(os.path.join(HERE, 'sales.csv'))\n", workspace / "notebooks", [workspace]) == ()
    assert notes(here + "pd.read_csv(os.path.join(HERE, '..', 'sales.csv'))\n", workspace / "notebooks",
                 [workspace]) == ((1, "# sales.csv columns: region, revenue"),)
    up = "pd.read_csv(Path(__file__).parent.parent.parent / 'outside.csv')\n"
    assert [r.path for r in find_reads(up)] == ["../../outside.csv"]
    assert notes(up, workspace / "notebooks", [workspace]) == ()
    assert find_reads("pd.read_csv(__file__)\n") == []


def test_bare_readers_only_when_imported_from_pandas_and_polars_readers(tmp_path):
    (tmp_path / "a.csv").write_text("x;y\n")
    (tmp_path / "b.csv").write_text("u,v\n")
    bare = "from pandas import read_csv, read_parquet\ndf = read_csv('b.csv')\n"
    assert notes(bare, tmp_path) == ((1, "# b.csv columns: u, v"),)
    assert find_reads("df = read_csv('b.csv')\n") == []  # someone's own read_csv
    assert find_reads("from pandas import read_csv\ndef read_csv(p):\n    pass\nself.read_csv('b.csv')\n") == []
    polars = "import polars as pl\na = pl.read_csv('a.csv', separator=';')\nb = pl.scan_csv('b.csv', has_header=False)\n"
    assert notes(polars, tmp_path) == ((1, "# a.csv columns: x, y"),)


def test_a_call_still_being_typed(tmp_path):
    (tmp_path / "sales.csv").write_text("region,revenue\n")
    for text in ("D = 'sales.csv'\ndf = pd.read_csv(D, ", "df = pd.read_csv('sales.csv'", "df = pd.read_csv(\n    'sales.csv',\n"):
        assert notes(text, tmp_path)[0][1] == "# sales.csv columns: region, revenue", text


def test_reads_through_the_files_own_loader_are_noted_at_each_call(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "sales.csv").write_text("region;revenue\nnorth;12\n")
    (tmp_path / "costs.csv").write_text("item;cost\n")
    (tmp_path / "outside.csv").write_text("ssn;salary\n")
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "data").symlink_to(tmp_path / "data")  # a link out of the workspace
    text = ("import pandas as pd\nfrom pathlib import Path\n"
            "DATA = Path('data')\n"
            "def load(name, *, folder=DATA):\n"
            "    '''Read one of our tables.'''\n"
            "    frame = pd.read_csv(folder / name, sep=';')\n"
            "    return frame.dropna()\n"
            "\n"
            "def load_path(path='costs.csv'):\n"
            "    return pd.read_csv(path, sep=';')\n"
            "\n"
            "sales = load('sales.csv')\n"                  # 11
            "costs = load_path()\n"                        # 12
            "again = load_path(path='data/sales.csv')\n"   # 13
            "unknown = load(names[0])\n"
            "spread = load(*names)\n"
            "other = reader.load('sales.csv')\n"           # a method of something else
            "sales['")
    sales, costs = "# sales.csv columns: region, revenue", "# costs.csv columns: item, cost"
    assert notes(text, tmp_path) == ((11, sales), (12, costs), (13, sales))
    assert "north" not in str(notes(text, tmp_path))
    assert notes(text, workspace) == ()  # never outside the workspace, through a loader either
    assert {r.arguments.strip() for r in find_reads(text)} == {"sep=';'"}


def test_a_loader_is_only_the_function_around_the_read_and_not_a_method(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.csv").write_text("x,y\n")  # 'a.csv' alone names no file: only a loader finds it
    ended = "def load(name):\n    return name\nname = SOMEWHERE\ndf = pd.read_csv('data/' + name)\nload('a.csv')\n"
    assert notes(ended, tmp_path) == ()  # the read is below the function, not in it
    method = "class Store:\n    def load(self, name):\n        return pd.read_csv('data/' + name)\nload('a.csv')\n"
    assert notes(method, tmp_path) == ()
    nested = "def outer():\n    def load(p):\n        return pd.read_csv('data/' + p)\n    return load('a.csv')\n"
    assert notes(nested, tmp_path) == ((3, "# a.csv columns: x, y"),)
    assert find_reads("def load(p):\n    return pd.read_csv(p)\nload(p='a.csv'") == []  # a call being typed


def test_data_files_the_code_names_without_a_known_reader(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "sales.csv").write_text("region;revenue;units\nnorth;12;3\n")
    (tmp_path / "data" / "costs.tsv.gz").write_bytes(__import__("gzip").compress(b"item\tcost\n"))
    (tmp_path / "data" / "people.jsonl").write_text('{"name": "a", "age": 3}\n')
    (tmp_path.parent / "outside.csv").write_text("ssn,salary\n")
    text = ("from helpers import load_sales\n"
            "SALES = 'data/sales.csv'\n"
            "df = load_sales(SALES)\n"
            "costs = Table('data/costs.tsv.gz')\n"               # 3
            "people = read_people(path='data/people.jsonl')\n"  # 4
            "again = pd.read_csv('data/sales.csv', sep=';')\n"  # 5
            "missing = load('data/missing.csv')\n"
            "out = load('../outside.csv')\n"
            "df['")
    sales = "# sales.csv columns: region, revenue, units"
    assert notes(text, tmp_path) == ((3, "# costs.tsv.gz columns: item, cost"),
                                     (4, "# people.jsonl columns: name, age"), (5, sales))  # once, at the read
    assert notes(text.split("again")[0], tmp_path)[0] == (1, sales)  # no read yet: at its first mention
    assert "north" not in str(notes(text, tmp_path))
    many = "".join(f"x{i} = 'data/sales.csv'\n" for i in range(200))
    assert notes(many, tmp_path) == ((0, "# sales.csv columns: region, revenue, units"),)
