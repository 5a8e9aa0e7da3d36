"""The ghostframe language server: one server object with typed state and thin LSP handlers."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
import uuid
from dataclasses import asdict, dataclass, replace
from typing import Any
from urllib.parse import unquote

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from ghostframe.server import __version__
from ghostframe.server.lsp import transport
from ghostframe.server.lsp.documents import context_at, forget_notebook, resident_memory_mb
from ghostframe.server.lsp.protocol import GhostframeProtocol
from ghostframe.server.inference.engine import Limits, SpeedOptions
from ghostframe.server.inference.engines import make_engine
from ghostframe.server.inference.model_loading import ModelLoadError, adapter_refusal, load_model
from ghostframe.server.inference.remote_client import EndpointError
from ghostframe.server.inference.model_options import ModelOptions
from ghostframe.server.inference.machine import cpu_description
from ghostframe.server.inference.scheduler import Scheduler
from ghostframe.server.lsp.warm_targets import edited_line, warm_target
from ghostframe.server.lsp.settings import Settings, parse_settings
from ghostframe.server.lsp.workspace_context import WorkspaceContext, document_path, folder_paths, uri_path

log = logging.getLogger("ghostframe.server")

STATUS_NOTIFICATION = "ghostframe/status"
# The extension tells where the cursor moved ({textDocument: {uri}, position}); editors tell only edits.
CURSOR_NOTIFICATION = "ghostframe/didMoveCursor"
CMD_RELOAD = "ghostframe.reloadModel"
CMD_STATUS = "ghostframe.status"


@dataclass
class Status:
    """What `ghostframe.status` returns and `ghostframe/status` announces."""

    state: str = "loading"  # loading | ready | error | disabled
    model: str = ""
    device: str = ""
    precision: str = ""  # int8 | float32 | bfloat16 (torch), or the GGUF's weight type (Q4_K_M)
    precisionChoice: str = ""  # how the precision was chosen, with the timings behind it
    engine: str = ""  # torch | llama.cpp
    engineReason: str = ""  # why that engine serves here
    modelChoice: str = ""  # with model auto: why this model, from this machine's measured rates
    cpu: str = ""  # the CPU and its flags (AVX2, AVX-512, AVX512-BF16, AMX), which decide the precision
    adapter: str | None = None
    adapterRefused: str | None = None  # an adapter was asked for and not served (its gate): why; the base serves
    ready: bool = False
    message: str = ""
    lastLatencyMs: float | None = None
    lastPrefillTokens: int | None = None  # prompt tokens the last request computed (the rest came from its cache)
    warmedTokens: int = 0  # prompt tokens prefilled in the background before requests asked (warming.py)
    error: str | None = None
    # engine remote: the team server's state ("remote: ok", "remote: unreachable", "remote: at capacity", ...)
    # and that the prompt leaves this machine for it
    remote: str | None = None
    remoteFailures: dict | None = None  # failed requests to the team server by state, since it was loaded


class GhostframeServer(LanguageServer):
    """Holds the settings and the status; the scheduler holds the model and runs every request
    (all model work on its one worker thread, so the event loop keeps answering meanwhile)."""

    def __init__(self, defaults: Settings = Settings(), speed: SpeedOptions = SpeedOptions(), speculation: str = "auto"):
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
            protocol_cls=GhostframeProtocol,
        )
        self.defaults = defaults
        self.speed = speed
        self.speculation = speculation  # llama.cpp's speculative decoding (command line only)
        self.settings = defaults
        self.status = Status()
        self.scheduler = Scheduler(warm_listener=self._warmed)
        self.loading: ModelOptions | None = None  # the model asked for by the last load (loading or served)
        self.workspace_context = WorkspaceContext()  # repository and data context (built in the background)
        self._load_serial = 0
        self._settings_serial = 0
        self._pending_problems: list[str] = []
        self.session: transport.Session | None = None

    # --- serving -------------------------------------------------------------------------

    def start_io(self, stdin=None, stdout=None) -> int:
        """Serve LSP on stdio until `exit` or the end of input; return the exit code."""
        return self._serve(transport.serve_stdio(self, stdin or sys.stdin.buffer, stdout or sys.stdout.buffer))

    def start_tcp(self, host: str, port: int) -> int:
        """Serve one TCP client (others are refused while it is connected); return the exit code."""
        return self._serve(transport.serve_tcp(self, host, port))

    def _serve(self, session) -> int:
        try:
            return asyncio.run(session)
        except KeyboardInterrupt:
            return 1
        finally:
            self.scheduler.shutdown()
            self.shutdown()

    def stop_serving(self) -> None:
        """`exit` arrived: end the session once the current message is handled."""
        if self.session is not None:
            self.session.push(transport.STOP)

    # --- messages to the editor -------------------------------------------------------

    def tell(self, message: str, kind: types.MessageType = types.MessageType.Warning) -> None:
        """Show a message to the user and log it."""
        log.warning(message)
        self.window_show_message(types.ShowMessageParams(type=kind, message=message))

    def log_to_client(self, message: str, kind: types.MessageType = types.MessageType.Info) -> None:
        log.info(message)
        self.window_log_message(types.LogMessageParams(type=kind, message=message))

    def announce(self, **changes) -> None:
        """Update the status and tell the editor; `state` always follows from the facts."""
        for key, value in changes.items():
            setattr(self.status, key, value)
        self.status.state = self.state()
        self.protocol.notify(STATUS_NOTIFICATION, asdict(self.status))

    def state(self) -> str:
        if not self.settings.enable:
            return "disabled"
        if self.scheduler.engine is not None:
            return "ready"
        return "error" if self.status.error else "loading"

    def held(self) -> dict:
        """What the server keeps per document, for `ghostframe.status` (and the soak bench)."""
        try:
            workspace = self.workspace
        except RuntimeError:  # not initialized: pygls has no workspace yet
            workspace = None
        texts = workspace.text_documents if workspace else {}
        engine = self.scheduler.engine
        kept = engine.documents() if engine is not None else set()
        return {
            "documents": len(texts),
            "notebooks": len(workspace.notebook_documents) if workspace else 0,
            "notebookCells": sum(workspace.get_notebook_document(cell_uri=uri) is not None for uri in texts),
            "engineDocuments": sorted(kept),
            "inFlight": self.scheduler.in_flight,
            "rssMb": resident_memory_mb(),
        }

    # --- settings ------------------------------------------------------------------------

    def apply_settings(self, options, *, initial: bool = False) -> None:
        """Take new settings; report rejected values; reload the model when it changed."""
        settings, problems = parse_settings(options, self.settings)
        if settings == self.settings and not problems:
            return
        if initial:
            self._pending_problems.extend(problems)
        else:
            for problem in problems:
                self.tell(problem)
        self.settings = settings
        if initial:  # nothing may be sent before initialize is answered; initialized loads and announces
            self.status.state = self.state()
        else:
            self.load_if_changed()

    def load_if_changed(self) -> None:
        """Load the model when the settings ask for another than the last load's (or none was loaded);
        other settings apply to the next request, with the model serving on."""
        if self.loading != self._model_request(self.settings):
            self.start_loading()
        elif self.state() != self.status.state:
            self.announce()

    async def pull_settings(self) -> Any | None:
        """The editor's `ghostframe` settings via workspace/configuration, when the client offers it
        (None otherwise, or when it has none: then the pushed settings stand)."""
        workspace = self.client_capabilities.workspace
        if not (workspace and workspace.configuration):
            return None
        serial = self._settings_serial = self._settings_serial + 1
        try:
            result = await asyncio.wait_for(self.workspace_configuration_async(
                types.ConfigurationParams(items=[types.ConfigurationItem(section="ghostframe")])), timeout=10)
        except Exception as exc:  # a client that fails this request still gets completions
            log.warning("workspace/configuration failed: %s", exc)
            return None
        if serial != self._settings_serial or not result or not isinstance(result[0], dict):
            return None  # superseded by a newer change, or nothing configured
        return result[0]

    def _model_request(self, settings: Settings) -> ModelOptions:
        """Settings fall back to the command line's values (`ghostframe-server --model ...`)."""
        auto = lambda name: getattr(settings, name) if getattr(settings, name) != "auto" else getattr(self.defaults, name)  # noqa: E731
        return ModelOptions(model=settings.model or self.defaults.model, adapter=settings.adapter or self.defaults.adapter,
                            device=auto("device"), precision=auto("precision"), engine=auto("engine"),
                            speculation=self.speculation,
                            force_adapter=settings.force_adapter or self.defaults.force_adapter,
                            endpoint=settings.endpoint or self.defaults.endpoint,
                            endpoint_api=settings.endpoint_api if settings.endpoint_api != Settings.endpoint_api
                            else self.defaults.endpoint_api,
                            endpoint_model=settings.endpoint_model or self.defaults.endpoint_model,
                            ca_file=settings.ca_file or self.defaults.ca_file,
                            allow_insecure_http=settings.allow_insecure_http or self.defaults.allow_insecure_http)

    # --- model loading -------------------------------------------------------------------

    def start_loading(self) -> None:
        """Drop the current model now (requests answer empty at once) and load in the background."""
        self._load_serial += 1
        request = self.loading = self._model_request(self.settings)
        self.scheduler.close_engine()
        self.announce(ready=False, error=None, adapterRefused=None, remote=None, remoteFailures=None,
                      model=request.model or "auto",
                      adapter=request.adapter or None,
                      device=request.device, precision="", engine="", engineReason="", modelChoice="",
                      message="loading model")
        asyncio.ensure_future(self._load(self._load_serial, request))

    async def _load(self, serial: int, request: ModelOptions) -> None:
        """Load the model, reporting work-done progress to the editor."""
        loop = asyncio.get_running_loop()
        token = await self._begin_progress("ghostframe: loading model")

        def report(message: str) -> None:
            loop.call_soon_threadsafe(self._report_progress, token, message)

        started = time.perf_counter()
        try:
            refused = adapter_refusal(request.adapter, request.force_adapter)
            if refused:  # the base model serves, and the user is told why and how to change it
                request = replace(request, adapter="")
            loaded = await self.scheduler.run(lambda: load_model(
                request.model or None, request.adapter or None, request.device, report,
                precision=request.precision, force_adapter=request.force_adapter, engine=request.engine,
                speculation=request.speculation, prompt_tokens=self.settings.max_prompt_tokens,
                endpoint=request.remote_endpoint()))
        except (ModelLoadError, EndpointError) as exc:
            loaded, error, refused = None, str(exc), None
        except Exception as exc:  # never let a load take the server down
            log.exception("model load failed")
            loaded, error, refused = None, f"{type(exc).__name__}: {exc}", None
        if serial != self._load_serial:
            if loaded is not None:  # a newer load superseded this one
                self.scheduler.dispose(make_engine(loaded))
            return
        if loaded is None:
            self._end_progress(token, "failed")
            self.tell(f"ghostframe could not load its model: {error}", types.MessageType.Error)
            self.announce(error=error, message=error)  # after the message: a client acting on "error" has it
            return
        self.scheduler.serve(make_engine(loaded, self.speed))
        seconds = time.perf_counter() - started
        self._end_progress(token, f"ready in {seconds:.1f}s")
        where = f"{loaded.model_name} on {loaded.device} ({loaded.engine}, {loaded.precision})"
        if refused:
            self.tell(f"ghostframe serves the base model {loaded.model_name} without your adapter. {refused} "
                      "Or clear ghostframe.adapter to stop asking for it.")
        self.announce(ready=True, adapterRefused=refused or None,
                      model=loaded.model_name, device=loaded.device, adapter=loaded.adapter,
                      precision=loaded.precision, cpu=cpu_description(), engine=loaded.engine,
                      engineReason=loaded.engine_reason,
                      remote=f"remote: prompts go to {loaded.model.endpoint.url}" if loaded.engine == "remote" else None,
                      modelChoice=loaded.tier.describe() if loaded.tier is not None else "",
                      precisionChoice=loaded.precision_choice.describe() if loaded.precision_choice else "",
                      message=where)
        self.log_to_client(f"model {where} ready in {seconds:.1f}s"
                           + (f"; {loaded.tier.describe()}" if loaded.tier is not None else ""))

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

    async def suggestion_at(self, uri: str, position: types.Position, invoked: bool = False) -> str:
        """The suggestion at a position, "" when there is none (or the model is not ready). The show filter
        judges what typing brings up, not what the user asked for (`invoked`: an explicit trigger)."""
        ctx = context_at(self.workspace, uri, position)
        settings = self.settings
        if self.scheduler.engine is None or not settings.enable or ctx is None:
            return ""
        ctx = self.with_context(uri, ctx)
        limits = Limits(max_new_tokens=settings.max_new_tokens, max_prompt_tokens=settings.max_prompt_tokens,
                        multiline=settings.multiline)
        # one key per document, however the client spells its URI
        answer = await self.scheduler.suggest(unquote(uri), ctx, limits, show_filter=settings.show_filter and not invoked)
        if answer is None:
            return ""
        completion = answer.completion
        if completion.short_window and not answer.from_look_ahead:  # warm all the window for the next ones
            self.warm(uri, position=position)
        self._remote_health()
        if completion.cancelled:
            return ""
        self.status.lastLatencyMs = round(completion.seconds * 1000, 1)
        self.status.lastPrefillTokens = answer.computed_prompt_tokens
        log.debug("completion %r in %.0f ms (%d prompt tokens, %d reused, %d new%s%s%s)", completion.text,
                  completion.seconds * 1000, completion.prompt_tokens, completion.reused_tokens,
                  completion.new_tokens, ", typed through" if completion.typed_through else "",
                  ", computed ahead" if answer.from_look_ahead else "", ", hidden" if answer.hidden else "")
        return completion.text

    def _remote_health(self) -> None:
        """Announce the remote engine's state when it changed (the status bar shows it)."""
        engine = self.scheduler.engine
        describe = getattr(engine, "describe_health", None)
        if describe is None:
            return
        failures = dict(engine.failures)
        if (health := describe()) != self.status.remote or failures != self.status.remoteFailures:
            self.announce(remote=health, remoteFailures=failures)

    def forget(self, uri: str) -> None:
        """A closed document: stop its generation and free what the engine keeps for it."""
        self.scheduler.forget(unquote(uri))

    def warm(self, uri: str, line: int | None = None, edited: bool = False,
             position: types.Position | None = None) -> None:
        """Prefill `uri`'s cache in the background at `position`, else up to the end of `line` (None: of
        the document)."""
        if edited:
            self.scheduler.activity()  # warm once the user pauses
        self.scheduler.warm(unquote(uri), lambda: self._with_context_target(uri, warm_target(
            self.workspace, uri, line, self.scheduler.engine if self.settings.enable else None,
            self.settings.max_prompt_tokens, position)))

    def with_context(self, uri: str, ctx):
        """`ctx` with snippets from other workspace files and data-file notes, as the settings allow."""
        return self.workspace_context.context_for(unquote(uri), document_path(self.workspace, uri), ctx,
                                                  self.settings.repo_context, self.settings.data_context)

    def _with_context_target(self, uri: str, target):
        """A warm-up prompt with the same context a request will have, so its cache is reused."""
        return None if target is None else replace(target, ctx=self.with_context(uri, target.ctx))

    async def watch_source_files(self) -> None:
        """Ask the editor for workspace/didChangeWatchedFiles on .py/.ipynb files, where it can register them."""
        workspace = self.client_capabilities.workspace
        watched = workspace.did_change_watched_files if workspace else None
        if not (watched and watched.dynamic_registration):
            return
        watchers = [types.FileSystemWatcher(glob_pattern=pattern) for pattern in ("**/*.py", "**/*.ipynb")]
        registration = types.Registration(id=f"ghostframe-watch-{uuid.uuid4()}",
                                          method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES,
                                          register_options=types.DidChangeWatchedFilesRegistrationOptions(watchers))
        try:
            await self.client_register_capability_async(types.RegistrationParams(registrations=[registration]))
        except Exception as exc:  # the index still follows didChange/didSave without it
            log.info("could not register file watching: %s", exc)

    def index_document(self, uri: str, from_disk: bool = False) -> None:
        """Tell the workspace index a document changed (its editor text) or was saved/closed (disk)."""
        path = uri_path(uri)
        if path is None:
            return
        if from_disk or unquote(uri) not in self.workspace.text_documents:
            self.workspace_context.changed(path)
        else:
            self.workspace_context.changed(path, self.workspace.get_text_document(uri).source)

    def _warmed(self, event: str, uri: str, progress) -> None:
        if event == "chunk":
            self.status.warmedTokens += progress.computed



def create_server(defaults: Settings = Settings(), speed: SpeedOptions = SpeedOptions(),
                  speculation: str = "auto") -> GhostframeServer:
    """A fresh server with every handler registered (one per process; tests start processes)."""
    ls = GhostframeServer(defaults, speed, speculation)

    @ls.feature(types.INITIALIZE)
    def on_initialize(ls: GhostframeServer, params: types.InitializeParams):
        ls.apply_settings(params.initialization_options, initial=True)
        ls.workspace_context.open_folders(folder_paths(params.workspace_folders, params.root_uri))

    @ls.feature(types.INITIALIZED)
    async def on_initialized(ls: GhostframeServer, params: types.InitializedParams):
        if (pulled := await ls.pull_settings()) is not None:
            ls.apply_settings(pulled, initial=True)
        for problem in ls._pending_problems:
            ls.tell(problem)
        ls._pending_problems.clear()
        ls.load_if_changed()  # a repeated `initialized` keeps the model serving unless its settings changed
        await ls.watch_source_files()

    @ls.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def on_configuration(ls: GhostframeServer, params: types.DidChangeConfigurationParams):
        ls.apply_settings(params.settings)  # pushed values apply at once; pulled ones refine them
        if (pulled := await ls.pull_settings()) is not None:
            ls.apply_settings(pulled)

    @ls.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def on_open(ls: GhostframeServer, params: types.DidOpenTextDocumentParams):
        ls.warm(params.text_document.uri)

    @ls.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def on_change(ls: GhostframeServer, params: types.DidChangeTextDocumentParams):
        changes = params.content_changes
        ls.warm(params.text_document.uri, edited_line(changes[-1]) if changes else None, edited=True)
        ls.index_document(params.text_document.uri)

    @ls.feature(CURSOR_NOTIFICATION)
    def on_cursor_moved(ls: GhostframeServer, params):
        """Warm the prompt where the user now is, while they read before typing."""
        try:
            uri, where = params.textDocument.uri, params.position
            position = types.Position(line=int(where.line), character=int(where.character))
        except (AttributeError, TypeError, ValueError):
            log.info("ignored a malformed %s: %r", CURSOR_NOTIFICATION, params)
            return
        if position.line >= 0 and position.character >= 0:
            ls.warm(uri, position=position)

    @ls.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def on_save(ls: GhostframeServer, params: types.DidSaveTextDocumentParams):
        ls.index_document(params.text_document.uri, from_disk=True)

    @ls.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    def on_watched_files(ls: GhostframeServer, params: types.DidChangeWatchedFilesParams):
        for event in params.changes:
            if (path := uri_path(event.uri)) is not None:
                if event.type == types.FileChangeType.Deleted:
                    ls.workspace_context.deleted(path)
                else:
                    ls.workspace_context.changed(path)

    @ls.feature(types.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)
    def on_folders(ls: GhostframeServer, params: types.DidChangeWorkspaceFoldersParams):
        ls.workspace_context.open_folders(folder_paths(ls.workspace.folders.values()))

    @ls.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def on_close(ls: GhostframeServer, params: types.DidCloseTextDocumentParams):
        ls.forget(params.text_document.uri)
        ls.workspace_context.forget_document(unquote(params.text_document.uri))
        ls.index_document(params.text_document.uri, from_disk=True)  # unsaved edits are gone

    @ls.feature(types.NOTEBOOK_DOCUMENT_DID_CHANGE)
    def on_notebook_change(ls: GhostframeServer, params: types.DidChangeNotebookDocumentParams):
        structure = params.change.cells.structure if params.change.cells else None
        for cell in (params.change.cells.text_content or []) if params.change.cells else []:
            changes = cell.changes
            ls.warm(cell.document.uri, edited_line(changes[-1]) if changes else None, edited=True)
        for cell in (structure.did_close or []) if structure else []:
            ls.forget(cell.uri)

    @ls.feature(types.NOTEBOOK_DOCUMENT_DID_CLOSE)
    def on_notebook_close(ls: GhostframeServer, params: types.DidCloseNotebookDocumentParams):
        for cell in forget_notebook(ls.workspace, params):
            ls.forget(cell)

    @ls.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(ls: GhostframeServer, params: types.InlineCompletionParams):
        invoked = params.context is not None and params.context.trigger_kind == types.InlineCompletionTriggerKind.Invoked
        text = await ls.suggestion_at(params.text_document.uri, params.position, invoked)
        if not text:
            return []
        where = types.Range(start=params.position, end=params.position)
        return [types.InlineCompletionItem(insert_text=text, range=where)]

    @ls.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(resolve_provider=False))
    async def completion(ls: GhostframeServer, params: types.CompletionParams):
        invoked = params.context is not None and params.context.trigger_kind == types.CompletionTriggerKind.Invoked
        text = await ls.suggestion_at(params.text_document.uri, params.position, invoked)
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
        return {**asdict(ls.status), "held": ls.held(), "counters": ls.scheduler.counters.report()}

    return ls
