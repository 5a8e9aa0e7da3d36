"""Warm documents' KV caches before the user asks, in chunks that give way to real requests.

The first suggestion in a file is the slow one: its whole prompt must be prefilled. When a
document is opened, when a notebook cell is first edited, and when the user pauses after
editing, its prompt is prefilled in the background, one chunk per job on the model's single
worker thread. That worker runs jobs in order, and the next chunk is only queued after the last one finished,
so a request that arrives meanwhile runs before it: a request waits at most one chunk, and
it reuses whatever is already in the cache (engine.warm_step keeps it there). Warming also
waits for a pause: nothing is prefilled while requests or edits keep coming.

Bounded: only the `max_documents` most recently scheduled documents are warmed (an older
one is dropped), a closed document's warming is cancelled, and a model reload cancels all.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Callable

from ghostframe.server.inference.engine import CompletionEngine, WarmProgress
from ghostframe.server.inference.prompt import CompletionContext

# Short enough that a request waits little for the chunk running when it arrives, and wide enough
# (> 24 rows) to take the same matmul path as a cold prefill with int8 weights.
CHUNK_TOKENS = 64
# Warm once this long has passed without an edit or a request anywhere.
PAUSE_SECONDS = 0.3
MAX_DOCUMENTS = 3

log = logging.getLogger("ghostframe.warming")


@dataclass(frozen=True)
class WarmTarget:
    """What to prefill: the prompt `engine` would build for a request at `ctx`."""

    engine: CompletionEngine
    ctx: CompletionContext
    max_prompt_tokens: int


Listener = Callable[[str, str, Any], None]  # (event, document, detail): "chunk" (WarmProgress), "done", "cancelled"


class Warmer:
    """Schedules warm-up prefills on the model worker from the event loop (not thread-safe: loop only)."""

    def __init__(self, worker: Executor, *, max_documents: int = MAX_DOCUMENTS, chunk_tokens: int = CHUNK_TOKENS,
                 pause_seconds: float = PAUSE_SECONDS, listener: Listener | None = None):
        self.worker = worker
        self.max_documents = max_documents
        self.chunk_tokens = chunk_tokens
        self.pause_seconds = pause_seconds
        self.listener = listener or (lambda *_: None)
        self.warmed_tokens = 0  # tokens prefilled by warming so far (for the status)
        self._tasks: OrderedDict[str, asyncio.Task] = OrderedDict()
        self._last_activity = float("-inf")

    def schedule(self, document: str, target: Callable[[], WarmTarget | None], delay: float = 0.0) -> None:
        """(Re)start warming `document` once `delay` seconds and a pause have passed.

        `target` is asked then, on the event loop, so it sees the document as it is by then;
        it returns None when there is nothing to warm (no model, warming off).
        """
        self.cancel(document, quiet=True)
        self._tasks[document] = asyncio.get_running_loop().create_task(self._run(document, target, delay))
        while len(self._tasks) > self.max_documents:
            self.cancel(next(iter(self._tasks)))

    def activity(self) -> None:
        """An edit or a request happened: warming waits for the next pause."""
        self._last_activity = time.monotonic()

    def cancel(self, document: str, quiet: bool = False) -> None:
        """Stop warming `document` (closed, or rescheduled); a chunk already running finishes."""
        task = self._tasks.pop(document, None)
        if task is not None and not task.done():
            task.cancel()
            if not quiet:
                self.listener("cancelled", document, None)

    def cancel_all(self) -> None:
        for document in list(self._tasks):
            self.cancel(document)

    @property
    def pending(self) -> int:
        return sum(not task.done() for task in self._tasks.values())

    async def _pause(self) -> None:
        while (wait := self._last_activity + self.pause_seconds - time.monotonic()) > 0:
            await asyncio.sleep(wait)

    async def _run(self, document: str, target: Callable[[], WarmTarget | None], delay: float) -> None:
        loop = asyncio.get_running_loop()
        me = asyncio.current_task()
        try:
            if delay > 0:
                await asyncio.sleep(delay)
            await self._pause()
            what = target()
            if what is None:
                return
            ids = await loop.run_in_executor(self.worker, what.engine.prompt_ids, what.ctx, what.max_prompt_tokens)
            while True:
                await self._pause()
                progress: WarmProgress = await loop.run_in_executor(
                    self.worker, what.engine.warm_step, document, ids, self.chunk_tokens)
                self.warmed_tokens += progress.computed
                self.listener("chunk", document, progress)
                if progress.done:
                    self.listener("done", document, progress)
                    return
        except asyncio.CancelledError:
            raise
        except Exception:  # warming is only a head start: a failure must not reach the user
            log.exception("warming %s failed", document)
        finally:
            if self._tasks.get(document) is me:
                del self._tasks[document]
