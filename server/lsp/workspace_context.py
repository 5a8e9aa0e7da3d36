"""The server's repository and data context: a background-built workspace index and, per
request, the snippets and data-file notes that go into the prompt.

Files are found and read by the rules the trainer's corpus also follows
(`inference.source_files`: `.gitignore`, virtualenvs and build folders skipped, size limit,
binary and generated files skipped, notebooks as their code cells), so the server indexes
what training would read. All index work runs on one background thread; a request only
reads the last snapshot.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Iterator, Sequence

from pygls.uris import to_fs_path

from ghostframe.server.inference.context.data_headers import HeaderReader
from ghostframe.server.inference.context.retrieval import RegionCache, RetrievalOptions, retrieve
from ghostframe.server.inference.context.workspace_index import IndexLimits, WorkspaceIndex
from ghostframe.server.inference.prompt import CompletionContext
from ghostframe.server.inference.source_files.discovery import admissible, walk_source_files
from ghostframe.server.inference.source_files.hygiene import DEFAULT_KEYWORDS, DEFAULT_MAX_FILE_BYTES, read_source_file
from ghostframe.server.inference.source_files.notebooks import notebook_to_python

log = logging.getLogger("ghostframe.server")

DEBOUNCE_SECONDS = 0.3
# Edits to open documents reach the snapshot once typing pauses this long (rebuilding the
# snapshot of a large workspace costs a second of CPU, which typing must not pay for).
EDIT_DEBOUNCE_SECONDS = 5.0


def discover(roots: Sequence[Path], stats: Counter, keywords: tuple[str, ...] | None = None,
             max_file_bytes: int = DEFAULT_MAX_FILE_BYTES) -> Iterator[tuple[Path, str]]:
    """(path, text) of every workspace file the trainer would read."""
    for root in roots:
        if not root.is_dir():
            continue
        for _, path in walk_source_files(root, stats):
            text = read_source_file(path, max_file_bytes, keywords)[0]
            if text is not None:
                yield path, text


class WorkspaceContext:
    """The index of the workspace folders and the context it gives each completion request."""

    def __init__(self, limits: IndexLimits = IndexLimits(), options: RetrievalOptions = RetrievalOptions(),
                 data_science_filter: bool = False, debounce_seconds: float = DEBOUNCE_SECONDS,
                 edit_debounce_seconds: float = EDIT_DEBOUNCE_SECONDS):
        self.limits = limits
        self.options = options
        self.keywords = DEFAULT_KEYWORDS if data_science_filter else None
        self.debounce_seconds = debounce_seconds
        self.edit_debounce_seconds = edit_debounce_seconds
        self.index: WorkspaceIndex | None = None
        self.regions = RegionCache(options.region_lines)
        self.headers = HeaderReader()
        self.stats: Counter = Counter()
        self._queue: queue.Queue = queue.Queue()
        self._idle = threading.Event()
        self._idle.set()
        self._lock = threading.Lock()
        self._pending = 0
        self._thread: threading.Thread | None = None

    # --- updates (any thread; the work happens on the index thread) ------------------------

    def open_folders(self, roots: Sequence[Path]) -> None:
        """Index these workspace folders from scratch, in the background."""
        roots = tuple(Path(r).resolve() for r in roots if Path(r).is_dir())
        self.index = WorkspaceIndex(roots, self.limits) if roots else None
        if self.index is not None:
            self._submit(("build", self.index))

    def changed(self, path: Path, text: str | None = None) -> None:
        """A file was edited (`text`: its new content) or saved or created on disk (`text` None)."""
        if self.index is not None:
            self._submit(("edit" if text is not None else "update", self.index, path, text))

    def deleted(self, path: Path) -> None:
        if self.index is not None:
            self._submit(("forget", self.index, path))

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until every queued update is in the searchable snapshot (tests and benchmarks)."""
        return self._idle.wait(timeout)

    def _submit(self, job: tuple) -> None:
        with self._lock:
            self._pending += 1
            self._idle.clear()
        self._queue.put(job)
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="ghostframe-index", daemon=True)
            self._thread.start()

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            touched, done, only_edits = set(), 0, True
            edits: dict[tuple[int, Path], tuple] = {}  # while typing, only a document's last text is indexed
            while True:
                only_edits = only_edits and job[0] == "edit"
                if job[0] == "edit":
                    edits[(id(job[1]), job[2])] = job
                else:
                    if len(job) > 2:  # a save, a close or a deletion replaces the document's pending edit
                        edits.pop((id(job[1]), job[2]), None)
                    touched.add(self._safely(job))
                done += 1
                try:
                    job = self._queue.get(timeout=self.edit_debounce_seconds if only_edits else self.debounce_seconds)
                except queue.Empty:
                    break
            touched.update(self._safely(edit) for edit in edits.values())
            index = self.index
            if index is not None and id(index) in touched:
                try:
                    index.refresh()
                except Exception:
                    log.exception("workspace index refresh failed")
            with self._lock:
                self._pending -= done
                if self._pending == 0:
                    self._idle.set()

    def _safely(self, job: tuple) -> int:
        """Run one job; one bad file must not stop the index. Returns the id of the index it touched."""
        try:
            return id(self._run(job))
        except Exception:
            log.exception("workspace index update failed")
            return 0

    def _run(self, job: tuple) -> WorkspaceIndex:
        kind, index, *rest = job
        if kind == "build":
            count = 0
            for path, text in discover(index.roots, self.stats, self.keywords, self.limits.max_file_chars):
                count += index.update(path, text)
            log.info("workspace index: %d files from %s (%s)", count, ", ".join(map(str, index.roots)),
                     dict(index.refused) or "none refused")
        elif kind in ("update", "edit"):
            path, text = rest
            if not admissible(path, index.roots):
                index.forget(path)
            elif text is None:
                text = read_source_file(path, self.limits.max_file_chars, self.keywords)[0]
                index.update(path, text) if text is not None else index.forget(path)
            else:
                text = notebook_to_python(text) if path.suffix == ".ipynb" and text.lstrip().startswith("{") else text
                index.update(path, text)
        elif kind == "forget":
            index.forget(rest[0])
        return index

    # --- requests (event loop thread) ------------------------------------------------------

    def context_for(self, document: str, path: Path | None, ctx: CompletionContext,
                    repo: bool = True, data: bool = True) -> CompletionContext:
        """`ctx` with snippets from other workspace files and notes on the data files it reads."""
        index = self.index
        if index is None or not (repo or data):
            return ctx
        snippets: tuple[str, ...] = ()
        if repo and (snapshot := index.current()) is not None:
            line = ctx.before.count("\n")
            snippets = self.regions.get(document, line)
            if snippets is None:
                relative = index.relative_path(path) if path is not None else None
                snippets = retrieve(snapshot, relative, ctx.before, ctx.after, self.options)
                self.regions.put(document, line, snippets)
        notes = self.headers.notes(ctx.before, path.parent if path else None, index.roots) if data else ()
        log.debug("context for %s: %d snippets, %d data notes", document, len(snippets), len(notes))
        return replace(ctx, snippets=snippets, notes=notes) if snippets or notes else ctx

    def forget_document(self, document: str) -> None:
        self.regions.forget(document)


def uri_path(uri: str | None) -> Path | None:
    """The file system path of a `file:` URI, else None (untitled buffers, other schemes)."""
    if not uri or not uri.startswith("file:"):
        return None
    path = to_fs_path(uri)
    return Path(path) if path else None


def document_path(workspace, uri: str) -> Path | None:
    """The file a document (or notebook cell) lives in: a cell's is its notebook's."""
    notebook = workspace.get_notebook_document(cell_uri=uri)
    return uri_path(notebook.uri if notebook is not None else uri)


def folder_paths(folders, root_uri: str | None = None) -> list[Path]:
    """The workspace folders an editor sent (`workspaceFolders`, else `rootUri`) as local paths."""
    uris = [f.uri for f in folders or []] or ([root_uri] if root_uri else [])
    return [p for p in map(uri_path, uris) if p is not None]
