"""Turn an LSP (uri, position) into the text before and after the cursor.

A notebook cell sees the Python code cells above it, as the kernel does in Jupyter
(markdown, R or any other language's cells never enter the prompt); a plain file sees
itself. Positions follow LSP's line rules (`inference.text`). Bad positions and unknown
documents raise InvalidParams with a message the editor can show.
"""

from __future__ import annotations

from urllib.parse import unquote

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pygls.workspace import Workspace

from ghostframe.server.inference import text
from ghostframe.server.inference.prompt import CompletionContext
from ghostframe.server.inference.text import CELL_SEPARATOR

PYTHON_LANGUAGE_IDS = {"python"}


def _split_at(workspace: Workspace, uri: str, position: types.Position) -> tuple[str, str]:
    if unquote(uri) not in workspace.text_documents:  # pygls keys documents by their unquoted URI
        raise JsonRpcInvalidParams(f"Unknown document {uri}: send textDocument/didOpen before asking for completions.")
    source = workspace.get_text_document(uri).source
    try:
        offset = text.offset_at(source, position.line, position.character, workspace.position_encoding, strict=True)
    except text.PositionOutside as exc:
        raise JsonRpcInvalidParams(f"{exc} Document: {uri}.") from exc
    return source[:offset], source[offset:]


def _is_python(workspace: Workspace, uri: str) -> bool:
    return (workspace.get_text_document(uri).language_id or "").lower() in PYTHON_LANGUAGE_IDS


def context_at(workspace: Workspace, uri: str, position: types.Position) -> CompletionContext | None:
    """The completion context at `position` in the document or notebook cell `uri`;
    None in a notebook cell that is not Python code (no suggestion there)."""
    before, after = _split_at(workspace, uri, position)
    notebook = workspace.get_notebook_document(cell_uri=uri)
    if notebook is None:
        return CompletionContext(before=before, after=after)
    above = []
    for cell in notebook.cells:
        if unquote(cell.document) == unquote(uri):
            if cell.kind != types.NotebookCellKind.Code or not _is_python(workspace, uri):
                return None
            break
        if (cell.kind == types.NotebookCellKind.Code and unquote(cell.document) in workspace.text_documents
                and _is_python(workspace, cell.document)):
            above.append(workspace.get_text_document(cell.document).source.rstrip())
    before = CELL_SEPARATOR.join([*filter(None, above), before]) if above else before
    return CompletionContext(before=before, after=after)


def forget_notebook(workspace: Workspace, params: types.DidCloseNotebookDocumentParams) -> list[str]:
    """After pygls closed a notebook: drop any of its cells the client did not list, and
    return every cell URI that was part of it, so their per-document state can go too."""
    notebook = unquote(params.notebook_document.uri)
    cells = {unquote(cell.uri) for cell in params.cell_text_documents}
    cell_map = workspace._cell_in_notebook  # pygls keeps no public cell -> notebook map
    for cell, owner in list(cell_map.items()):
        if owner == notebook:
            cells.add(cell)
            workspace.remove_text_document(cell)
    return sorted(cells)


def resident_memory_mb() -> float | None:
    """This process's resident memory (Linux /proc; None elsewhere)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None
