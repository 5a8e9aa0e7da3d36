"""Warming a document's KV cache: used by the next request, same completions, yields, stops on close.

Checked by events (what ran on the model worker, in which order; how many prompt tokens a
request reused), never by wall-clock thresholds.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import TINY_MODEL
from ghostframe.server.inference.engine import Limits, SpeedOptions, TorchEngine
from ghostframe.server.inference.prompt import CompletionContext
from ghostframe.server.inference.reference_engine import ReferenceEngine
from ghostframe.server.inference.warming import Warmer, WarmTarget
from ghostframe.server.tools.terminal_cli import example_path

TEXT = example_path().read_text().rstrip()


def limits(max_new_tokens: int, max_prompt_tokens: int = 256) -> Limits:
    return Limits(max_new_tokens=max_new_tokens, max_prompt_tokens=max_prompt_tokens, multiline=True)


@pytest.fixture(scope="module")
def loaded():
    from ghostframe.server.inference.model_loading import load_model

    return load_model(str(TINY_MODEL), device="cpu")


def warm_fully(engine: TorchEngine, document: str, ctx: CompletionContext, chunk: int = 32,
               budget: int = 256) -> list:
    ids = engine.prompt_ids(ctx, budget)
    steps = [engine.warm_step(document, ids, chunk)]
    while not steps[-1].done:
        steps.append(engine.warm_step(document, ids, chunk))
    return steps


def test_warming_a_whole_file_serves_a_request_anywhere_before_its_end(loaded):
    engine = TorchEngine(loaded, SpeedOptions(typed_through=False))
    warm_fully(engine, "d", CompletionContext(TEXT, ""), budget=1024)  # the whole file fits the window
    cut = TEXT.rindex("\n", 0, len(TEXT) - 40)
    done = engine.complete(CompletionContext(TEXT[:cut], TEXT[cut:]), limits(8, 1024), document="d")
    assert done.reused_tokens >= done.prompt_tokens - 2


def test_warmed_completions_equal_plain_generate(loaded):
    plain = ReferenceEngine(loaded)
    for cut in range(len(TEXT) - 6, len(TEXT) + 1):
        ctx = CompletionContext(TEXT[:cut], "\n")
        warm = TorchEngine(loaded, SpeedOptions(typed_through=False))
        warm_fully(warm, "d", ctx, chunk=16)
        got, want = warm.complete(ctx, limits(16), document="d"), plain.complete(ctx, limits(16))
        assert got.reused_tokens > 0 and (got.text, got.new_tokens) == (want.text, want.new_tokens)


class Recording(TorchEngine):
    """Logs what runs on the worker; the first warm chunk waits on a gate the test opens."""

    def __init__(self, loaded):
        super().__init__(loaded, SpeedOptions(typed_through=False))
        self.log: list[str] = []
        self.in_first_chunk = threading.Event()
        self.gate = threading.Event()

    def warm_step(self, document, ids, chunk_tokens):
        if not self.in_first_chunk.is_set():
            self.in_first_chunk.set()
            self.gate.wait(60)
        progress = super().warm_step(document, ids, chunk_tokens)
        self.log.append(f"warm {document} {progress.cached}")
        return progress

    def complete(self, ctx, *args, **kwargs):
        done = super().complete(ctx, *args, **kwargs)
        self.log.append(f"request reused {done.reused_tokens}")
        return done


async def test_warming_yields_to_a_request_within_one_chunk(loaded):
    worker = ThreadPoolExecutor(max_workers=1)
    engine = Recording(loaded)
    warmer = Warmer(worker, chunk_tokens=16, pause_seconds=0)
    ctx = CompletionContext(TEXT, "\n")
    warmer.schedule("a", lambda: WarmTarget(engine, ctx, 256))
    loop = asyncio.get_running_loop()
    assert await loop.run_in_executor(None, engine.in_first_chunk.wait, 60), "warming never started"
    # chunk 1 is running on the worker
    request = loop.run_in_executor(worker, lambda: engine.complete(ctx, limits(4), document="a"))
    engine.gate.set()
    await request
    # the request ran right after the chunk that was running, and reused it
    assert engine.log[:2] == ["warm a 16", "request reused 16"]
    worker.shutdown()


async def test_closing_a_document_stops_its_warming(loaded):
    worker = ThreadPoolExecutor(max_workers=1)
    engine = Recording(loaded)
    events = []
    warmer = Warmer(worker, chunk_tokens=16, pause_seconds=0, listener=lambda *e: events.append(e[:2]))
    warmer.schedule("a", lambda: WarmTarget(engine, CompletionContext(TEXT, "\n"), 256))
    loop = asyncio.get_running_loop()
    assert await loop.run_in_executor(None, engine.in_first_chunk.wait, 60), "warming never started"
    warmer.cancel("a")  # didClose while chunk 1 runs
    forgotten = loop.run_in_executor(worker, engine.forget, "a")
    engine.gate.set()
    await forgotten
    await loop.run_in_executor(worker, lambda: None)  # whatever was queued has run
    assert engine.log == ["warm a 16"] and events == [("cancelled", "a")] and warmer.pending == 0
    assert len(engine.prefix_cache) == 0
    worker.shutdown()


async def test_only_the_most_recent_documents_are_warmed(loaded):
    worker = ThreadPoolExecutor(max_workers=1)
    engine = TorchEngine(loaded, SpeedOptions(typed_through=False))
    events = []
    two_done = asyncio.Event()

    def listen(event, document, _):
        events.append((event, document))
        if sum(e == "done" for e, _ in events) == 2:
            two_done.set()

    warmer = Warmer(worker, max_documents=2, chunk_tokens=64, pause_seconds=0, listener=listen)
    warmer.activity()
    warmer.pause_seconds = 3600  # hold everything until all are scheduled
    for name in ("a", "b", "c"):
        warmer.schedule(name, lambda: WarmTarget(engine, CompletionContext(TEXT, ""), 256))
    assert events == [("cancelled", "a")] and warmer.pending == 2
    warmer.pause_seconds = 0
    warmer._last_activity = float("-inf")
    await asyncio.wait_for(two_done.wait(), 120)
    assert {d for e, d in events if e == "done"} == {"b", "c"}
    worker.shutdown()
