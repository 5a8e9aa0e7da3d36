"""The server indexes the workspace folders the editor sends and puts their context into requests."""

from __future__ import annotations

from pathlib import Path

from conftest import RawServer  # noqa: F401  (the raw_server fixture starts it)

CURRENT = "import pandas as pd\nfrom helpers import clean\n\nsales = pd.read_csv('sales.csv')\nsales = clean(sales)\n"


def test_workspace_context_reaches_the_completion_request(tmp_path: Path, raw_server):
    workspace = tmp_path / "project"
    workspace.mkdir()
    (workspace / "helpers.py").write_text("def clean(df):\n    return df.dropna()\n")
    (workspace / "sales.csv").write_text("date,region,revenue\n2024-01-01,north,1\n")
    (tmp_path / "outside.py").write_text("def clean(df):\n    return 'from outside'\n")
    current = workspace / "analysis.py"
    current.write_text(CURRENT)
    server = raw_server("--log-level", "DEBUG")
    server.initialize(workspaceFolders=[{"uri": workspace.as_uri(), "name": "project"}], rootUri=workspace.as_uri())
    assert server.wait_ready()["ready"]
    uri = current.as_uri()
    server.send({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {
        "uri": uri, "languageId": "python", "version": 1, "text": CURRENT}}})
    answer = server.request(2, "textDocument/inlineCompletion", {
        "textDocument": {"uri": uri}, "position": {"line": 5, "character": 0},
        "context": {"triggerKind": 2}})
    assert "error" not in answer
    server.request(3, "shutdown")
    server.send({"jsonrpc": "2.0", "method": "exit"})
    code, stderr = server.finish()
    assert code == 0
    assert "workspace index: 2 files" in stderr  # helpers.py and analysis.py; nothing from outside
    assert f"context for {uri}: 1 snippets, 1 data notes" in stderr
