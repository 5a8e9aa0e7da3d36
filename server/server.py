"""The ghostframe language server: one server object with typed state and thin LSP handlers."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from ghostframe.server import __version__
from ghostframe.server.documents import context_at
from ghostframe.server.engine import CompletionEngine, SpeedOptions
from ghostframe.server.model_loading import ModelLoadError, load_model
from ghostframe.server.settings import Settings, parse_settings

log = logging.getLogger("ghostframe.server")

STATUS_NOTIFICATION = "ghostframe/status"
CMD_RELOAD = "ghostframe.reloadModel"
CMD_STATUS = "ghostframe.status"


@dataclass
class Status:
    """What `ghostframe.status` returns and `ghostframe/status` announces."""

    state: str = "idle"  # idle | loading | ready | error | disabled
    model: str = ""
    device: str = ""
    precision: str = ""  # int8 | float32 | bfloat16
    adapter: str | None = None
    ready: bool = False
    message: str = ""
    lastLatencyMs: float | None = None
    error: str | None = None


class GhostframeServer(LanguageServer):
    """Holds the settings, the loaded model and the in-flight requests.

    All model work (loading and decoding) runs on one worker thread, so torch is never
    used from two threads and the event loop keeps answering while it runs.
    """

    def __init__(self, defaults: Settings = Settings(), speed: SpeedOptions = SpeedOptions()):
        super().__init__(
            "ghostframe",
            __version__,
            text_document_sync_kind=types.TextDocumentSyncKind.Incremental,
            notebook_document_sync=types.NotebookDocumentSyncOptions(
                notebook_selector=[
                    types.NotebookDocumentFilterWithCells(
                        notebook="*", cells=[types.NotebookCellLanguage(language="python")]
                    )
                ]
            ),
        )
        self.defaults = defaults
        self.speed = speed
        self.settings = defaults
        self.engine: CompletionEngine | None = None
        self.status = Status()
        self.model_worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ghostframe-model")
        self.in_flight: dict[str, threading.Event] = {}
        self._load_serial = 0
        self._pending_problems: list[str] = []

    # --- messages to the editor -------------------------------------------------------

    def tell(self, message: str, kind: types.MessageType = types.MessageType.Warning) -> None:
        """Show a message to the user and log it."""
        log.warning(message)
        self.window_show_message(types.ShowMessageParams(type=kind, message=message))

    def log_to_client(self, message: str, kind: types.MessageType = types.MessageType.Info) -> None:
        log.info(message)
        self.window_log_message(types.LogMessageParams(type=kind, message=message))

    def announce(self, **changes) -> None:
        for key, value in changes.items():
            setattr(self.status, key, value)
        self.protocol.notify(STATUS_NOTIFICATION, asdict(self.status))

    # --- settings ------------------------------------------------------------------------

    def apply_settings(self, options, *, initial: bool = False) -> None:
        """Take new settings; report rejected values; reload the model when it changed."""
        settings, problems = parse_settings(options, self.settings)
        if initial:
            self._pending_problems.extend(problems)
        else:
            for problem in problems:
                self.tell(problem)
        previous, self.settings = self.settings, settings
        effective_model_changed = self._model_request(previous) != self._model_request(settings)
        if not initial and effective_model_changed:
            self.start_loading()
        if not settings.enable:
            self.announce(state="disabled")
        elif self.status.state == "disabled":
            self.announce(state="ready" if self.engine else "idle")

    def _model_request(self, settings: Settings) -> tuple[str, str, str, bool]:
        """Settings fall back to the command line's values (`ghostframe-server --model ...`);
        int8 is off when either the command line or the editor turns it off."""
        return (settings.model or self.defaults.model, settings.adapter or self.defaults.adapter,
                settings.device if settings.device != "auto" else self.defaults.device,
                settings.cpu_int8 and self.defaults.cpu_int8)

    # --- model loading -------------------------------------------------------------------

    def start_loading(self) -> None:
        """Drop the current model now (requests answer empty at once) and load in the background."""
        self._load_serial += 1
        model, adapter, device, cpu_int8 = self._model_request(self.settings)
        self.engine = None
        self.announce(state="loading", ready=False, error=None, model=model or "default",
                      adapter=adapter or None, device=device, precision="", message="loading model")
        asyncio.ensure_future(self._load(self._load_serial, model, adapter, device, cpu_int8))

    async def _load(self, serial: int, model: str, adapter: str, device: str, cpu_int8: bool) -> None:
        """Load the model, reporting work-done progress to the editor."""
        loop = asyncio.get_running_loop()
        token = await self._begin_progress("ghostframe: loading model")

        def report(message: str) -> None:
            loop.call_soon_threadsafe(self._report_progress, token, message)

        started = time.perf_counter()
        try:
            loaded = await loop.run_in_executor(
                self.model_worker, lambda: load_model(model or None, adapter or None, device, report, cpu_int8)
            )
        except ModelLoadError as exc:
            loaded, error = None, str(exc)
        except Exception as exc:  # never let a load take the server down
            log.exception("model load failed")
            loaded, error = None, f"{type(exc).__name__}: {exc}"
        if serial != self._load_serial:
            return  # a newer load superseded this one
        if loaded is None:
            self._end_progress(token, "failed")
            self.announce(state="error", error=error, message=error)
            self.tell(f"ghostframe could not load its model: {error}", types.MessageType.Error)
            return
        self.engine = CompletionEngine(loaded, self.speed)
        seconds = time.perf_counter() - started
        self._end_progress(token, f"ready in {seconds:.1f}s")
        self.announce(state="ready" if self.settings.enable else "disabled", ready=True,
                      model=loaded.model_name, device=loaded.device, adapter=loaded.adapter,
                      precision=loaded.precision, message=f"{loaded.model_name} on {loaded.device} ({loaded.precision})")
        self.log_to_client(f"model {loaded.model_name} ready on {loaded.device} ({loaded.precision}) in {seconds:.1f}s")

    async def _begin_progress(self, title: str) -> str | None:
        window = self.client_capabilities.window
        if not (window and window.work_done_progress):
            return None
        token = f"ghostframe-load-{uuid.uuid4()}"
        try:
            await self.work_done_progress.create_async(token)
        except Exception:  # the client refused; loading goes on without progress
            return None
        self.work_done_progress.begin(token, types.WorkDoneProgressBegin(title=title, cancellable=False))
        return token

    def _report_progress(self, token: str | None, message: str) -> None:
        self.log_to_client(message)
        self.announce(message=message)
        if token is not None:
            self.work_done_progress.report(token, types.WorkDoneProgressReport(message=message))

    def _end_progress(self, token: str | None, message: str) -> None:
        if token is not None:
            self.work_done_progress.end(token, types.WorkDoneProgressEnd(message=message))

    # --- completion ----------------------------------------------------------------------

    async def suggestion_at(self, uri: str, position: types.Position) -> str:
        """The suggestion at a position, "" when there is none (or the model is not ready)."""
        ctx = context_at(self.workspace, uri, position)
        engine, settings = self.engine, self.settings
        if engine is None or not settings.enable:
            return ""
        if (older := self.in_flight.get(uri)) is not None:
            older.set()  # a newer request for the same document supersedes it
        cancel = self.in_flight[uri] = threading.Event()
        loop = asyncio.get_running_loop()
        try:
            completion = await loop.run_in_executor(
                self.model_worker, engine.complete, ctx, settings.max_new_tokens,
                settings.max_prompt_tokens, settings.multiline, cancel, uri,
            )
        except asyncio.CancelledError:
            cancel.set()  # $/cancelRequest: stop decoding at the next token
            raise
        finally:
            if self.in_flight.get(uri) is cancel:
                del self.in_flight[uri]
        if completion.cancelled:
            return ""
        self.status.lastLatencyMs = round(completion.seconds * 1000, 1)
        log.debug("completion %r in %.0f ms (%d prompt tokens, %d reused, %d new%s)", completion.text,
                  completion.seconds * 1000, completion.prompt_tokens, completion.reused_tokens,
                  completion.new_tokens, ", typed through" if completion.typed_through else "")
        return completion.text

    def forget(self, uri: str) -> None:
        """A closed document: stop its generation and free what the engine keeps for it."""
        if (pending := self.in_flight.pop(uri, None)) is not None:
            pending.set()
        if self.engine is not None:
            self.model_worker.submit(self.engine.forget, uri)



def create_server(defaults: Settings = Settings(), speed: SpeedOptions = SpeedOptions()) -> GhostframeServer:
    """A fresh server with every handler registered (one per process; tests start processes)."""
    ls = GhostframeServer(defaults, speed)

    @ls.feature(types.INITIALIZE)
    def on_initialize(ls: GhostframeServer, params: types.InitializeParams):
        ls.apply_settings(params.initialization_options, initial=True)

    @ls.feature(types.INITIALIZED)
    def on_initialized(ls: GhostframeServer, params: types.InitializedParams):
        for problem in ls._pending_problems:
            ls.tell(problem)
        ls._pending_problems.clear()
        ls.start_loading()

    @ls.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    def on_configuration(ls: GhostframeServer, params: types.DidChangeConfigurationParams):
        ls.apply_settings(params.settings)

    @ls.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def on_close(ls: GhostframeServer, params: types.DidCloseTextDocumentParams):
        ls.forget(params.text_document.uri)

    @ls.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(ls: GhostframeServer, params: types.InlineCompletionParams):
        text = await ls.suggestion_at(params.text_document.uri, params.position)
        if not text:
            return []
        where = types.Range(start=params.position, end=params.position)
        return [types.InlineCompletionItem(insert_text=text, range=where)]

    @ls.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(resolve_provider=False))
    async def completion(ls: GhostframeServer, params: types.CompletionParams):
        text = await ls.suggestion_at(params.text_document.uri, params.position)
        if not text:
            return types.CompletionList(is_incomplete=True, items=[])
        where = types.Range(start=params.position, end=params.position)
        item = types.CompletionItem(
            label=text.split("\n", 1)[0].strip()[:80] or text.strip()[:80],
            kind=types.CompletionItemKind.Text,
            detail="ghostframe",
            filter_text="",
            sort_text="0",
            text_edit=types.TextEdit(range=where, new_text=text),
        )
        return types.CompletionList(is_incomplete=True, items=[item])

    @ls.command(CMD_RELOAD)
    def reload_model(ls: GhostframeServer, *args):
        ls.start_loading()
        return {"reloading": True}

    @ls.command(CMD_STATUS)
    def status(ls: GhostframeServer, *args):
        return asdict(ls.status)

    return ls
