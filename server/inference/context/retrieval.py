"""Snippets from the user's other files for one completion request.

Two kinds, as in RepoCoder and the CrossCodeEval baselines: the definitions of names
the current file imports from workspace modules (signature and a short body), then the
code chunks of other files most similar (BM25) to the lines above the cursor. The
result depends only on the index snapshot and the text, and `RegionCache` keeps it
fixed while the cursor stays in one region of a document, so the prompt's first tokens
(and the model's KV cache for them) stay reusable while the user types.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass

from ghostframe.server.inference.context.bm25 import tokens
from ghostframe.server.inference.context.workspace_index import IndexedFile, Snapshot, module_parts, resolve_module

_FROM_IMPORT = re.compile(r"^[ \t]*from[ \t]+(\.*)([\w.]*)[ \t]+import[ \t]+(\([^)]*\)?|[^\n#;]*)", re.M)
_IMPORT = re.compile(r"^[ \t]*import[ \t]+([^\n#;]+)", re.M)
_ALIAS = re.compile(r"^([\w.]+)(?:\s+as\s+(\w+))?$")
MAX_REEXPORT_HOPS = 2
# Imports are read from the file's head and near the cursor, uses of imported modules near the
# cursor only, so a request's cost does not grow with the length of the file.
IMPORT_HEAD_CHARS = 32_000
NEAR_CURSOR_CHARS = 6_000


@dataclass(frozen=True)
class RetrievalOptions:
    query_lines: int = 12      # lines above the cursor's region that make the similarity query
    max_definitions: int = 6
    max_similar: int = 4
    region_lines: int = 8      # snippets are kept while the cursor stays within this many lines


@dataclass(frozen=True)
class Import:
    level: int                 # leading dots of a relative import
    module: str                # dotted module as written ("" for `from . import x`)
    name: str | None           # the imported name, None for `import module`
    alias: str                 # the name it is bound to in the file


def parse_imports(text: str) -> list[Import]:
    """The import statements of a file, read line by line so half-typed code elsewhere does not matter."""
    found: list[Import] = []
    for match in _FROM_IMPORT.finditer(text):
        dots, module, names = match.groups()
        for part in names.strip("() \t").replace("\n", " ").split(","):
            alias = _ALIAS.match(part.strip().replace("\\", "").strip())
            if alias and alias.group(1) != "*":
                found.append(Import(len(dots), module, alias.group(1), alias.group(2) or alias.group(1)))
    for match in _IMPORT.finditer(text):
        for part in match.group(1).split(","):
            alias = _ALIAS.match(part.strip())
            if alias:
                module = alias.group(1)
                found.append(Import(0, module, None, alias.group(2) or module))
    return found


def comment_snippet(path: str, code: str) -> str:
    """Code from another file as a comment block headed by its path (the CrossCodeEval layout)."""
    body = "\n".join(f"# {line}".rstrip() for line in code.rstrip().split("\n"))
    return f"# {path}\n{body}\n"


def _definition(snapshot: Snapshot, module: tuple[str, ...], name: str, hops: int = 0) -> tuple[IndexedFile, str] | None:
    """Where `name` of `module` is defined, following re-exports (`from ._impl import name`)."""
    file = snapshot.find_module(module)
    if file is None:
        return None
    if name in file.definitions:
        return file, file.definitions[name]
    if name in file.imported and hops < MAX_REEXPORT_HOPS and file.imported[name] != module:
        return _definition(snapshot, file.imported[name], name, hops + 1)
    return None


def definition_snippets(snapshot: Snapshot, current_path: str | None, before: str, after: str,
                        limit: int) -> list[str]:
    """Definitions of workspace names the file imports, the most recently used (above the cursor) first."""
    current = module_parts(current_path) if current_path else None
    near = before[-NEAR_CURSOR_CHARS:] + after[:NEAR_CURSOR_CHARS]
    head = before[:IMPORT_HEAD_CHARS] if len(before) > IMPORT_HEAD_CHARS + NEAR_CURSOR_CHARS else before
    imports = parse_imports(head) + (parse_imports(before[-NEAR_CURSOR_CHARS:]) if head is not before else [])
    used = _attributes(near, {imp.alias for imp in imports})
    wanted: list[tuple[tuple[str, ...], str]] = []
    for imp in dict.fromkeys(imports):
        if imp.level and current is None:
            continue  # a relative import in a file outside the workspace cannot be resolved
        module = resolve_module(current or (), imp.level, imp.module or None)
        if imp.name is not None:
            if snapshot.find_module((*module, imp.name)) is not None:  # `from pkg import module`
                wanted.extend(((*module, imp.name), attr) for attr in used.get(imp.alias, ()))
            else:
                wanted.append((module, imp.name))
        else:
            wanted.extend((module, attr) for attr in used.get(imp.alias, ()))
    found: dict[tuple[str, str], tuple[int, int, str]] = {}
    for order, (module, name) in enumerate(wanted):
        hit = _definition(snapshot, module, name)
        if hit is None or hit[0].path == current_path or (hit[0].path, name) in found:
            continue
        found[(hit[0].path, name)] = (-before.rfind(name), order, comment_snippet(hit[0].path, hit[1]))
    return [snippet for _, _, snippet in sorted(found.values())[:limit]]


def _attributes(text: str, aliases: set[str]) -> dict[str, list[str]]:
    """For each alias, the names used as `alias.name` in `text`, in order of first use (one pass)."""
    if not aliases:
        return {}
    pattern = "|".join(re.escape(a) for a in sorted(aliases, key=len, reverse=True))
    seen: dict[str, dict[str, None]] = {}
    for match in re.finditer(rf"(?<![\w.])({pattern})\.([A-Za-z_]\w*)", text):
        seen.setdefault(match.group(1), {}).setdefault(match.group(2), None)
    return {alias: list(names) for alias, names in seen.items()}


def similar_snippets(snapshot: Snapshot, current_path: str | None, query_text: str, limit: int) -> list[str]:
    """The chunks of other files most similar to `query_text`, best first."""
    query = tokens(query_text)
    if not query:
        return []
    chunks = snapshot.similar_chunks(query, limit, exclude_path=current_path)
    return [comment_snippet(f"{c.path} (line {c.start + 1})", c.text) for c in chunks]


def retrieve(snapshot: Snapshot, current_path: str | None, before: str, after: str,
             options: RetrievalOptions = RetrievalOptions()) -> tuple[str, ...]:
    """Snippets for a cursor after `before`, most useful first: imported definitions, then similar code.

    The similarity query is the complete lines above the cursor's line, so typing on the
    line itself never changes the result.
    """
    head = before[: before.rfind("\n") + 1]
    query_text = "\n".join(head.rsplit("\n", options.query_lines + 1)[-options.query_lines - 1:])
    definitions = definition_snippets(snapshot, current_path, head, after, options.max_definitions)
    similar = similar_snippets(snapshot, current_path, query_text, options.max_similar)
    shown = {line for snippet in definitions for line in snippet.split("\n")[1:] if len(line) > 5}
    return tuple(definitions + [s for s in similar if not _mostly_within(s, shown)])


def _mostly_within(snippet: str, shown: set[str]) -> bool:
    """Whether most code lines of a snippet are already shown (say, in an imported definition)."""
    lines = [line for line in snippet.split("\n")[1:] if len(line) > 5]
    return bool(lines) and sum(line in shown for line in lines) * 2 >= len(lines)


class RegionCache:
    """Per document, the snippets of the region the cursor is in: recomputed only when it leaves it.

    A region starts at the line where snippets were last computed and spans
    `region_lines` lines below it; moving above it or past it recomputes.
    """

    def __init__(self, region_lines: int = RetrievalOptions.region_lines, max_documents: int = 32):
        self.region_lines = region_lines
        self.max_documents = max_documents
        self._regions: OrderedDict[str, tuple[int, tuple[str, ...]]] = OrderedDict()

    def get(self, document: str, line: int) -> tuple[str, ...] | None:
        held = self._regions.get(document)
        if held is None or not held[0] <= line < held[0] + self.region_lines:
            return None
        self._regions.move_to_end(document)
        return held[1]

    def put(self, document: str, line: int, snippets: tuple[str, ...]) -> None:
        self._regions[document] = (line, snippets)
        self._regions.move_to_end(document)
        while len(self._regions) > self.max_documents:
            self._regions.popitem(last=False)

    def forget(self, document: str) -> None:
        self._regions.pop(document, None)
