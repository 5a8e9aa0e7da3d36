"""The real server over stdio, driven as VS Code drives it, on a tiny random model."""

from __future__ import annotations

from lsprotocol import types

from conftest import inline, open_document, status, wait_for_status
from ghostframe.server.inference.engine import Limits
from ghostframe.server.inference.prompt import CompletionContext

SOURCE = "import pandas as pd\n\ndf = pd.read_csv('sales.csv')\ntotal = df['amount'].\n"


async def test_capabilities_advertise_inline_completion_and_sync(client):
    caps = client.server_capabilities  # the initialize result
    assert caps.inline_completion_provider is not None
    assert caps.completion_provider is not None
    sync = caps.text_document_sync
    assert sync.change == types.TextDocumentSyncKind.Incremental
    assert caps.notebook_document_sync is not None
    assert set(caps.execute_command_provider.commands) == {"ghostframe.reloadModel", "ghostframe.status"}


async def test_model_loading_reports_work_done_progress(client):
    reports = [r for values in client.progress_reports.values() for r in values]
    kinds = [type(r).__name__ for r in reports]
    assert kinds[0] == "WorkDoneProgressBegin" and kinds[-1] == "WorkDoneProgressEnd"
    assert "loading" in reports[0].title


async def test_inline_completion_after_incremental_change(client, tiny_engine):
    uri = "file:///work/analysis.py"
    open_document(client, uri, SOURCE)
    # type "groupby(" at the end of line 3 as one incremental change
    end = types.Position(line=3, character=len("total = df['amount']."))
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
        content_changes=[types.TextDocumentContentChangePartial(range=types.Range(start=end, end=end), text="sum(")],
    ))
    cursor = types.Position(line=3, character=end.character + 4)
    items = await inline(client, uri, cursor.line, cursor.character)

    text_after_edit = SOURCE.replace("df['amount'].", "df['amount'].sum(")
    offset = text_after_edit.index("sum(") + 4
    expected = tiny_engine.complete(
        CompletionContext(text_after_edit[:offset], text_after_edit[offset:]),
        Limits(max_new_tokens=8, max_prompt_tokens=1024, multiline=True)).text
    assert expected, "the tiny model should suggest something here"
    assert len(items) == 1
    assert items[0].insert_text == expected
    assert items[0].range == types.Range(start=cursor, end=cursor)
    assert (await status(client))["lastLatencyMs"] > 0


async def test_notebook_cell_sees_cells_above(client, tiny_engine):
    notebook_uri = "file:///work/explore.ipynb"
    cells = ["import pandas as pd\ndf = pd.read_csv('x.csv')", "# notes", "summary = df."]
    # VS Code's cell URIs carry a %-encoded fragment
    cell_uris = [f"vscode-notebook-cell:/work/explore.ipynb#W{i}sZmlsZQ%3D%3D" for i in range(3)]
    kinds = [types.NotebookCellKind.Code, types.NotebookCellKind.Markup, types.NotebookCellKind.Code]
    client.notebook_document_did_open(types.DidOpenNotebookDocumentParams(
        notebook_document=types.NotebookDocument(
            uri=notebook_uri, notebook_type="jupyter-notebook", version=1,
            cells=[types.NotebookCell(kind=k, document=u) for k, u in zip(kinds, cell_uris)]),
        cell_text_documents=[
            types.TextDocumentItem(uri=u, language_id="python" if k == types.NotebookCellKind.Code else "markdown",
                                   version=1, text=t)
            for u, k, t in zip(cell_uris, kinds, cells)],
    ))
    items = await inline(client, cell_uris[2], 0, len(cells[2]))
    # The markdown cell is not code; the code cell above is.
    expected = tiny_engine.complete(CompletionContext(cells[0] + "\n\n" + cells[2], ""),
                                    Limits(max_new_tokens=8, max_prompt_tokens=1024, multiline=True)).text
    assert expected
    assert [item.insert_text for item in items] == [expected]


async def test_completion_fallback_returns_the_same_text(client):
    uri = "file:///work/fallback.py"
    open_document(client, uri, SOURCE)
    line, character = 3, len("total = df['amount'].")
    inline_items = await inline(client, uri, line, character)
    result = await client.text_document_completion_async(types.CompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=line, character=character)))
    assert len(result.items) == 1
    assert result.items[0].text_edit.new_text == inline_items[0].insert_text


async def test_disabled_setting_returns_no_items_and_reenabling_works(fresh_client):
    client = fresh_client  # changes settings: a server of its own
    uri = "file:///work/toggle.py"
    open_document(client, uri, SOURCE)
    position = (3, len("total = df['amount']."))
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={"ghostframe": {"enable": False}}))
    assert await inline(client, uri, *position) == []
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={"ghostframe": {"enable": True}}))
    assert len(await inline(client, uri, *position)) == 1


async def test_cpu_int8_is_the_default_and_a_setting_turns_it_off(fresh_client):
    client = fresh_client  # changes settings: a server of its own
    assert (await status(client))["precision"] == "int8"
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={"ghostframe": {"cpuInt8": False}}))
    reloaded = await wait_for_status(client, lambda s: s["state"] == "error" or s.get("precision") == "float32")
    assert reloaded["state"] == "ready" and reloaded["precision"] == "float32"
    uri = "file:///work/float32.py"
    open_document(client, uri, SOURCE)
    assert len(await inline(client, uri, 3, len("total = df['amount']."))) == 1
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={"ghostframe": {"cpuInt8": True}}))
    back = await wait_for_status(client, lambda s: s["state"] == "error" or s.get("precision") == "int8")
    assert back["state"] == "ready"
