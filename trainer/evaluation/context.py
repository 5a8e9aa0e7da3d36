"""`--context none|repo|data|all` for the evaluation, and the data-aware case selection.

`repo`: the "workspace" is the evaluated sources' train-split files only, indexed as the
server indexes a workspace; held-out files (the case's own and every other) are never in
the index, so the score is what a user gets on a new file of their repository.
`data`: the column names of data files that a case's file reads by a literal path above
the line, as the server adds them. Both go through the server's own retrieval and
prompt code (`inference.context`), so the evaluation measures what the editor shows.

`--column-lines` keeps only the lines that name a column of such a data file in a
string literal: the lines where knowing the data can matter.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable

from ghostframe.server.inference.context import CONTEXT_MODES
from ghostframe.server.inference.context.data_headers import HeaderReader
from ghostframe.server.inference.context.retrieval import RetrievalOptions, retrieve
from ghostframe.server.inference.context.workspace_index import WorkspaceIndex
from ghostframe.trainer.data.corpus import CorpusOptions, DataReport, DatasetSource, iter_clean_files
from ghostframe.trainer.data.split import TRAIN
from ghostframe.trainer.evaluation.cases import Case, CaseSet, _display_names


@dataclass
class _Sources:
    """Where each held-out file lies on disk, and the train-split files as (path, text)."""

    roots: tuple[Path, ...]
    paths: dict[str, Path]               # case file name -> its path on disk
    train: list[tuple[Path, str]]


def _read_sources(folders: list[str], datasets: Iterable[DatasetSource], options: CorpusOptions) -> _Sources:
    files = list(iter_clean_files(folders, datasets, options, DataReport()))
    on_disk = [f for f in files if Path(f.source).is_dir()]  # data-set records have no workspace
    valid = [f for f in files if f.split != TRAIN]
    names = _display_names(valid)
    return _Sources(
        roots=tuple(Path(f).expanduser().resolve() for f in folders),
        paths={names[id(f)]: Path(f.source) / f.relative_path for f in valid if Path(f.source).is_dir()},
        train=[(Path(f.source) / f.relative_path, f.text) for f in on_disk if f.split == TRAIN],
    )


def _quoted_names(reference: str) -> set[str]:
    return set(re.findall(r"""["']([^"'\n]+)["']""", reference))


def select_column_lines(cases: list[Case], sources: _Sources, max_cases: int | None, seed: int) -> list[Case]:
    """The cases whose line names, in a string literal, a column of a data file read above it."""
    headers = HeaderReader()
    kept = []
    for case in cases:
        path = sources.paths.get(case.file)
        if path is None:
            continue
        notes = headers.notes(case.before, path.parent, sources.roots)
        columns = {c.split(" (")[0] for _, note in notes for c in note.split(" columns: ", 1)[1].split(", ")}
        if columns & _quoted_names(case.reference):
            kept.append(case)
    if max_cases is not None and len(kept) > max_cases:
        keep = set(random.Random(seed).sample(range(len(kept)), max_cases))
        kept = [case for i, case in enumerate(kept) if i in keep]
    return kept


def with_context(cases: list[Case], sources: _Sources, mode: str,
                 options: RetrievalOptions = RetrievalOptions()) -> tuple[list[Case], dict]:
    """The cases with the server's snippets and data notes for `mode`, and what was indexed."""
    if mode not in CONTEXT_MODES:
        raise ValueError(f"context must be one of {', '.join(CONTEXT_MODES)}, not {mode!r}")
    info: dict = {"mode": mode}
    if mode == "none":
        return cases, info
    index = WorkspaceIndex(sources.roots)
    snapshot = None
    if mode in ("repo", "all"):
        for path, text in sources.train:
            index.update(path, text)
        snapshot = index.refresh()
        info.update(indexed_files=len(snapshot.files), indexed_chunks=len(snapshot.chunks))
    headers = HeaderReader()
    out = []
    for case in cases:
        path = sources.paths.get(case.file)
        relative = index.relative_path(path) if path is not None else None
        snippets = retrieve(snapshot, relative, case.before, case.after, options) if snapshot is not None else ()
        notes = ()
        if mode in ("data", "all") and path is not None:
            notes = headers.notes(case.before, path.parent, sources.roots)
        out.append(replace(case, snippets=snippets, notes=notes))
    info.update(cases_with_snippets=sum(bool(c.snippets) for c in out),
                cases_with_data_notes=sum(bool(c.notes) for c in out))
    return out, info


def apply_context(case_set: CaseSet, folders: list[str], datasets: Iterable[DatasetSource],
                  options: CorpusOptions, mode: str, column_lines: bool, max_cases: int | None,
                  seed: int) -> dict:
    """Select column lines and add context to `case_set.cases` in place; returns the context info."""
    if mode == "none" and not column_lines:
        return {"mode": mode}
    sources = _read_sources(folders, datasets, options)
    if column_lines:
        case_set.cases = select_column_lines(case_set.cases, sources, max_cases, seed)
    case_set.cases, info = with_context(case_set.cases, sources, mode)
    return info
