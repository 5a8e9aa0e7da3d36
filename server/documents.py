"""Turn an LSP (uri, position) into the text before and after the cursor.

A notebook cell sees the code cells above it, as the kernel does in Jupyter; a
plain file sees itself. Bad positions and unknown documents raise InvalidParams
with a message the editor can show.
"""

from __future__ import annotations

from urllib.parse import unquote

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pygls.workspace import Workspace

from ghostframe.server.prompt import CompletionContext

CELL_SEPARATOR = "\n\n"


def _split_at(workspace: Workspace, uri: str, position: types.Position) -> tuple[str, str]:
    if unquote(uri) not in workspace.text_documents:  # pygls keys documents by their unquoted URI
        raise JsonRpcInvalidParams(f"Unknown document {uri}: send textDocument/didOpen before asking for completions.")
    document = workspace.get_text_document(uri)
    lines = document.lines
    if position.line < 0 or position.character < 0 or position.line > len(lines):
        raise JsonRpcInvalidParams(
            f"Position {position.line}:{position.character} is outside {uri} ({len(lines)} lines)."
        )
    line = lines[position.line] if position.line < len(lines) else ""
    width = workspace.position_codec.client_num_units(line.rstrip("\r\n"))
    if position.character > width:
        raise JsonRpcInvalidParams(
            f"Position {position.line}:{position.character} is past the end of line {position.line} "
            f"({width} characters) in {uri}."
        )
    offset = document.offset_at_position(position)
    source = document.source
    return source[:offset], source[offset:]


def context_at(workspace: Workspace, uri: str, position: types.Position) -> CompletionContext:
    """The completion context at `position` in the document or notebook cell `uri`."""
    before, after = _split_at(workspace, uri, position)
    notebook = workspace.get_notebook_document(cell_uri=uri)
    if notebook is not None:
        above = []
        for cell in notebook.cells:
            if unquote(cell.document) == unquote(uri):
                break
            if cell.kind == types.NotebookCellKind.Code and unquote(cell.document) in workspace.text_documents:
                above.append(workspace.get_text_document(cell.document).source.rstrip())
        before = CELL_SEPARATOR.join([*filter(None, above), before]) if above else before
    return CompletionContext(before=before, after=after)
