"""Request scheduling: which generation runs, which one stops, and what is computed ahead.

The language server hands every suggestion request here; this module is the product's
concurrency, apart from the protocol so it can be tested with a fake engine:

- all model work (loading, decoding, warming, freeing) runs on ONE worker thread, in order, so
  an engine is never used from two threads and the event loop keeps answering meanwhile;
- a document has at most one generation in flight: a newer request for it cancels the older
  (supersession), and a cancelled request ($/cancelRequest) stops decoding at the next token;
- after a suggestion at a line's end, the suggestion for the next line (the user accepts and
  presses Enter) is computed ahead, and a request there waits for it instead of starting over;
- warming (warming.Warmer) shares the worker and gives way to requests;
- it counts the generations that finished and those stopped early.

A document is a key (the unquoted URI); nothing here knows LSP.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Callable, TypeVar

from ghostframe.server.inference import answer_log
from ghostframe.server.inference.engine import Completion, CompletionEngine, Limits
from ghostframe.server.inference.prompt import CompletionContext
from ghostframe.server.inference.show_filter import should_show, typed_into
from ghostframe.server.inference.warming import Listener, Warmer, WarmTarget

log = logging.getLogger("ghostframe.scheduler")

T = TypeVar("T")


@dataclass(frozen=True)
class LookAhead:
    """The next line's suggestion being computed ahead, at the context the cursor will have."""

    before: str
    after: str
    job: Future  # of the Completion

    def serves(self, ctx: CompletionContext) -> bool:
        """A request at `ctx` can wait for this one instead of starting its own generation."""
        return (self.before, self.after) == (ctx.before, ctx.after) and not self.job.done()


@dataclass(frozen=True)
class Answer:
    """A request's completion, and whether it came from the look-ahead (so the request computed nothing)."""

    completion: Completion
    from_look_ahead: bool = False
    hidden: bool = False  # the show filter judged the model's suggestion unlikely to be taken: answered empty

    @property
    def computed_prompt_tokens(self) -> int:
        """Prompt tokens this request ran through the model (the rest came from a cache or the look-ahead)."""
        if self.from_look_ahead:
            return 0
        return self.completion.prompt_tokens - self.completion.reused_tokens


@dataclass
class Counters:
    """Request generations that finished and that stopped early (cancelled or superseded); counted on the
    model worker, so one nobody awaits any more still counts. The look-ahead is not counted."""

    completed: int = 0
    cancelled: int = 0
    last_cancelled_after_tokens: int | None = None

    def count(self, completion: Completion) -> None:
        if completion.cancelled:
            self.cancelled += 1
            self.last_cancelled_after_tokens = completion.new_tokens
        else:
            self.completed += 1

    def report(self) -> dict:
        """As `ghostframe.status` names them."""
        return {"completed": self.completed, "cancelled": self.cancelled,
                "lastCancelledAfterTokens": self.last_cancelled_after_tokens}


def context_after_accepting(ctx: CompletionContext, suggestion: str) -> CompletionContext:
    """Where the cursor will be after the user accepts `suggestion` at the end of a line and presses
    Enter: the next line, indented as editors indent Python (one level more after a colon)."""
    line = (ctx.line_prefix + suggestion).rsplit("\n", 1)[-1]
    indentation = line[: len(line) - len(line.lstrip())]
    if line.rstrip().endswith(":"):
        indentation += "\t" if indentation.startswith("\t") else "    "
    return replace(ctx, before=ctx.before + suggestion + "\n" + indentation)


class Scheduler:
    """Runs suggestion requests, the look-ahead and warming on the one model worker.

    Call it from the event loop only (its bookkeeping is not locked); the engine runs on the worker.
    """

    def __init__(self, warm_listener: Listener | None = None):
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ghostframe-model")
        self.engine: CompletionEngine | None = None
        self.warmer = Warmer(self.worker, listener=warm_listener)
        self.counters = Counters()
        self._in_flight: dict[str, threading.Event] = {}  # per document: how to stop its generation
        self._ahead: dict[str, LookAhead] = {}

    # --- the model -------------------------------------------------------------------------

    async def run(self, work: Callable[[], T]) -> T:
        """Any other model work (loading one) on the worker, after what is queued."""
        return await asyncio.get_running_loop().run_in_executor(self.worker, work)

    def serve(self, engine: CompletionEngine) -> None:
        self.engine = engine

    def close_engine(self) -> None:
        """Drop the engine now (requests answer empty at once), stop warming, and free its model after
        the job running."""
        engine, self.engine = self.engine, None
        self.warmer.cancel_all()
        if engine is not None:
            self.dispose(engine)

    def dispose(self, engine: CompletionEngine) -> None:
        """Free an engine that no request may use (closed, or loaded for a superseded load)."""
        self.worker.submit(engine.close)

    def shutdown(self) -> None:
        """The session ended: stop every generation and drop the queued work."""
        for cancel in self._in_flight.values():
            cancel.set()
        self.worker.shutdown(wait=False, cancel_futures=True)

    # --- requests -----------------------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        """Documents with a generation running or queued (a request's or the look-ahead's)."""
        return len(self._in_flight)

    async def suggest(self, document: str, ctx: CompletionContext, limits: Limits, *,
                      show_filter: bool = False) -> Answer | None:
        """The suggestion at `ctx` in `document` (None with no model). A cancelled one has `cancelled` set:
        a newer request for the document superseded it. Cancelling the awaiting task stops decoding at
        the next token. With `show_filter`, a suggestion show_filter judges unlikely to be taken answers
        empty (the engine still remembers it: typing its beginning shows the rest)."""
        engine = self.engine
        if engine is None:
            return None
        self.warmer.activity()
        ahead = self._ahead.get(document)
        if ahead is not None and ahead.serves(ctx):
            # the user accepted and pressed Enter while the next line was being computed ahead: wait for it
            completion = await asyncio.wrap_future(ahead.job)
            if not completion.cancelled:
                return self._judged(document, Answer(completion, from_look_ahead=True), ctx, show_filter)
        # the user is here now: warming the document for another place would overwrite the cache this
        # request fills (a document keeps one prompt's cache)
        self.warmer.cancel(document, quiet=True)
        cancel = self._start(document)
        try:
            completion = await asyncio.get_running_loop().run_in_executor(
                self.worker, self._complete_counted, engine, ctx, limits, cancel, document)
        except asyncio.CancelledError:
            cancel.set()  # $/cancelRequest: stop decoding at the next token
            raise
        finally:
            self._finish(document, cancel)
            self.warmer.activity()
        answer = self._judged(document, Answer(completion), ctx, show_filter)
        if answer.completion.text and not completion.cancelled and not ctx.line_suffix.strip():
            self._look_ahead(document, ctx, completion.text, limits)
        return answer

    @staticmethod
    def _judged(document: str, answer: Answer, ctx: CompletionContext, show_filter: bool) -> Answer:
        """`answer`, emptied when the show filter hides it (never what the user typed into: `typed_into`)."""
        done = answer.completion
        hide = (show_filter and not done.cancelled and bool(done.text)
                and not typed_into(done.typed_through, done.token_logprobs)
                and not should_show(done.text, ctx, done.token_logprobs))
        answer_log.record(document, ctx, done, hide)
        return replace(answer, completion=replace(done, text=""), hidden=True) if hide else answer

    def _look_ahead(self, document: str, ctx: CompletionContext, suggestion: str, limits: Limits) -> None:
        """Compute now, in the background, the suggestion the editor will ask for once the user accepts
        `suggestion` and presses Enter, so that one shows at once (the engine answers it from what it
        keeps per document). A newer request for the document cancels it, as any older request."""
        engine = self.engine
        if engine is None or not engine.looks_ahead:
            return
        following = context_after_accepting(ctx, suggestion)
        cancel = self._start(document)
        loop = asyncio.get_running_loop()
        job = self.worker.submit(self._complete, engine, following, limits, cancel, document)
        ahead = self._ahead[document] = LookAhead(following.before, following.after, job)

        def done(finished: Future) -> None:
            self._finish(document, cancel)
            if self._ahead.get(document) is ahead:
                del self._ahead[document]
            if not finished.cancelled() and finished.exception() is None:
                result = finished.result()
                log.debug("next line computed ahead: %r in %.0f ms%s", result.text, result.seconds * 1000,
                          " (cancelled)" if result.cancelled else "")

        job.add_done_callback(lambda finished: loop.call_soon_threadsafe(done, finished))

    def _start(self, document: str) -> threading.Event:
        """Register a generation for `document`, cancelling the one it supersedes."""
        if (older := self._in_flight.get(document)) is not None:
            older.set()
        cancel = self._in_flight[document] = threading.Event()
        return cancel

    def _finish(self, document: str, cancel: threading.Event) -> None:
        if self._in_flight.get(document) is cancel:
            del self._in_flight[document]

    def _complete(self, engine: CompletionEngine, ctx: CompletionContext, limits: Limits,
                  cancel: threading.Event, document: str) -> Completion:
        """The one call into the engine (on the model worker)."""
        return engine.complete(ctx, limits, cancel=cancel, document=document)

    def _complete_counted(self, *args) -> Completion:
        completion = self._complete(*args)
        self.counters.count(completion)
        return completion

    # --- documents -------------------------------------------------------------------------------

    def forget(self, document: str) -> None:
        """A closed document: stop its generation and warming, and free what the engine keeps for it."""
        self.warmer.cancel(document)
        self._ahead.pop(document, None)
        if (pending := self._in_flight.pop(document, None)) is not None:
            pending.set()
        if self.engine is not None:
            self.worker.submit(self.engine.forget, document)

    def warm(self, document: str, target: Callable[[], WarmTarget | None]) -> None:
        """Prefill `document`'s cache once the user pauses, at the prompt `target` gives then (warming.py),
        where the engine warms (while none is loaded, `target` decides then)."""
        if self.engine is not None and not self.engine.warms:
            return

        def wanted() -> WarmTarget | None:
            what = target()
            return what if what is not None and what.engine.warms else None

        self.warmer.schedule(document, wanted)

    def activity(self) -> None:
        """The user edited: warming waits for the next pause."""
        self.warmer.activity()
