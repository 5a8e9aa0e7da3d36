"""Find the candidate source files in the user's folders, read-only.

Folders are walked without following links and without descending into what is never
the user's own code: version-control data, virtualenvs and `site-packages`,
`node_modules`, build and dist output, caches, notebook checkpoints, and whatever the
folder's `.gitignore` files (and `.git/info/exclude`) ignore. Only `.py` and `.ipynb`
files are candidates. Nothing here ever opens a file for writing.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Iterator, Sequence

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


def walk_source_files(root: Path, stats: Counter, exclude: tuple[Path, ...] = ()) -> Iterator[tuple[str, Path]]:
    """(path relative to `root`, path) of each `.py`/`.ipynb` file under `root`, in sorted order,
    counting in `stats` what was seen and what was skipped (by reason)."""
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
                yield relative, path


def admissible(path: Path, roots: Sequence[Path]) -> bool:
    """Whether `walk_source_files` would find `path` under one of `roots`: a .py/.ipynb file
    inside a root, not a link, not under a skipped folder, not ignored by `.gitignore`."""
    if path.suffix not in SOURCE_SUFFIXES or path.is_symlink():
        return False
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError):
        return False
    for root in roots:
        root = root.resolve()
        if root not in resolved.parents:
            continue
        parts = resolved.relative_to(root).parts
        rules = GitIgnoreRules(root)
        rules.enter("")
        for depth in range(1, len(parts)):
            folder = "/".join(parts[:depth])
            if is_skipped_dir(root / folder) or rules.ignored(folder, is_dir=True):
                return False
            rules.enter(folder)
        return not rules.ignored("/".join(parts), is_dir=False)
    return False
