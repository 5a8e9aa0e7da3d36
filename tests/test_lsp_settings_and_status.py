"""The status carries a `state` the editor shows; settings are pulled with workspace/configuration
when the client offers it, and taken from initializationOptions / didChangeConfiguration otherwise."""

from __future__ import annotations

from lsprotocol import types

from conftest import initialize, inline, open_document, status, vscode_capabilities, wait_until

STATES = {"loading", "ready", "error", "disabled"}


async def test_pulled_settings_win_over_initialization_options(bare_client):
    bare_client.set_configuration({"enable": False, "maxNewTokens": 4}, section="ghostframe")
    result = await initialize(bare_client, {"enable": True})
    from ghostframe.server import __version__
    assert (result.server_info.name, result.server_info.version) == ("ghostframe", __version__)
    assert (await wait_until(bare_client, states=("disabled",)))["state"] == "disabled"
    # a change: the client's store is the truth (VS Code sends no values in the notification)
    bare_client.set_configuration({"enable": True}, section="ghostframe")
    bare_client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
    ready = await wait_until(bare_client, states=("ready",))
    assert ready["state"] == "ready"
    assert all(s["state"] in STATES for s in bare_client.statuses)


async def test_without_configuration_capability_pushed_settings_are_used(bare_client):
    caps = vscode_capabilities()
    caps.workspace.configuration = False
    bare_client.set_configuration({"enable": True}, section="ghostframe")  # must not be asked for
    await initialize(bare_client, {"enable": False}, capabilities=caps)
    assert (await wait_until(bare_client, states=("disabled",)))["state"] == "disabled"
    bare_client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
        settings={"ghostframe": {"enable": True}}))
    assert (await wait_until(bare_client, states=("ready",)))["state"] == "ready"
    uri = "file:///work/pushed.py"
    open_document(bare_client, uri, "import pandas as pd\ndf = pd.")
    assert len(await inline(bare_client, uri, 1, len("df = pd."))) == 1


async def test_error_state_after_a_failed_load(bare_client):
    await initialize(bare_client, {"model": "/no/such/model"})
    failed = await wait_until(bare_client, states=("error",))
    assert failed["state"] == "error" and "/no/such/model" in failed["error"]
    assert (await status(bare_client))["state"] == "error"
