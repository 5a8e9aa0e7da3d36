"""Column names of the data files a file reads, for one-line prompt notes.

In pandas code the next token is often a column name, and the names live in the data.
When the code reads `pd.read_csv("sales.csv")` (or read_parquet, read_excel, read_json,
read_table, np.loadtxt / genfromtxt, polars' read_/scan_ functions; the call may span lines,
as formatters write it) by a path the file itself names (a literal, or a constant, join,
pathlib `/` or f-string worked out by `read_paths`) and that file exists inside a workspace
folder, only its header is read: a bounded number of (decompressed, for .gz / .bz2 / .xz)
bytes for text formats, the schema for parquet (with pyarrow, if installed), the first row
for excel (with openpyxl, if installed). The note names columns (and parquet dtypes), never
a data value. A path that resolves outside the workspace folders, links included, is never
opened. A data file the code names only in a string (an argument of a loader from another
module, a constant, a CLI default) is read as its suffix says, and noted at its first mention
unless a read notes it."""

from __future__ import annotations

import ast
import bz2
import csv
import gzip
import io
import json
import lzma
import posixpath
import re
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from . import loader_reads, read_paths
from .calls import split_call

MAX_HEADER_BYTES = 64 * 1024
MAX_EXCEL_BYTES = 50_000_000
MAX_COLUMNS = 40
MAX_NAME_CHARS = 40
MAX_NOTE_CHARS = 400

# A reader called through its module (pd., np., pl.) or, after `from pandas import read_csv`, bare.
_READERS = r"read_(?:csv|table|parquet|excel|json|ndjson)|scan_(?:csv|parquet)|loadtxt|genfromtxt"
_READER_NAME = re.compile(rf"({_READERS})\s*\(")  # (no leading \b: it makes the scan of a long file slow)
_MODULE_BEFORE = re.compile(r"\b(?:pd|pandas|np|numpy|pl|polars)\s*\.\s*$")
_PATH_KEYWORD = re.compile(r"^\s*(?:filepath_or_buffer|path|io|fname|source)\s*=(?!=)")
_SEP = re.compile(r"""\b(?:sep|delimiter|separator)\s*=\s*([rR]?)(["'])(.{1,8}?)\2""")
_OPENERS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}  # what pandas infers from the suffix


@dataclass(frozen=True)
class DataRead:
    line: int        # 0-based line of the call in the text
    reader: str      # read_csv, read_parquet, ...
    path: str        # the path the call names (a literal, or worked out by read_paths)
    arguments: str   # the call's other arguments, as written
    relative_to_file: bool = False  # built from __file__: relative to the file's folder only


def _first_path(argument: str) -> ast.expr | None:
    try:
        return ast.parse(_PATH_KEYWORD.sub("", argument, count=1).strip(), mode="eval").body
    except SyntaxError:
        return None


def _imported_bare(text: str) -> frozenset[str]:
    """Readers imported by name (`from pandas import read_csv`), which may then be called bare."""
    found = re.findall(r"^[ \t]*from[ \t]+(?:pandas|numpy|polars)[\w.]*[ \t]+import[ \t]+([^\n#]+)", text, re.MULTILINE)
    return frozenset(re.findall(_READERS, " ".join(found)))



def find_reads(text: str) -> list[DataRead]:
    """Calls that read a data file by a path the text names, in order.

    Only calls are examined (a regular-expression scan for a reader's name, then up to
    MAX_CALL_CHARS of its arguments), so a long file costs little.
    """
    reads, through_loader = [], []
    loaders: loader_reads.Loaders | None = None
    bare: frozenset[str] | None = None
    line_number, counted_to = 0, 0
    names = read_paths.Assignments(text)
    for match in _READER_NAME.finditer(text):
        reader = match.group(1)
        before = text[max(0, match.start() - 24):match.start()]
        if before[-1:].isalnum() or before[-1:] == "_":
            continue  # part of a longer name
        if not _MODULE_BEFORE.search(before):
            if before[-1:] == "." or before.endswith("def "):
                continue  # a method of something else, or someone's own function
            bare = _imported_bare(text) if bare is None else bare
            if reader not in bare:
                continue
        first, rest = split_call(text, match.end())
        expression = _first_path(first)
        found = None if expression is None else read_paths.path_of(expression, names, match.start())
        if found is None:
            if expression is not None:  # perhaps built from the parameters of the user's own loader
                loaders = loaders or loader_reads.Loaders(text, names)
                through_loader.extend((offset, reader, path, rest, relative)
                                      for offset, path, relative in loaders.reads(match.start(), expression))
            continue
        line_number += text.count("\n", counted_to, match.start())
        counted_to = match.start()
        reads.append(DataRead(line_number, reader, found[0], rest, found[1]))
    if through_loader:
        reads.extend(DataRead(text.count("\n", 0, offset), *read) for offset, *read in through_loader)
        reads = sorted(set(reads), key=lambda read: read.line)
    return reads


NAMED = "named"      # DataRead.reader of a data file the code names without a reader we know
MAX_NAMED_FILES = 32  # string literals looked at per text
_NAMED_FILE = re.compile(r"""(["'])([^"'\n\\{}]{1,200}?\.(?:csv|tsv|parquet|pq|jsonl?|ndjson|xlsx|xlsm)"""
                         r"""(?:\.(?:gz|bz2|xz))?)\1""", re.IGNORECASE)


def named_files(text: str) -> list[DataRead]:
    """String literals that name a data file (by its suffix), wherever they are: an argument of
    the user's loader in another module (`load_sales("data/sales.csv")`), a constant, a CLI
    default. The caller notes only those that exist and that no read already covers."""
    found, line_number, counted_to = [], 0, 0
    for match in _NAMED_FILE.finditer(text):
        line_number += text.count("\n", counted_to, match.start())
        counted_to = match.start()
        found.append(DataRead(line_number, NAMED, match.group(2), ""))
        if len(found) == MAX_NAMED_FILES:
            break
    return found


def separator_of(arguments: str) -> str | None:
    """The `sep=` / `delimiter=` a call gives, as Python reads the literal (`"\\t"` is a tab)."""
    found = _SEP.search(arguments)
    if not found:
        return None
    prefix, quote, body = found.groups()
    if prefix:
        return body
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "\s" and the like: invalid escapes stay as written
            return ast.literal_eval(quote + body + quote)
    except (ValueError, SyntaxError):
        return body


def inside(path: Path, roots: Sequence[Path]) -> Path | None:
    """`path` with links resolved, when it is a file inside one of `roots`; else None."""
    try:
        resolved = path.expanduser().resolve()
    except (OSError, RuntimeError):
        return None
    for root in roots:
        root = root.resolve()
        if root in resolved.parents and resolved.is_file():
            return resolved
    return None


def _clip(names: list[str]) -> list[str]:
    names = [n.strip().replace("\n", " ")[:MAX_NAME_CHARS] for n in names[:MAX_COLUMNS]]
    return [n for n in names if n]


def _head(path: Path) -> bytes:
    """Up to MAX_HEADER_BYTES of the file's content, decompressed when its suffix says so."""
    opener = _OPENERS.get(path.suffix.lower(), open)
    with opener(path, "rb") as handle:
        return handle.read(MAX_HEADER_BYTES)


def _first_line(path: Path) -> str | None:
    data = _head(path)
    line, newline, _ = data.partition(b"\n")
    if b"\x00" in line or (not newline and len(data) == MAX_HEADER_BYTES):
        return None  # binary, or no end of the first line within the bound: not a header
    try:
        return line.decode("utf-8-sig").rstrip("\r")
    except UnicodeDecodeError:
        return None


def _looks_numeric(field: str) -> bool:
    try:
        float(field)
        return True
    except ValueError:
        return False


def text_columns(path: Path, separator: str | None) -> list[str] | None:
    """Column names from the first line of a delimited text file (csv, tsv, txt).

    As pandas does, a separator of more than one character is a regular expression (`\\s+`).
    """
    line = _first_line(path)
    if not line or not line.strip():
        return None
    if separator is None:
        try:
            separator = csv.Sniffer().sniff(line, delimiters=",;\t|").delimiter
        except csv.Error:
            separator = ","
    if len(separator) > 1:
        try:
            names = re.split(separator, line.strip())
        except re.error:
            return None
    else:
        names = next(csv.reader(io.StringIO(line), delimiter=separator), [])
    if not names or all(_looks_numeric(n) for n in names if n.strip()):
        return None  # a first row of numbers is data, not a header
    return _clip(names)


def json_columns(path: Path) -> list[str] | None:
    """Keys of the first record of a JSON array of objects or of a JSON-lines file."""
    text = _head(path).decode("utf-8-sig", errors="replace").lstrip()
    decoder = json.JSONDecoder()
    start = 1 if text.startswith("[") else 0
    try:
        first, _ = decoder.raw_decode(text[start:].lstrip())
    except ValueError:
        return None
    if not isinstance(first, dict):
        return None
    return _clip([str(k) for k in first])


def parquet_columns(path: Path) -> list[str] | None:
    """Names and types from the parquet footer (the schema only); None without pyarrow."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        return None
    schema = pq.read_schema(path)
    return _clip([f"{field.name} ({field.type})" for field in schema])


def excel_columns(path: Path) -> list[str] | None:
    """The first row of the first sheet; None without openpyxl or for a large workbook."""
    try:
        import openpyxl
    except ImportError:
        return None
    if path.suffix.lower() not in (".xlsx", ".xlsm") or path.stat().st_size > MAX_EXCEL_BYTES:
        return None
    book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        row = next(book.worksheets[0].iter_rows(min_row=1, max_row=1, values_only=True), None)
    finally:
        book.close()
    names = [str(v) for v in row or () if v is not None]
    return _clip(names) if names and not all(_looks_numeric(n) for n in names) else None


def columns_of(path: Path, read: DataRead) -> list[str] | None:
    """The column names of an existing file, read as `read` reads it; None when unknown."""
    if read.reader in ("read_csv", "scan_csv", "read_table", "loadtxt", "genfromtxt"):
        if re.search(r"\bheader\s*=\s*None\b|\bhas_header\s*=\s*False\b", read.arguments):
            return None
        sep = separator_of(read.arguments)
        default = "\t" if read.reader == "read_table" else ("," if read.reader in ("read_csv", "scan_csv") else None)
        if read.reader in ("loadtxt", "genfromtxt") and not re.search(r"\bnames\s*=\s*True|\bskiprows\s*=\s*1\b",
                                                                          read.arguments):
            return None  # numpy reads numbers; only a declared header row has names
        return text_columns(path, sep if sep is not None else default)
    if read.reader in ("read_json", "read_ndjson"):
        return json_columns(path)
    if read.reader in ("read_parquet", "scan_parquet"):
        return parquet_columns(path)
    if read.reader == "read_excel":
        return excel_columns(path)
    if read.reader == NAMED:  # read as its suffix says, the separator sniffed
        kind = path.name.lower().removesuffix(path.suffix.lower()) if path.suffix.lower() in _OPENERS \
            else path.name.lower()
        if kind.endswith((".parquet", ".pq")):
            return parquet_columns(path)
        if kind.endswith((".json", ".jsonl", ".ndjson")):
            return json_columns(path)
        if kind.endswith((".xlsx", ".xlsm")):
            return excel_columns(path)
        return text_columns(path, None)
    return None


def note_for(name: str, columns: list[str]) -> str:
    note = f"# {name} columns: {', '.join(columns)}"
    return note if len(note) <= MAX_NOTE_CHARS else note[:MAX_NOTE_CHARS].rsplit(",", 1)[0] + ", ..."


class HeaderReader:
    """Reads headers for the reads in a text, remembering each file's columns by size and mtime."""

    def __init__(self, max_entries: int = 256):
        self.max_entries = max_entries
        self._cache: OrderedDict[tuple[str, str], tuple[tuple[int, int], list[str] | None]] = OrderedDict()

    def columns(self, path: Path, read: DataRead) -> list[str] | None:
        key = (str(path), read.reader + read.arguments)
        try:
            stat = path.stat()
        except OSError:
            return None
        stamp = (stat.st_size, stat.st_mtime_ns)
        held = self._cache.get(key)
        if held is not None and held[0] == stamp:
            return held[1]
        try:
            found = columns_of(path, read)
        except Exception:  # a damaged or unexpected file gives no note, never an error in the editor
            found = None
        self._cache[key] = (stamp, found)
        while len(self._cache) > self.max_entries:
            self._cache.popitem(last=False)
        return found

    def notes(self, text: str, folder: Path | None, roots: Sequence[Path]) -> tuple[tuple[int, str], ...]:
        """(line, comment) for each read in `text` of a file inside `roots` whose columns are known.

        Relative paths are taken from the file's `folder`, then from each workspace folder
        (scripts are often run from the project's root).
        """
        notes, seen = [], set()
        reads = find_reads(text)
        # A literal that is (part of) a read's path is that read's, found or not.
        in_reads = {(read.line, posixpath.basename(read.path)) for read in reads}
        # A file named by a read is noted there; one only named elsewhere, at its first mention.
        named_seen: set[str] = set()  # a path written again resolves the same: not resolved again
        for read in [*reads, *named_files(text)]:
            if read.reader == NAMED:
                if (read.line, posixpath.basename(read.path)) in in_reads or read.path in named_seen:
                    continue
                named_seen.add(read.path)
            path = self._resolve(read, folder, roots)
            if path is None or (read.reader == NAMED and path in seen):
                continue
            seen.add(path)
            columns = self.columns(path, read)
            if columns:
                notes.append((read.line, note_for(Path(read.path).name, columns)))
        return tuple(sorted(notes, key=lambda note: note[0]))

    @staticmethod
    def _resolve(read: DataRead, folder: Path | None, roots: Sequence[Path]) -> Path | None:
        """The existing file inside `roots` that a read names: relative paths from the file's
        `folder`, then from each workspace folder (scripts are often run from the root)."""
        written = Path(read.path)
        if written.is_absolute():
            return inside(written, roots)
        bases = [folder] if read.relative_to_file else [folder, *roots]
        return next((p for p in (inside(b / written, roots) for b in bases if b is not None) if p is not None), None)
