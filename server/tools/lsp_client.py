"""A small LSP client that drives the real server as an editor would (for the CLI and benchmarks)."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from lsprotocol import types
from pygls.lsp.client import LanguageClient

from ghostframe.server.lsp.server import CMD_STATUS, STATUS_NOTIFICATION


class EditorClient(LanguageClient):
    """Starts `python -m ghostframe.server`, prints its progress to stderr, opens documents."""

    def __init__(self, verbose: bool = True):
        super().__init__("ghostframe-cli", "0")
        self.verbose = verbose
        self.status: dict = {}
        self.messages: list[str] = []  # window/showMessage texts, in order
        self.ready = asyncio.Event()
        self.version = 0

        @self.feature(types.WINDOW_WORK_DONE_PROGRESS_CREATE)
        def _create(params):
            return None

        @self.feature(types.PROGRESS)
        def _progress(params):
            value = params.value or {}
            text = value.get("title") or value.get("message")
            if self.verbose and text:
                print(f"[ghostframe] {text.removeprefix('ghostframe: ')}", file=sys.stderr)

        @self.feature(types.WINDOW_SHOW_MESSAGE)
        def _show(params):
            self.messages.append(params.message)
            print(f"[ghostframe] {params.message}", file=sys.stderr)

        @self.feature(types.WINDOW_LOG_MESSAGE)
        def _log(params):
            pass

        @self.feature(STATUS_NOTIFICATION)
        def _status(params):
            self.status = params._asdict() if hasattr(params, "_asdict") else dict(params)
            if self.status.get("state") in {"ready", "error", "disabled"}:
                self.ready.set()

    async def start(self, server_args: list[str], settings: dict | None = None,
                    workspace_folders: tuple[Path, ...] = ()) -> None:
        await self.start_io(sys.executable, "-m", "ghostframe.server", *server_args)
        # pygls pipes the server's stderr and never reads it: once the pipe's buffer is full, the
        # server blocks in its next log line. Drain it; what users need arrives as logMessage.
        self._stderr_drain = asyncio.create_task(self._drain_stderr(self._server.stderr))
        capabilities = types.ClientCapabilities(
            window=types.WindowClientCapabilities(work_done_progress=True),
            text_document=types.TextDocumentClientCapabilities(
                inline_completion=types.InlineCompletionClientCapabilities(),
                synchronization=types.TextDocumentSyncClientCapabilities(),
            ),
        )
        await self.initialize_async(types.InitializeParams(
            capabilities=capabilities, process_id=None,
            initialization_options={"ghostframe": settings or {}},
            workspace_folders=[types.WorkspaceFolder(uri=folder.resolve().as_uri(), name=folder.name)
                               for folder in workspace_folders] or None,
        ))
        self.initialized(types.InitializedParams())

    @staticmethod
    async def _drain_stderr(stream) -> None:
        while await stream.read(1 << 16):
            pass

    async def wait_ready(self, timeout: float = 600) -> dict:
        """Wait until the model is loaded (or failed to load); return the server's status."""
        await asyncio.wait_for(self.ready.wait(), timeout)
        return await self.server_status()

    async def start_ready(self, server_args: list[str], settings: dict | None = None) -> dict:
        """Start the server and wait for its model; a model that fails to load ends the tool."""
        await self.start(server_args, settings)
        status = await self.wait_ready()
        if not status.get("ready"):
            await self.close()
            raise SystemExit(f"ghostframe: the model did not load: {status.get('error')}")
        return status

    async def server_status(self) -> dict:
        result = await self.workspace_execute_command_async(types.ExecuteCommandParams(command=CMD_STATUS))
        return result._asdict() if hasattr(result, "_asdict") else dict(result)

    def open(self, uri: str, text: str) -> None:
        self.version = 1
        self.text_document_did_open(types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)))

    def type_text(self, uri: str, line: int, character: int, text: str) -> None:
        """Insert `text` at (line, character), as one incremental change."""
        self.version += 1
        where = types.Position(line=line, character=character)
        self.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=self.version),
            content_changes=[types.TextDocumentContentChangePartial(
                range=types.Range(start=where, end=where), text=text)],
        ))

    async def inline(self, uri: str, line: int, character: int, invoked: bool = False) -> tuple[str, float]:
        """Ask for the inline completion at a position, as typing does (or, `invoked`, as the user's explicit
        request does: the server then shows whatever the model says); return (text, seconds)."""
        started = time.perf_counter()
        kind = types.InlineCompletionTriggerKind.Invoked if invoked else types.InlineCompletionTriggerKind.Automatic
        result = await self.text_document_inline_completion_async(types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=line, character=character),
            context=types.InlineCompletionContext(trigger_kind=kind),
        ))
        items = result.items if isinstance(result, types.InlineCompletionList) else (result or [])
        text = items[0].insert_text if items else ""
        return (text if isinstance(text, str) else text.value), time.perf_counter() - started

    async def close(self) -> None:
        await self.shutdown_async(None)
        self.exit(None)
        await self.stop()


def read_source(path: Path) -> str:
    """A source file's text, with a clear error for files that are not UTF-8."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SystemExit(f"ghostframe: {path} is not UTF-8 text (byte {exc.start}: {data[exc.start:exc.start + 1]!r}).")
