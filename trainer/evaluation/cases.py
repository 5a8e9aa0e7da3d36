"""Next-line completion cases from held-out files, as line-level benchmarks build them.

A case is one line of a file that the shared train/valid split puts in *valid* and that
passes the trainer's data pipeline (`iter_clean_files`: discovery, notebook extraction,
data-science filter, dedup, scrubbing), so evaluation never sees a file training saw.

The editor situation a case stands for: the user is on a fresh line in the middle of
the file, the indentation already typed, and the rest of the file below the cursor.
So the prompt is everything before the line plus its indentation, the text after the
cursor is the rest of the file from the next line on, and the reference is the rest of
the line (CodeXGLUE line completion asks for the same thing, without the text below).
"""

from __future__ import annotations

import ast
import random
from dataclasses import asdict, dataclass
from typing import Iterable, Iterator

from ghostframe.server.inference.prompt import CompletionContext
from ghostframe.trainer.data.corpus import CleanFile, CorpusOptions, DataReport, DatasetSource, iter_clean_files
from ghostframe.trainer.data.split import VALID

DEFAULT_PER_FILE = 20
DEFAULT_MIN_CHARS = 4
DEFAULT_SEED = 0


@dataclass(frozen=True)
class Case:
    """One line to predict: `file` and 0-based `line` say where, the rest is the editor state."""

    file: str  # the file's name in reports: its relative path (prefixed by its source when several)
    line: int
    indentation: str
    reference: str
    before: str
    after: str
    snippets: tuple[str, ...] = ()  # repository context (see evaluation.context), prompt only
    notes: tuple[tuple[int, str], ...] = ()  # data-file column notes, prompt only

    @property
    def id(self) -> str:
        return f"{self.file}:{self.line + 1}"

    @property
    def context(self) -> CompletionContext:
        return CompletionContext(before=self.before, after=self.after, snippets=self.snippets, notes=self.notes)

    @property
    def document(self) -> str:
        """The whole editor buffer: the file with the case's line reduced to its indentation."""
        return self.before + self.after

    def summary(self) -> dict:
        data = asdict(self)
        del data["before"], data["after"], data["snippets"], data["notes"]
        return {"id": self.id, **data}


def _string_rows(tree: ast.AST) -> set[int]:
    """1-based rows that belong to docstrings, bare string statements or multi-line strings."""
    rows: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Expr) and isinstance(node.value, (ast.Constant, ast.JoinedStr)):
            if isinstance(node.value, ast.JoinedStr) or isinstance(node.value.value, str):
                rows.update(range(node.lineno, node.end_lineno + 1))  # docstring or bare string
        elif isinstance(node, (ast.Constant, ast.JoinedStr)) and node.end_lineno > node.lineno:
            if isinstance(node, ast.JoinedStr) or isinstance(node.value, (str, bytes)):
                rows.update(range(node.lineno + 1, node.end_lineno + 1))  # inside a multi-line string
    return rows


def eligible_lines(text: str, min_chars: int = DEFAULT_MIN_CHARS) -> list[int] | None:
    """0-based lines worth predicting, or None when the file is not valid Python.

    Skipped: blank lines, comments, docstrings and other string-only lines, the inside of
    multi-line strings, and lines with fewer than `min_chars` characters of code.
    """
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return None
    strings = _string_rows(tree)
    lines = text.split("\n")
    return [
        i for i, line in enumerate(lines)
        if len(line.strip()) >= min_chars and not line.lstrip().startswith("#") and i + 1 not in strings
    ]


def case_at(file: str, lines: list[str], index: int) -> Case:
    """The case for line `index` of a file split into `lines`."""
    line = lines[index]
    indentation = line[: len(line) - len(line.lstrip())]
    head = "\n".join(lines[:index])
    before = (head + "\n" if index else "") + indentation
    after = "\n" + "\n".join(lines[index + 1:]) if index + 1 < len(lines) else ""
    return Case(file=file, line=index, indentation=indentation, reference=line.strip(), before=before, after=after)


def file_cases(file: str, text: str, per_file: int, seed: int, min_chars: int = DEFAULT_MIN_CHARS) -> list[Case] | None:
    """Up to `per_file` cases of one file, in line order; None when the file does not parse.

    The choice depends only on the seed, the file's name and its text, so adding or
    removing other files never changes a file's cases.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    eligible = eligible_lines(text, min_chars)
    if eligible is None:
        return None
    chosen = sorted(random.Random(f"{seed}:{file}").sample(eligible, min(per_file, len(eligible))))
    lines = text.split("\n")
    return [case_at(file, lines, index) for index in chosen]


@dataclass
class CaseSet:
    """The cases of a run, with what was read to get them (for the report)."""

    cases: list[Case]
    valid_files: list[str]
    unparsable_files: list[str]
    data: dict
    data_summary: str = ""


def _display_names(files: list[CleanFile]) -> dict[int, str]:
    sources = {f.source for f in files}
    if len(sources) <= 1:
        return {id(f): f.relative_path for f in files}
    short = {s: s.rstrip("/").rsplit("/", 1)[-1] for s in sources}
    return {id(f): f"{short[f.source]}/{f.relative_path}" for f in files}


def sample_cases(
    files: Iterable[CleanFile],
    per_file: int = DEFAULT_PER_FILE,
    max_cases: int | None = None,
    seed: int = DEFAULT_SEED,
    min_chars: int = DEFAULT_MIN_CHARS,
) -> CaseSet:
    """Cases from the valid files among `files`; train files are never looked at.

    With `max_cases`, a seeded random subset of that size is kept (in file and line order); a
    smaller `max_cases` keeps a subset of what a larger one keeps.
    """
    valid = [f for f in files if f.split == VALID]
    names = _display_names(valid)
    cases: list[Case] = []
    unparsable: list[str] = []
    for clean in valid:
        found = file_cases(names[id(clean)], clean.text, per_file, seed, min_chars)
        if found is None:
            unparsable.append(names[id(clean)])
        else:
            cases.extend(found)
    if max_cases is not None and len(cases) > max_cases:
        # The first `max_cases` of one seeded order, so a smaller sample is part of a larger one
        # (a gate cut down by --budget finds the base answers stored for the full one). Up to
        # about 1,000 candidates this keeps the 200 that sample(range(n), 200) chose before.
        order = random.Random(seed).sample(range(len(cases)), len(cases))
        keep = set(order[:max_cases])
        cases = [case for i, case in enumerate(cases) if i in keep]
    return CaseSet(cases, [names[id(f)] for f in valid], unparsable, {})


def iter_valid_files(
    folders: Iterable[str], datasets: Iterable[DatasetSource], options: CorpusOptions, report: DataReport,
) -> Iterator[CleanFile]:
    """The trainer's clean files (same pipeline, same split), valid ones only."""
    return (f for f in iter_clean_files(folders, datasets, options, report) if f.split == VALID)


def load_cases(
    folders: Iterable[str],
    datasets: Iterable[DatasetSource] = (),
    options: CorpusOptions | None = None,
    per_file: int = DEFAULT_PER_FILE,
    max_cases: int | None = None,
    seed: int = DEFAULT_SEED,
    min_chars: int = DEFAULT_MIN_CHARS,
) -> CaseSet:
    """Read the sources through the trainer's pipeline and sample cases from the valid files."""
    report = DataReport()
    valid = list(iter_valid_files(folders, datasets, options or CorpusOptions(), report))
    case_set = sample_cases(valid, per_file, max_cases, seed, min_chars)
    case_set.data, case_set.data_summary = report.to_dict(), report.summary()
    return case_set
