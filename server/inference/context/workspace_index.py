"""The workspace's Python files, kept as retrieval chunks and top-level definitions.

Files come in as text (the language server reads them with the trainer's discovery and
hygiene rules; the evaluation gives its train-split files). The index refuses any path
that does not resolve inside one of its root folders, so a symlink or a `..` cannot
make it hold text from elsewhere, and it stops taking files at fixed limits so its
memory stays bounded. Searching uses a snapshot (`refresh()` builds it, `current()`
returns the last one), so a request never waits for the index to be rebuilt.
"""

from __future__ import annotations

import ast
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from ghostframe.server.inference.context.bm25 import BM25, Bags, Vocabulary

MAX_DEFINITION_LINES = 8
MAX_DEFINITION_CHARS = 600
MAX_CLASS_METHODS = 8


@dataclass(frozen=True)
class IndexLimits:
    """What the index holds at most: its memory is bounded by these."""

    max_files: int = 5_000
    max_file_chars: int = 1_000_000
    max_total_chars: int = 50_000_000
    window_lines: int = 12   # a chunk is this many lines ...
    stride_lines: int = 6    # ... starting every this many lines (sliding windows, as in RepoCoder)


@dataclass(frozen=True)
class Chunk:
    path: str    # the file's path relative to its workspace folder
    start: int   # 0-based first line
    text: str


@dataclass
class IndexedFile:
    path: str
    module: tuple[str, ...]                 # ("pkg", "sub", "mod"); a package's __init__ ends in "__init__"
    definitions: dict[str, str]             # top-level name -> its signature and short body
    imported: dict[str, tuple[str, ...]]    # name -> the absolute module it was imported from (re-exports)
    text: str
    chunk_starts: np.ndarray                # first line of each chunk
    line_offsets: np.ndarray                # character offset of each line start, and the text's end
    bags: Bags                              # each chunk's tokens
    chars: int

    def chunk(self, number: int, window_lines: int) -> Chunk:
        start = int(self.chunk_starts[number])
        end = min(start + window_lines, len(self.line_offsets) - 1)
        return Chunk(self.path, start, self.text[self.line_offsets[start]:self.line_offsets[end]].rstrip("\n"))


def module_parts(relative_path: str) -> tuple[str, ...]:
    """('pkg', 'mod') for 'pkg/mod.py'; ('pkg', '__init__') for 'pkg/__init__.py'."""
    parts = relative_path.split("/")
    return (*parts[:-1], parts[-1].rsplit(".", 1)[0])


def resolve_module(current: tuple[str, ...], level: int, name: str | None) -> tuple[str, ...]:
    """The absolute module of `from {'.' * level}{name} import ...` written in module `current`."""
    absolute = tuple(name.split(".")) if name else ()
    if level == 0:
        return absolute
    package = current[:-1]  # a module's package; for pkg/__init__ that is pkg itself
    base = package[: len(package) - (level - 1)] if level - 1 <= len(package) else ()
    return (*base, *absolute)


def _definition_text(node: ast.stmt, lines: list[str]) -> str:
    """The signature and the first lines of a top-level definition, as source text."""
    start = node.lineno - 1
    end = node.end_lineno or node.lineno
    if isinstance(node, ast.ClassDef):
        body = node.body
        header_end = body[0].lineno - 1 if body else end
        shown = lines[start:header_end]
        if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
            shown.append(lines[body[0].lineno - 1])  # first line of the docstring
        methods = [s for s in body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))]
        for method in methods[:MAX_CLASS_METHODS]:
            first_body = method.body[0].lineno - 1 if method.body else method.lineno
            shown.extend(lines[method.lineno - 1:max(first_body, method.lineno)])
        if len(methods) > MAX_CLASS_METHODS:
            shown.append("    ...")
    else:
        shown = lines[start:min(end, start + MAX_DEFINITION_LINES)]
        if end > start + MAX_DEFINITION_LINES:
            shown.append(" " * (len(lines[start]) - len(lines[start].lstrip())) + "    ...")
    text = "\n".join(line.rstrip() for line in shown)
    return text if len(text) <= MAX_DEFINITION_CHARS else text[:MAX_DEFINITION_CHARS].rsplit("\n", 1)[0] + "\n..."


def read_definitions(text: str, module: tuple[str, ...]) -> tuple[dict[str, str], dict[str, tuple[str, ...]]]:
    """Top-level definitions (functions, classes, assigned names) and imported names of a file.

    A file that does not parse (say, half-typed) has none; its chunks still count.
    """
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return {}, {}
    lines = text.split("\n")
    definitions: dict[str, str] = {}
    imported: dict[str, tuple[str, ...]] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            definitions[node.name] = _definition_text(node, lines)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    definitions[target.id] = _definition_text(node, lines)
        elif isinstance(node, ast.ImportFrom):
            source = resolve_module(module, node.level, node.module)
            for alias in node.names:
                if alias.name != "*":
                    imported[alias.asname or alias.name] = source
    return definitions, imported


def chunk_starts(text: str, limits: IndexLimits) -> list[tuple[int, str]]:
    """(first line, text) of sliding windows of lines; windows with no code are left out."""
    lines = text.split("\n")
    last_start = max(0, len(lines) - limits.window_lines)
    starts = list(range(0, last_start + 1, limits.stride_lines))
    if starts[-1] != last_start:
        starts.append(last_start)  # the end of the file is always covered
    windows = ((start, "\n".join(lines[start:start + limits.window_lines])) for start in starts)
    return [(start, window) for start, window in windows if window.strip()]


def line_offsets(text: str) -> np.ndarray:
    lengths = np.fromiter((len(line) + 1 for line in text.split("\n")), dtype=np.int64)
    return np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)


@dataclass
class Snapshot:
    """A searchable, immutable view of the index at one moment."""

    generation: int
    files: dict[str, IndexedFile]
    modules: dict[tuple[str, ...], list[str]]   # every suffix of a module path -> files, sorted
    chunk_paths: np.ndarray                     # file number per chunk, for excluding the current file
    chunk_numbers: np.ndarray                   # the chunk's number within its file
    path_numbers: dict[str, int]
    bm25: BM25
    window_lines: int

    @property
    def chunk_count(self) -> int:
        return len(self.chunk_paths)

    def chunk(self, number: int) -> Chunk:
        file = self.files[self._paths[int(self.chunk_paths[number])]]
        return file.chunk(int(self.chunk_numbers[number]), self.window_lines)

    @property
    def chunks(self) -> list[Chunk]:
        """Every chunk (for tests and reports: searching never builds this list)."""
        return [self.chunk(i) for i in range(self.chunk_count)]

    def __post_init__(self):
        self._paths = list(self.path_numbers)

    def find_module(self, parts: tuple[str, ...]) -> IndexedFile | None:
        """The file for a dotted module (its package `__init__` for a package), shortest path first."""
        for key in (parts, (*parts, "__init__")):
            if found := self.modules.get(key):
                return self.files[found[0]]
        return None

    def similar_chunks(self, query: Iterable[str], k: int, exclude_path: str | None) -> list[Chunk]:
        """The `k` chunks most similar to the query, best first, none overlapping another."""
        allowed = None
        if exclude_path is not None and exclude_path in self.path_numbers:
            allowed = self.chunk_paths != self.path_numbers[exclude_path]
        chosen: list[Chunk] = []
        seen_lines: set[str] = set()
        for i, _ in self.bm25.top(list(query), 4 * k, allowed):
            chunk = self.chunk(i)
            if any(c.path == chunk.path and abs(c.start - chunk.start) < self.window_lines for c in chosen):
                continue  # overlaps a chunk already chosen
            lines = {line.strip() for line in chunk.text.split("\n") if len(line.strip()) > 3}
            if lines and len(lines & seen_lines) * 2 > len(lines):
                continue  # mostly repeats code already chosen (a notebook and its script, copied code)
            chosen.append(chunk)
            seen_lines |= lines
            if len(chosen) == k:
                break
        return chosen


@dataclass
class WorkspaceIndex:
    """Files of the workspace folders `roots`, by their path relative to their folder."""

    roots: tuple[Path, ...]
    limits: IndexLimits = field(default_factory=IndexLimits)

    def __post_init__(self):
        self.roots = tuple(Path(r).expanduser().resolve() for r in self.roots)
        self._files: dict[str, IndexedFile] = {}
        self._chars = 0
        self._lock = threading.Lock()
        self._generation = 0
        self._snapshot: Snapshot | None = None
        self.refused: Counter = Counter()  # why files were not taken (outside, limits)
        self.vocabulary = Vocabulary()

    # --- paths -------------------------------------------------------------------------

    def relative_path(self, path: str | Path) -> str | None:
        """The path inside the workspace (posix, relative to its folder), or None when it is outside.

        Links are resolved first, so a link that points out of the workspace is outside.
        With several folders, the path is prefixed by its folder's name.
        """
        try:
            resolved = Path(path).expanduser().resolve()
        except (OSError, RuntimeError):
            return None
        for root in self.roots:
            if resolved == root or root in resolved.parents:
                relative = resolved.relative_to(root).as_posix()
                return f"{root.name}/{relative}" if len(self.roots) > 1 else relative
        return None

    # --- updates ----------------------------------------------------------------------

    def update(self, path: str | Path, text: str) -> bool:
        """Take (or replace) a file's text; False, counted in `refused`, when it may not be held."""
        relative = self.relative_path(path)
        if relative is None:
            self.refused["outside_workspace"] += 1
            return False
        if len(text) > self.limits.max_file_chars:
            self.refused["too_large"] += 1
            self.forget(path)
            return False
        module = module_parts(relative.split("/", 1)[1] if len(self.roots) > 1 else relative)
        definitions, imported = read_definitions(text, module)
        windows = chunk_starts(text, self.limits)
        entry = IndexedFile(relative, module, definitions, imported, text,
                            np.array([start for start, _ in windows], dtype=np.int32), line_offsets(text),
                            Bags.of([self.vocabulary.bag(window) for _, window in windows]), len(text))
        with self._lock:
            old = self._files.get(relative)
            old_chars = old.chars if old else 0
            if old is None and len(self._files) >= self.limits.max_files:
                self.refused["too_many_files"] += 1
                return False
            if self._chars - old_chars + entry.chars > self.limits.max_total_chars:
                self.refused["total_size"] += 1
                return False
            self._files[relative] = entry
            self._chars += entry.chars - old_chars
            self._generation += 1
        return True

    def forget(self, path: str | Path) -> bool:
        """Drop a file (deleted, or no longer admissible); True when it was held."""
        relative = self.relative_path(path)
        with self._lock:
            entry = self._files.pop(relative, None) if relative is not None else None
            if entry is None:
                return False
            self._chars -= entry.chars
            self._generation += 1
            return True

    def clear(self) -> None:
        with self._lock:
            self._files.clear()
            self._chars = 0
            self._generation += 1

    @property
    def paths(self) -> list[str]:
        with self._lock:
            return sorted(self._files)

    @property
    def total_chars(self) -> int:
        return self._chars

    @property
    def dirty(self) -> bool:
        snapshot = self._snapshot
        return snapshot is None or snapshot.generation != self._generation

    # --- snapshots ----------------------------------------------------------------------

    def refresh(self) -> Snapshot:
        """Build a searchable snapshot of what is held now (or return the current one if unchanged)."""
        with self._lock:
            if self._snapshot is not None and self._snapshot.generation == self._generation:
                return self._snapshot
            generation = self._generation
            files = dict(sorted(self._files.items()))
        modules: dict[tuple[str, ...], list[str]] = {}
        numbers = {}
        for number, (path, entry) in enumerate(files.items()):
            numbers[path] = number
            for size in range(1, len(entry.module) + 1):
                modules.setdefault(entry.module[-size:], []).append(path)
        for paths in modules.values():
            paths.sort(key=lambda p: (p.count("/"), p))
        counts = [len(entry.chunk_starts) for entry in files.values()]
        chunk_paths = np.repeat(np.arange(len(files), dtype=np.int32), counts)
        firsts = np.repeat(np.cumsum([0] + counts[:-1]), counts) if counts else np.zeros(0, np.int64)
        chunk_numbers = (np.arange(len(chunk_paths)) - firsts).astype(np.int32)
        bags = Bags.join([entry.bags for entry in files.values()]) if files else Bags.of([])
        snapshot = Snapshot(generation, files, modules, chunk_paths, chunk_numbers, numbers,
                            BM25(bags, self.vocabulary), self.limits.window_lines)
        with self._lock:
            if self._snapshot is None or self._snapshot.generation < generation:
                self._snapshot = snapshot
        return snapshot

    def current(self) -> Snapshot | None:
        """The last snapshot built (possibly a little behind the latest updates), without waiting."""
        return self._snapshot
