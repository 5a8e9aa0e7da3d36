"""Where to warm a document's cache (see inference/warming.py): the end of the line last edited.

A request's prompt is the text before the cursor, so warming the text up to the end of the
line the user just edited (or, on open, of the whole document) serves any cursor before it:
the request reuses the longest common prefix.
"""

from __future__ import annotations

from urllib.parse import unquote

from lsprotocol import types
from pygls.workspace import Workspace

from ghostframe.server.inference.engine import CompletionEngine
from ghostframe.server.inference.warming import WarmTarget
from ghostframe.server.lsp.documents import context_at


def edited_line(change: types.TextDocumentContentChangeEvent) -> int | None:
    """The line an incremental change ends on; None for a whole-document change."""
    if isinstance(change, types.TextDocumentContentChangePartial):
        return change.range.start.line + change.text.count("\n")
    return None


def warm_target(workspace: Workspace, uri: str, line: int | None, engine: CompletionEngine | None,
                max_prompt_tokens: int, position: types.Position | None = None) -> WarmTarget | None:
    """The prompt to prefill for `uri`: at `position` (where the cursor moved), else up to the end of
    `line` (None: the last line); None if nothing to do."""
    if engine is None or unquote(uri) not in workspace.text_documents:
        return None
    lines = workspace.get_text_document(uri).lines
    if not lines:
        return None
    if position is None:
        row = len(lines) - 1 if line is None else max(0, min(line, len(lines) - 1))
        position = types.Position(line=row, character=workspace.position_codec.client_num_units(
            lines[row].rstrip("\r\n")))
    ctx = context_at(workspace, uri, position)
    return None if ctx is None else WarmTarget(engine, ctx, max_prompt_tokens)
