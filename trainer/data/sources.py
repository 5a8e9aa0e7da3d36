"""Find the candidate source files in the user's folders and data sets, read-only.

Folders are walked without following links and without descending into what is never
the user's own code: version-control data, virtualenvs and `site-packages`,
`node_modules`, build and dist output, caches, notebook checkpoints, and whatever the
folder's `.gitignore` files (and `.git/info/exclude`) ignore. Only `.py` and `.ipynb`
files are candidates. Nothing here ever opens a file for writing.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pathspec

SOURCE_SUFFIXES = (".py", ".ipynb")
SKIPPED_DIR_NAMES = frozenset(
    {
        ".git", ".hg", ".svn", ".bzr",
        ".venv", "venv", "virtualenv", ".virtualenv", ".conda",
        "site-packages", "dist-packages", "node_modules",
        "build", "dist", "_build", ".eggs", "__pypackages__",
        "__pycache__", ".ipynb_checkpoints", ".tox", ".nox",
        ".mypy_cache", ".pytest_cache", ".ruff_cache", ".cache",
    }
)
# A folder holding one of these is an environment, whatever its name.
ENVIRONMENT_MARKERS = ("pyvenv.cfg", "conda-meta")


@dataclass(frozen=True)
class CandidateFile:
    """One file (or data-set record) that may become training text.

    `relative_path` is relative to its source root and decides the split; `path` is set
    for files on disk and `text` for data-set records.
    """

    source: str
    relative_path: str
    path: Path | None = None
    text: str | None = None

    @property
    def is_notebook(self) -> bool:
        return self.relative_path.endswith(".ipynb")


def is_skipped_dir(directory: Path) -> bool:
    """True for folders that are never the user's own code (see SKIPPED_DIR_NAMES)."""
    name = directory.name
    if name in SKIPPED_DIR_NAMES or name.endswith(".egg-info"):
        return True
    return any((directory / marker).exists() for marker in ENVIRONMENT_MARKERS)


def _read_ignore_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []


class GitIgnoreRules:
    """The `.gitignore` files of a tree, each applied relative to its own folder.

    Deeper files are consulted last, so their patterns (negations included) win, as in git.
    """

    def __init__(self, root: Path):
        self.root = root
        self._specs: dict[str, pathspec.GitIgnoreSpec] = {}
        exclude = _read_ignore_lines(root / ".git" / "info" / "exclude")
        if exclude:
            self._specs["\0info"] = pathspec.GitIgnoreSpec.from_lines(exclude)

    def enter(self, directory_rel: str) -> None:
        """Read the `.gitignore` of a folder (relative to the root, "" for the root) on entering it."""
        lines = _read_ignore_lines(self.root / directory_rel / ".gitignore")
        if lines:
            self._specs[directory_rel] = pathspec.GitIgnoreSpec.from_lines(lines)

    def ignored(self, relative_path: str, is_dir: bool) -> bool:
        verdict = False
        for base, spec in self._specs.items():
            if base == "\0info":
                sub = relative_path
            elif base == "":
                sub = relative_path
            elif relative_path.startswith(base + "/"):
                sub = relative_path[len(base) + 1 :]
            else:
                continue
            result = spec.check_file(sub + "/" if is_dir else sub)
            if result.include is not None:
                verdict = result.include
        return verdict


def iter_folder_files(root: Path, stats: Counter, exclude: tuple[Path, ...] = ()) -> Iterator[CandidateFile]:
    """Yield the `.py`/`.ipynb` files under `root` in sorted order, counting what was skipped."""
    root = root.resolve()
    rules = GitIgnoreRules(root)
    excluded = {p.resolve() for p in exclude}
    for directory, dirnames, filenames in os.walk(root):
        directory_path = Path(directory)
        directory_rel = directory_path.relative_to(root).as_posix()
        directory_rel = "" if directory_rel == "." else directory_rel
        rules.enter(directory_rel)
        kept_dirs = []
        for name in sorted(dirnames):
            child = directory_path / name
            child_rel = f"{directory_rel}/{name}" if directory_rel else name
            if child.is_symlink() or child.resolve() in excluded:
                stats["skipped_dirs_link_or_output"] += 1
            elif is_skipped_dir(child):
                stats["skipped_dirs_environment_vcs_build"] += 1
            elif rules.ignored(child_rel, is_dir=True):
                stats["skipped_dirs_gitignore"] += 1
            else:
                kept_dirs.append(name)
        dirnames[:] = kept_dirs  # os.walk descends only into these
        for name in sorted(filenames):
            if not name.endswith(SOURCE_SUFFIXES):
                continue
            relative = f"{directory_rel}/{name}" if directory_rel else name
            path = directory_path / name
            stats["seen"] += 1
            if path.is_symlink() or not path.is_file():
                stats["skipped_link_or_special"] += 1
            elif rules.ignored(relative, is_dir=False):
                stats["skipped_gitignore"] += 1
            else:
                yield CandidateFile(source=str(root), relative_path=relative, path=path)


def _load_hf_dataset(name_or_path: str, split: str, streaming: bool):
    """A `datasets` split from a hub name, a save_to_disk folder, or local json/csv/parquet files."""
    import datasets

    path = Path(name_or_path).expanduser()
    if path.is_dir() and any((path / name).is_file() for name in ("dataset_info.json", "dataset_dict.json")):
        loaded = datasets.load_from_disk(str(path))
        loaded = loaded[split] if isinstance(loaded, datasets.DatasetDict) else loaded
        return loaded.to_iterable_dataset() if streaming else loaded
    if path.is_file():
        kind = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}.get(path.suffix)
        if kind is None:
            raise ValueError(f"{path}: a local data set must be .json, .jsonl, .csv or .parquet")
        return datasets.load_dataset(kind, data_files=str(path), split="train", streaming=streaming)
    return datasets.load_dataset(name_or_path, split=split, streaming=streaming)


def iter_dataset_records(
    name_or_path: str,
    stats: Counter,
    split: str = "train",
    text_column: str = "content",
    streaming: bool = False,
    limit: int | None = None,
) -> Iterator[CandidateFile]:
    """Yield records of a Hugging Face data set of code files (e.g. huggingface-course/codeparrot-ds-train).

    The text is `text_column`; the split key is `repo_name/path` when the set has those
    columns (as codeparrot does), else the record's index. `.ipynb` paths are notebooks.
    """
    dataset = _load_hf_dataset(name_or_path, split, streaming)
    for index, record in enumerate(dataset):
        if limit is not None and index >= limit:
            break
        text = record.get(text_column)
        if text is None:
            raise ValueError(
                f"data set {name_or_path} has no column {text_column!r} (it has {sorted(record)}); "
                "choose one with --dataset-text-column"
            )
        path = str(record.get("path") or f"record-{index}.py")
        relative = f"{record['repo_name']}/{path}" if record.get("repo_name") else path
        if not relative.endswith(SOURCE_SUFFIXES):
            relative += ".py"
        stats["seen"] += 1
        yield CandidateFile(source=name_or_path, relative_path=relative, text=str(text))
