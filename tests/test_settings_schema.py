"""The settings are defined once (server/lsp/settings.py `Settings`); every other place that
writes them down must agree: the VS Code extension's package.json, its TypeScript (which
reads defaults and ranges from package.json and lists the client-only keys), and the
settings tables in README.md and client-vscode/README.md. Regenerate with
`npm run settings` in client-vscode/."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ghostframe.server.lsp.settings import Settings, camel, schema

ROOT = Path(__file__).resolve().parent.parent
CLIENT = ROOT / "client-vscode"
FIX = "run `npm run settings` in client-vscode/"


def properties() -> dict[str, dict]:
    return json.loads((CLIENT / "package.json").read_text())["contributes"]["configuration"]["properties"]


def client_only_keys() -> list[str]:
    """`CLIENT_ONLY_KEYS` in client-vscode/src/settings.ts: the settings never sent to the server."""
    source = (CLIENT / "src" / "settings.ts").read_text()
    found = re.search(r"CLIENT_ONLY_KEYS\s*=\s*\[(.*?)\]", source, re.S)
    assert found, "client-vscode/src/settings.ts no longer declares CLIENT_ONLY_KEYS"
    return re.findall(r"'([^']+)'", found.group(1))


def table_rows(path: Path) -> dict[str, tuple[str, str]]:
    """Setting -> (default cell, description cell) of the table between the settings markers."""
    text = path.read_text()
    block = re.search(r"<!-- settings:start -->\n(.*?)<!-- settings:end -->", text, re.S)
    assert block, f"{path.name}: no <!-- settings:start --> ... <!-- settings:end --> block"
    rows = {}
    for line in block.group(1).splitlines()[2:]:
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        rows[cells[0].strip("`")] = (cells[1].strip("`"), cells[2])
    return rows


def test_schema_covers_every_setting_with_a_description():
    props = schema()
    assert list(props) == [f"ghostframe.{camel(f.name)}" for f in dataclasses.fields(Settings)]
    for key, entry in props.items():
        assert entry["markdownDescription"].strip(), key
        assert entry["type"] in {"boolean", "integer", "string"}, key
        if entry["type"] == "integer":
            assert entry["minimum"] <= entry["default"] <= entry["maximum"], key
        if "enum" in entry:
            assert entry["default"] in entry["enum"], key


def test_schema_command_prints_the_schema():
    out = subprocess.run([sys.executable, "-m", "ghostframe.server.lsp.settings", "--schema"],
                         capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == schema()


def test_package_json_server_settings_are_the_generated_schema():
    props = properties()
    for key, entry in schema().items():
        assert props.get(key) == entry, f"package.json's {key} differs from Settings; {FIX}"


def test_package_json_holds_exactly_the_server_and_client_only_settings():
    server = set(schema())
    client = {f"ghostframe.{k}" for k in client_only_keys()}
    assert not server & client, f"declared both by the server and as client-only: {server & client}"
    assert set(properties()) == server | client, (
        "package.json settings that neither the server nor CLIENT_ONLY_KEYS know, or missing ones; " + FIX)


@pytest.mark.parametrize("key", sorted(set(client_only_keys())))
def test_client_only_settings_are_fully_described(key):
    entry = properties()[f"ghostframe.{key}"]
    assert entry.get("markdownDescription", "").strip(), key
    if entry["type"] == "integer":
        assert entry["minimum"] <= entry["default"] <= entry["maximum"], key
    if "enum" in entry:
        assert entry["default"] in entry["enum"], key


def test_typescript_takes_defaults_and_ranges_from_package_json():
    """No hand-written defaults or clamps in the extension: they would drift from Settings."""
    source = (CLIENT / "src" / "settings.ts").read_text()
    assert "from '../package.json'" in source
    for f in dataclasses.fields(Settings):
        assert not re.search(rf"\b{camel(f.name)}\s*:\s*[\w'\"]", source), (
            f"client-vscode/src/settings.ts hard-codes a value for {camel(f.name)}")


@pytest.mark.parametrize("readme, keys", [
    (ROOT / "README.md", "server"),
    (CLIENT / "README.md", "all"),
])
def test_readme_settings_tables_agree(readme, keys):
    expected = schema() if keys == "server" else properties()
    rows = table_rows(readme)
    assert list(rows) == list(expected), f"{readme.relative_to(ROOT)}: settings table lists other settings; {FIX}"
    for key, entry in expected.items():
        default, what = rows[key]
        assert default == json.dumps(entry["default"]), f"{readme.relative_to(ROOT)}: default of {key}; {FIX}"
        assert entry["markdownDescription"].replace("|", "\\|") in what, f"{readme.relative_to(ROOT)}: {key}; {FIX}"
        for bound in ("minimum", "maximum"):
            if bound in entry:
                assert str(entry[bound]) in what, f"{readme.relative_to(ROOT)}: range of {key}; {FIX}"
