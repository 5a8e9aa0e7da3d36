"""Notebook hygiene: only Python code cells reach a cell's prompt, and closing a notebook frees
everything kept for it, as closing a file does."""

from __future__ import annotations

from urllib.parse import unquote

from lsprotocol import types

from conftest import deliver, in_process_server, inline, open_document, status
from ghostframe.server.inference.prompt import CompletionContext
from ghostframe.server.inference.text import CELL_SEPARATOR
from ghostframe.server.lsp.documents import context_at

NOTEBOOK = "file:///work/mixed.ipynb"
CELLS = [  # (kind, languageId, text)
    (types.NotebookCellKind.Code, "python", "import pandas as pd\ndf = pd.read_csv('x.csv')"),
    (types.NotebookCellKind.Code, "r", "data <- data.frame(a = c(1, 2, 3))\nsummary(data)"),
    (types.NotebookCellKind.Markup, "markdown", "# Notes\nThe R cell above is not Python."),
    (types.NotebookCellKind.Code, "python", "summary = df."),
]
CELL_URIS = [f"vscode-notebook-cell:/work/mixed.ipynb#W{i}sZmlsZQ%3D%3D" for i in range(len(CELLS))]


def open_notebook(client) -> None:
    client.notebook_document_did_open(types.DidOpenNotebookDocumentParams(
        notebook_document=types.NotebookDocument(
            uri=NOTEBOOK, notebook_type="jupyter-notebook", version=1,
            cells=[types.NotebookCell(kind=kind, document=uri) for (kind, _, _), uri in zip(CELLS, CELL_URIS)]),
        cell_text_documents=[types.TextDocumentItem(uri=uri, language_id=language, version=1, text=text)
                             for (_, language, text), uri in zip(CELLS, CELL_URIS)]))


def test_only_python_cells_enter_the_prompt():
    ls = in_process_server()
    deliver(ls, {"jsonrpc": "2.0", "method": "notebookDocument/didOpen", "params": {
        "notebookDocument": {"uri": NOTEBOOK, "notebookType": "jupyter-notebook", "version": 1,
                             "cells": [{"kind": kind.value, "document": uri} for (kind, _, _), uri in zip(CELLS, CELL_URIS)]},
        "cellTextDocuments": [{"uri": uri, "languageId": language, "version": 1, "text": text}
                              for (_, language, text), uri in zip(CELLS, CELL_URIS)]}})
    ctx = context_at(ls.workspace, CELL_URIS[3], types.Position(line=0, character=len(CELLS[3][2])))
    assert ctx == CompletionContext(CELLS[0][2] + CELL_SEPARATOR + CELLS[3][2], "")
    # no suggestion inside the R cell or the markdown cell
    assert context_at(ls.workspace, CELL_URIS[1], types.Position(line=1, character=3)) is None
    assert context_at(ls.workspace, CELL_URIS[2], types.Position(line=0, character=3)) is None


async def test_no_suggestion_in_r_or_markdown_cells(fresh_client):
    open_notebook(fresh_client)
    assert await inline(fresh_client, CELL_URIS[3], 0, len(CELLS[3][2]))
    assert await inline(fresh_client, CELL_URIS[1], 1, len("summary(data)")) == []
    assert await inline(fresh_client, CELL_URIS[2], 0, 3) == []


async def test_closing_a_notebook_frees_what_was_kept_for_it(fresh_client):
    before = (await status(fresh_client))["held"]
    open_notebook(fresh_client)
    assert await inline(fresh_client, CELL_URIS[3], 0, len(CELLS[3][2]))
    held = (await status(fresh_client))["held"]
    assert held["notebooks"] == before["notebooks"] + 1 and held["notebookCells"] == len(CELLS)
    assert unquote(CELL_URIS[3]) in held["engineDocuments"]

    fresh_client.notebook_document_did_close(types.DidCloseNotebookDocumentParams(
        notebook_document=types.NotebookDocumentIdentifier(uri=NOTEBOOK),
        cell_text_documents=[types.TextDocumentIdentifier(uri=uri) for uri in CELL_URIS]))
    # the engine forgets on the model worker: a completion after the close runs after it
    open_document(fresh_client, "file:///work/after.py", "import numpy as np\nx = np.")
    await inline(fresh_client, "file:///work/after.py", 1, len("x = np."))
    held = (await status(fresh_client))["held"]
    assert held["notebooks"] == before["notebooks"] and held["notebookCells"] == 0
    assert held["documents"] == before["documents"] + 1  # only after.py
    assert not any(doc.startswith("vscode-notebook-cell:") for doc in held["engineDocuments"])


async def test_closing_a_file_frees_what_was_kept_for_it(fresh_client):
    uri = "file:///work/closed.py"
    open_document(fresh_client, uri, "import pandas as pd\ndf = pd.")
    assert await inline(fresh_client, uri, 1, len("df = pd."))
    assert uri in (await status(fresh_client))["held"]["engineDocuments"]
    fresh_client.text_document_did_close(types.DidCloseTextDocumentParams(
        text_document=types.TextDocumentIdentifier(uri=uri)))
    open_document(fresh_client, "file:///work/other.py", "y = 1\nz = y.")
    await inline(fresh_client, "file:///work/other.py", 1, len("z = y."))
    held = (await status(fresh_client))["held"]
    assert uri not in held["engineDocuments"] and held["documents"] == 1
