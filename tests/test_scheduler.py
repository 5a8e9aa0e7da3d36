"""The scheduler on its own, with a fake engine the test steps token by token: supersession,
cancellation, the look-ahead, closing a document, the counters, the one model worker and warming.

No LSP, no polling, no sleeps: the fake engine makes a token only when the test grants one, and
the test waits on its events; `scheduler.run(lambda: None)` returns once everything queued on the
model worker before it has run (the worker runs jobs in order).
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field

import pytest

from ghostframe.server.inference.engine import Completion, Limits, WarmProgress
from ghostframe.server.inference.prompt import CompletionContext
from ghostframe.server.inference.scheduler import Scheduler, context_after_accepting
from ghostframe.server.inference.warming import WarmTarget

WAIT = 30  # seconds a test waits for the fake engine before it fails
DOC, OTHER = "file:///work/a.py", "file:///work/b.py"
END = CompletionContext("import pandas as pd\ntotal = df", "\n")  # a line's end: the look-ahead follows
MIDDLE = CompletionContext("total = f(df", ")\n")                   # text after the cursor: no look-ahead
LIMITS = Limits(max_new_tokens=3, max_prompt_tokens=64, multiline=False)
PROMPT_TOKENS = 8


@dataclass
class Generation:
    ctx: CompletionContext
    document: str | None
    cancel: threading.Event
    tokens: int = 0
    started: threading.Event = field(default_factory=threading.Event)


class FakeEngine:
    """An engine that decodes one token per permit the test grants and checks `cancel` after each, as the
    real engines do. The n-th generation answers "suggestion n". It records the thread of every call."""

    def __init__(self, looks_ahead: bool = True, warms: bool = True):
        self.looks_ahead, self.warms = looks_ahead, warms
        self.generations: list[Generation] = []
        self.forgotten: list[str] = []
        self.warm_steps = 0
        self.threads: set[str] = set()
        self._permits = threading.Semaphore(0)
        self._progress = threading.Condition()

    def grant(self, tokens: int) -> None:
        for _ in range(tokens):
            self._permits.release()

    async def made(self, generation: int, tokens: int) -> Generation:
        """Wait until the `generation`-th generation has made `tokens` tokens."""
        def reached() -> bool:
            return len(self.generations) > generation and self.generations[generation].tokens >= tokens

        def wait() -> None:
            with self._progress:
                assert self._progress.wait_for(reached, WAIT), f"generation {generation} made no {tokens} tokens"
        await asyncio.to_thread(wait)
        return self.generations[generation]

    async def cancelled(self, generation: int) -> None:
        """Wait until someone asked the `generation`-th generation to stop."""
        await self.made(generation, 0)
        assert await asyncio.to_thread(self.generations[generation].cancel.wait, WAIT)

    # --- the engine contract the scheduler uses ---------------------------------------------

    def complete(self, ctx: CompletionContext, limits: Limits, *, cancel: threading.Event | None = None,
                 document: str | None = None) -> Completion:
        self.threads.add(threading.current_thread().name)
        with self._progress:
            self.generations.append(now := Generation(ctx, document, cancel))
            index = len(self.generations) - 1
            self._progress.notify_all()
        while now.tokens < limits.max_new_tokens:
            assert self._permits.acquire(timeout=WAIT), "the test granted no token"
            with self._progress:
                now.tokens += 1
                self._progress.notify_all()
            if cancel.is_set():
                return Completion("", PROMPT_TOKENS, now.tokens, 0.01, cancelled=True)
        return Completion(f"suggestion {index}", PROMPT_TOKENS, now.tokens, 0.01, reused_tokens=2)

    def forget(self, document: str) -> None:
        self.threads.add(threading.current_thread().name)
        self.forgotten.append(document)

    def close(self) -> None:
        self.threads.add(threading.current_thread().name)

    def prompt_ids(self, ctx: CompletionContext, max_prompt_tokens: int) -> list[int]:
        return list(range(PROMPT_TOKENS))

    def warm_step(self, document: str, ids: list[int], chunk_tokens: int) -> WarmProgress:
        self.threads.add(threading.current_thread().name)
        self.warm_steps += 1
        return WarmProgress(len(ids) - 1, len(ids) - 1, len(ids) - 1)


@pytest.fixture
def engine():
    return FakeEngine()


@pytest.fixture
def scheduler(engine):
    scheduler = Scheduler()
    scheduler.serve(engine)
    yield scheduler
    scheduler.shutdown()
    engine.grant(1000)  # a test that failed midway leaves no worker waiting for tokens


async def settled(scheduler: Scheduler) -> None:
    """Everything queued on the model worker so far has run."""
    await scheduler.run(lambda: None)


async def test_a_newer_request_for_a_document_cancels_the_older(scheduler, engine):
    older = asyncio.ensure_future(scheduler.suggest(DOC, MIDDLE, LIMITS))
    engine.grant(1)
    await engine.made(0, 1)
    newer = asyncio.ensure_future(scheduler.suggest(DOC, MIDDLE, LIMITS))
    await engine.cancelled(0)
    engine.grant(1 + LIMITS.max_new_tokens)
    stopped, answered = (await older).completion, (await newer).completion
    assert stopped.cancelled and stopped.new_tokens == 2  # it stopped at the next token
    assert not answered.cancelled and answered.text == "suggestion 1"
    assert scheduler.counters.report() == {"completed": 1, "cancelled": 1, "lastCancelledAfterTokens": 2}
    assert scheduler.in_flight == 0


async def test_requests_for_different_documents_do_not_cancel_each_other(scheduler, engine):
    first = asyncio.ensure_future(scheduler.suggest(DOC, MIDDLE, LIMITS))
    second = asyncio.ensure_future(scheduler.suggest(OTHER, MIDDLE, LIMITS))
    await engine.made(0, 0)
    assert scheduler.in_flight == 2
    engine.grant(2 * LIMITS.max_new_tokens)
    assert [(await first).completion.text, (await second).completion.text] == ["suggestion 0", "suggestion 1"]
    assert scheduler.counters.completed == 2 and scheduler.counters.cancelled == 0


async def test_cancelling_a_request_stops_decoding_at_the_next_token(scheduler, engine):
    """pygls cancels the handler's task on $/cancelRequest; the generation must not run on."""
    request = asyncio.ensure_future(scheduler.suggest(DOC, MIDDLE, LIMITS))
    engine.grant(1)
    await engine.made(0, 1)
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request
    engine.grant(LIMITS.max_new_tokens)
    await settled(scheduler)
    assert engine.generations[0].tokens == 2
    assert scheduler.counters.report() == {"completed": 0, "cancelled": 1, "lastCancelledAfterTokens": 2}
    assert scheduler.in_flight == 0


async def test_the_next_line_is_computed_ahead_and_answers_after_accepting_and_enter(scheduler, engine):
    engine.grant(LIMITS.max_new_tokens)
    shown = await scheduler.suggest(DOC, END, LIMITS)
    assert shown.completion.text == "suggestion 0" and not shown.from_look_ahead
    following = context_after_accepting(END, "suggestion 0")
    ahead = await engine.made(1, 0)  # the look-ahead started on the worker, at the next line
    assert (ahead.ctx, ahead.document) == (following, DOC) and scheduler.in_flight == 1
    # the user accepted and pressed Enter while it runs: the request waits for it, no new generation
    request = asyncio.ensure_future(scheduler.suggest(DOC, following, LIMITS))
    await engine.made(1, 0)  # this wait lets the request run up to the look-ahead it awaits, before any token
    engine.grant(LIMITS.max_new_tokens)
    answer = await request
    assert answer.from_look_ahead and answer.completion.text == "suggestion 1"
    assert answer.computed_prompt_tokens == 0
    await settled(scheduler)
    assert len(engine.generations) == 2
    assert scheduler.counters.completed == 1  # the look-ahead is no request of the user's
    assert scheduler.in_flight == 0


async def test_a_request_elsewhere_cancels_the_look_ahead(scheduler, engine):
    engine.grant(LIMITS.max_new_tokens)
    await scheduler.suggest(DOC, END, LIMITS)
    await engine.made(1, 0)
    elsewhere = asyncio.ensure_future(scheduler.suggest(DOC, MIDDLE, LIMITS))
    await engine.cancelled(1)
    engine.grant(1 + LIMITS.max_new_tokens)
    assert (await elsewhere).completion.text == "suggestion 2"
    assert engine.generations[1].tokens == 1


@pytest.mark.parametrize("ctx, looks_ahead", [(MIDDLE, True), (END, False)])
async def test_no_look_ahead_with_text_after_the_cursor_or_an_engine_that_does_not_look_ahead(ctx, looks_ahead):
    engine = FakeEngine(looks_ahead=looks_ahead)
    scheduler = Scheduler()
    scheduler.serve(engine)
    try:
        engine.grant(LIMITS.max_new_tokens)
        assert (await scheduler.suggest(DOC, ctx, LIMITS)).completion.text == "suggestion 0"
        await settled(scheduler)
        assert len(engine.generations) == 1 and scheduler.in_flight == 0
    finally:
        scheduler.shutdown()


async def test_closing_a_document_stops_its_generation_and_forgets_it(scheduler, engine):
    request = asyncio.ensure_future(scheduler.suggest(DOC, MIDDLE, LIMITS))
    engine.grant(1)
    await engine.made(0, 1)
    scheduler.forget(DOC)
    assert scheduler.in_flight == 0
    engine.grant(1)
    assert (await request).completion.cancelled
    await settled(scheduler)
    assert engine.forgotten == [DOC] and engine.generations[0].tokens == 2


async def test_closing_a_document_drops_its_look_ahead(scheduler, engine):
    engine.grant(LIMITS.max_new_tokens)
    await scheduler.suggest(DOC, END, LIMITS)
    await engine.made(1, 0)
    scheduler.forget(DOC)
    await engine.cancelled(1)
    engine.grant(1)
    await settled(scheduler)
    assert engine.forgotten == [DOC] and scheduler.in_flight == 0
    # the same place asked again after reopening: a generation of its own, not the dropped look-ahead
    engine.grant(LIMITS.max_new_tokens)
    answer = await scheduler.suggest(DOC, context_after_accepting(END, "suggestion 0"), LIMITS)
    assert not answer.from_look_ahead and answer.completion.text == "suggestion 2"


async def test_no_engine_no_answer_and_a_closed_engine_answers_nothing_more(scheduler, engine):
    scheduler.close_engine()
    assert await scheduler.suggest(DOC, MIDDLE, LIMITS) is None
    await settled(scheduler)
    assert engine.generations == []


async def test_all_model_work_runs_on_the_one_model_worker(scheduler, engine):
    loaded_on = await scheduler.run(lambda: threading.current_thread().name)
    engine.grant(LIMITS.max_new_tokens)
    await scheduler.suggest(DOC, MIDDLE, LIMITS)
    scheduler.forget(DOC)
    scheduler.close_engine()
    await settled(scheduler)
    assert engine.threads == {loaded_on} and loaded_on != threading.current_thread().name


async def test_warming_runs_on_the_worker_and_reports_to_the_listener(engine):
    events = []
    done = asyncio.Event()

    def listener(event, document, progress):
        events.append((event, document))
        if event == "done":
            done.set()

    scheduler = Scheduler(warm_listener=listener)
    scheduler.serve(engine)
    try:
        scheduler.warm(DOC, lambda: WarmTarget(engine, END, 64))
        await asyncio.wait_for(done.wait(), WAIT)
        assert events == [("chunk", DOC), ("done", DOC)] and engine.warm_steps == 1
        assert engine.threads == {await scheduler.run(lambda: threading.current_thread().name)}
    finally:
        scheduler.shutdown()


async def test_a_request_takes_over_from_its_documents_warming(scheduler, engine):
    scheduler.warm(DOC, lambda: WarmTarget(engine, END, 64))
    assert scheduler.warmer.pending == 1
    engine.grant(LIMITS.max_new_tokens)
    await scheduler.suggest(DOC, MIDDLE, LIMITS)  # the warming never started: the request cancelled it
    await settled(scheduler)
    assert scheduler.warmer.pending == 0 and engine.warm_steps == 0


async def test_a_closed_engine_stops_warming_and_an_engine_that_does_not_warm_schedules_none(scheduler, engine):
    scheduler.warm(DOC, lambda: WarmTarget(engine, END, 64))
    scheduler.close_engine()
    assert scheduler.warmer.pending == 0
    scheduler.serve(FakeEngine(warms=False))
    scheduler.warm(DOC, lambda: WarmTarget(engine, END, 64))
    assert scheduler.warmer.pending == 0


async def test_the_answer_log_records_each_answer_with_what_the_show_filter_reads(scheduler, engine, monkeypatch,
                                                                                   tmp_path):
    """With GHOSTFRAME_ANSWER_LOG set, every answer (shown or hidden, not a superseded one) is appended with
    the document, the cursor's offset and the features; without it nothing is written anywhere."""
    import json

    from ghostframe.server.inference import answer_log

    engine.grant(LIMITS.max_new_tokens)
    await scheduler.suggest(DOC, MIDDLE, LIMITS)  # not logged: the variable is not set
    log = tmp_path / "answers.jsonl"
    monkeypatch.setenv(answer_log.ENVIRONMENT, str(log))
    older = asyncio.ensure_future(scheduler.suggest(DOC, MIDDLE, LIMITS))
    await engine.made(1, 0)
    newer = asyncio.ensure_future(scheduler.suggest(DOC, MIDDLE, LIMITS, show_filter=True))
    await engine.cancelled(1)
    engine.grant(1 + LIMITS.max_new_tokens)
    assert (await older).completion.cancelled
    await newer
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(entries) == 1 and list(tmp_path.iterdir()) == [log]
    entry = entries[0]
    assert entry["document"] == DOC and entry["offset"] == len(MIDDLE.before) and entry["line_suffix"] == ")"
    assert entry["text"] == "suggestion 2" and entry["typed_through"] is False and entry["before"] == MIDDLE.before
