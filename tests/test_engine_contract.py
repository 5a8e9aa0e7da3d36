"""The engine contract, checked once over every engine: torch on the tiny random model, llama.cpp on
the tiny random GGUF. Each gives the reference engine's greedy text on the same weights, reuses a
document's prefix, forgets, warms, keeps the stop rules, answers typed-through, remembers the
look-ahead, stops within one token of a cancel, and keeps a cold request's short window apart
from the documents' caches.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable

import pytest

from conftest import TINY_GGUF, TINY_GGUF_HF, TINY_MODEL
from ghostframe.server.inference.engine import (COLD_BUDGET_SECONDS, MIN_COLD_WINDOW, CompletionEngine, Limits, SpeedOptions,
                                                SuggestionStop)
from ghostframe.server.inference.engines import make_engine
from ghostframe.server.inference.model_loading import load_model
from ghostframe.server.inference.prompt import CompletionContext
from ghostframe.server.inference.reference_engine import ReferenceEngine
from ghostframe.server.tools.terminal_cli import example_path

TEXT = example_path().read_text().rstrip()
NO_TYPED_THROUGH = SpeedOptions(typed_through=False)
CONTEXTS = [
    CompletionContext("import pandas as pd\ndf = pd.read_csv('sales.csv')\ndf.", "\nprint(df)\n"),
    CompletionContext("def load_data(path):\n    ", "\n\nX = load_data('x.csv')\n"),
    CompletionContext("X_train, X_test, y_train, y_test = train_test_split(", ")\n"),
]


def limits(max_new_tokens: int = 8, max_prompt_tokens: int = 512, multiline: bool = True) -> Limits:
    return Limits(max_new_tokens=max_new_tokens, max_prompt_tokens=max_prompt_tokens, multiline=multiline)


def typing_states(keystrokes: int = 6) -> list[CompletionContext]:
    return [CompletionContext(TEXT[:i], "\n") for i in range(len(TEXT) - keystrokes, len(TEXT) + 1)]


@dataclass
class Subject:
    """An engine kind to check: `engine(options, documents)` builds a fresh one; `reference` runs the same weights."""

    engine: Callable[..., CompletionEngine]
    reference: ReferenceEngine
    caches: bool = True  # keeps documents' KV caches here (the remote engine's are on its server)


def needs_local_caches(subject: Subject) -> None:
    if not subject.caches:
        pytest.skip("the remote engine keeps no KV cache here: its server does (cache_prompt)")


@pytest.fixture(scope="module", params=["torch", "llama.cpp", "remote"])
def subject(request):
    if request.param == "remote":  # a real llama-server on the same GGUF
        from ghostframe.server.inference.remote_client import Endpoint
        from ghostframe.server.testing.llama_server import LlamaServer

        server = LlamaServer.start(TINY_GGUF, parallel=2, slot_tokens=4096)
        loaded = load_model(str(TINY_GGUF), engine="remote", endpoint=Endpoint(server.url))
        yield Subject(lambda options=NO_TYPED_THROUGH, documents=4: make_engine(loaded, options, documents),
                      ReferenceEngine(load_model(str(TINY_GGUF_HF), device="cpu", precision="float32")), caches=False)
        server.stop()
        return
    if request.param == "torch":
        loaded = load_model(str(TINY_MODEL), device="cpu")
        yield Subject(lambda options=NO_TYPED_THROUGH, documents=4: make_engine(loaded, options, documents),
                      ReferenceEngine(loaded))
        return
    loaded = load_model(str(TINY_GGUF), device="cpu", engine="llama")
    runtime = loaded.model

    def fresh(options=NO_TYPED_THROUGH, documents=4):
        for slot in range(runtime.config.slots):  # engines share the runtime: start each from empty slots
            runtime.erase(slot)
        return make_engine(loaded, options, documents)

    yield Subject(fresh, ReferenceEngine(load_model(str(TINY_GGUF_HF), device="cpu", precision="float32")))
    runtime.close()


def cancelling_after(engine: CompletionEngine, tokens: int) -> list[int]:
    """Make `engine`'s requests set their cancel event (a newer keystroke) once they have `tokens` new
    tokens; returns the lengths the stop rule was asked about, in order."""
    asked: list[int] = []
    decode = engine._decode

    def _decode(ids, max_new_tokens, stop, cache):
        return decode(ids, max_new_tokens, _CancelAfter(stop, tokens, asked), cache)

    engine._decode = _decode
    return asked


class _CancelAfter:
    """A StopRule: `rule`, after setting `rule.cancel` once `tokens` new tokens came."""

    def __init__(self, rule, tokens: int, asked: list[int]):
        self.rule, self.tokens, self.asked, self.cancel = rule, tokens, asked, rule.cancel

    def __call__(self, new, text=None):
        self.asked.append(len(new))
        if len(new) >= self.tokens:
            self.cancel.set()
        return self.rule(new, text)


@pytest.mark.slow
def test_the_greedy_text_is_the_references_and_each_document_keeps_its_prefix(subject):
    engine = subject.engine()
    for ctx in CONTEXTS:
        for multiline, max_new in ((False, 12), (True, 24)):
            got, want = engine.complete(ctx, limits(max_new, 256, multiline)), subject.reference.complete(
                ctx, limits(max_new, 256, multiline))
            assert (got.text, got.new_tokens) == (want.text, want.new_tokens), ctx.before
    needs_local_caches(subject)
    reused = []
    for ctx in typing_states():
        got = engine.complete(ctx, limits(), document="a")
        engine.complete(CompletionContext("other = 1\n" + ctx.before[-40:], ""), limits(4), document="b")
        want = subject.reference.complete(ctx, limits())
        assert (got.text, got.new_tokens) == (want.text, want.new_tokens)
        reused.append(got.reused_tokens)
    prompt = len(engine.prompt_ids(typing_states()[0], 512))
    assert reused[0] == 0 and all(r >= prompt - 8 for r in reused[1:]), reused
    assert engine.cached_documents() == {"a", "b"}


def test_forget_frees_a_documents_cache_and_few_documents_are_kept(subject):
    needs_local_caches(subject)
    engine = subject.engine(documents=2)
    for name in ("a", "b", "c"):
        engine.complete(CompletionContext(f"{name} = df.", ""), limits(4, 256), document=name)
    assert engine.cached_documents() == {"b", "c"}  # the least recently used gave its cache up
    engine.forget("c")
    assert engine.cached_documents() == {"b"} and engine.documents() == {"a", "b"}  # a's suggestion is kept
    again = engine.complete(CompletionContext("c = df.", ""), limits(4, 256), document="c")
    assert again.reused_tokens == 0


def test_warming_fills_the_cache_in_chunks_and_a_request_reuses_it(subject):
    needs_local_caches(subject)
    engine = subject.engine()
    ctx = typing_states()[-1]
    ids = engine.prompt_ids(ctx, 512)
    steps = [engine.warm_step("doc", ids, 32)]
    while not steps[-1].done:
        steps.append(engine.warm_step("doc", ids, 32))
    assert len(steps) > 2 and all(0 < s.computed <= 48 for s in steps)  # in chunks, none wider than 1.5 chunks
    assert steps[-1].cached == steps[-1].target == len(ids) - 1
    assert engine.warm_step("doc", ids, 32).computed == 0  # nothing left to do
    done = engine.complete(ctx, limits(), document="doc")
    want = subject.reference.complete(ctx, limits())
    assert done.reused_tokens >= len(ids) - 1 and (done.text, done.new_tokens) == (want.text, want.new_tokens)


def test_a_request_mid_warm_reuses_what_is_done(subject):
    needs_local_caches(subject)
    engine = subject.engine()
    ctx = typing_states()[-1]
    first = engine.warm_step("d", engine.prompt_ids(ctx, 512), 40)
    assert engine.complete(ctx, limits(), document="d").reused_tokens == first.cached == 40


def test_nothing_is_warmed_without_a_prefix_cache(subject):
    for engine in (subject.engine(SpeedOptions(prefix_cache=False)), subject.reference):
        step = engine.warm_step("d", engine.prompt_ids(typing_states()[-1], 512), 32)
        assert step.done and step.computed == 0 and engine.cached_documents() == set()
        assert not engine.warms
    assert not subject.reference.looks_ahead and subject.engine(SpeedOptions()).looks_ahead


def test_the_stop_rules_end_a_suggestion(subject):
    engine = subject.engine()
    for ctx in CONTEXTS:
        one_line = engine.complete(ctx, limits(24, 256, multiline=False))
        assert "\n" not in one_line.text and one_line.new_tokens <= 24
        assert engine.complete(ctx, limits(3, 256)).new_tokens <= 3
    asked = cancelling_after(engine, 10_000)  # never cancels: only records what the engine asked
    engine.complete(CONTEXTS[0], limits(5, 256), document="d")
    assert asked and asked[:max(asked)] == list(range(1, max(asked) + 1))  # after every new token, in order


def test_the_suggestion_stop_rule():
    """End tokens, cancellation, `cut_completion` and the time cap, as every engine asks them."""
    texts = {(1,): "a", (1, 2): "a\n", (1, 2, 3): "a\nb", (1, 2, 3, 4): "a\nb\n"}
    ctx = CompletionContext("def f():\n", "")
    cancel = threading.Event()
    rule = SuggestionStop(ctx, True, lambda ids: texts[tuple(ids)], {9}, cancel, cap=None)
    assert not rule([1]) and not rule([1, 2]) and rule([1, 9]) and rule.first_token_at is not None
    assert not SuggestionStop(ctx, True, lambda ids: texts[tuple(ids)], {9}, cancel, None)([1, 2, 3])
    assert SuggestionStop(ctx, False, lambda ids: texts[tuple(ids)], {9}, cancel, None)([1, 2])  # one line
    capped = SuggestionStop(ctx, True, lambda ids: texts[tuple(ids)], {9}, cancel, cap=-1.0)  # always past it
    assert not capped([1]) and capped([1, 2, 3])  # a whole line once past the cap
    cancel.set()
    assert rule([1, 2, 3])


def test_typed_through_answers_without_the_model(subject):
    engine = subject.engine(SpeedOptions())
    ctx = CompletionContext("score = model.score(", "")
    first = engine.complete(ctx, limits(12, 256, False), document="d")
    assert len(first.text) > 2 and first.new_tokens > 0
    typed = first.text[:2]
    again = engine.complete(CompletionContext(ctx.before + typed, ""), limits(12, 256, False), document="d")
    assert again.typed_through and again.new_tokens == 0 and again.text == first.text[2:]
    other = "#" if first.text[2] != "#" else "@"
    diverged = engine.complete(CompletionContext(ctx.before + typed + other, ""), limits(12, 256, False),
                               document="d")
    assert not diverged.typed_through and diverged.new_tokens > 0


def test_the_look_ahead_is_remembered_beside_the_shown_suggestion(subject):
    engine = subject.engine(SpeedOptions())
    shown, ahead, third = (CompletionContext(before, "\n") for before in ("total = df.", "x = np.", "y = pd."))
    for ctx in (shown, ahead):
        assert not engine.complete(ctx, limits(), document="d").typed_through
    assert engine.complete(shown, limits(), document="d").typed_through  # both are kept
    assert engine.complete(ahead, limits(), document="d").typed_through
    engine.complete(third, limits(), document="d")
    assert not engine.complete(shown, limits(), document="d").typed_through  # two per document
    assert not engine.complete(ahead, limits(), document="e").typed_through  # per document


def test_cancel_stops_within_one_token_and_keeps_the_shared_prefix(subject):
    engine = subject.engine(SpeedOptions(typed_through=False, predict_cap=None))
    asked = cancelling_after(engine, 5)
    ctx = typing_states()[-1]
    stopped = engine.complete(ctx, limits(200, 256), cancel=threading.Event(), document="d")
    assert stopped.cancelled and stopped.text == "" and stopped.new_tokens <= 5 + 1 and max(asked) <= 5 + 1
    del engine._decode  # no more cancelling
    later = engine.complete(ctx, limits(8, 256), document="d")
    assert not later.cancelled and later.reused_tokens >= len(engine.prompt_ids(ctx, 256)) - 1
    assert later.text == subject.reference.complete(ctx, limits(8, 256)).text


def test_a_request_cancelled_before_it_starts_computes_nothing(subject):
    engine = subject.engine()
    cancel = threading.Event()
    cancel.set()  # the user typed on before the request started
    ctx = typing_states()[-1]
    cancelled = engine.complete(ctx, limits(), cancel=cancel, document="d")
    assert cancelled.cancelled and cancelled.new_tokens == 0 and engine.cached_documents() == set()
    assert engine.complete(ctx, limits(), document="d").text == subject.reference.complete(ctx, limits()).text


def test_a_cold_requests_short_window_takes_no_documents_cache(subject):
    needs_local_caches(subject)
    engine = subject.engine(documents=2)
    for name in ("a", "b"):
        engine.complete(CompletionContext(f"{name} = df.", ""), limits(4, 256), document=name)
    budget = engine.options.cold_budget
    engine.prefill_seconds_per_token = lambda: budget / (MIN_COLD_WINDOW + 1)  # only 64 tokens are affordable
    states = typing_states(3)
    answers = [engine.complete(ctx, limits(), document="c") for ctx in states]
    assert all(a.short_window and a.prompt_tokens <= MIN_COLD_WINDOW for a in answers)
    assert engine.cached_documents() == {"a", "b"}  # neither document gave its cache up
    assert any(a.reused_tokens > 0 for a in answers[1:])  # the short windows reuse their own cache
    for ctx, answer in zip(states, answers):
        want = subject.reference.complete(ctx, limits(max_prompt_tokens=MIN_COLD_WINDOW))
        assert (answer.text, answer.new_tokens) == (want.text, want.new_tokens)


def test_with_the_full_cold_window_policy_a_cold_request_waits_for_its_whole_window(subject):
    """`ghostframe-server --cold-window full`: no short window however slow the prefill; `short` is the default."""
    from dataclasses import replace

    from ghostframe.server.lsp.cli import parse_args, speed_options

    assert speed_options(parse_args([])).cold_budget == COLD_BUDGET_SECONDS
    full = speed_options(parse_args(["--cold-window", "full"]))
    assert full.cold_budget is None
    engine = subject.engine(replace(NO_TYPED_THROUGH, cold_budget=full.cold_budget))
    engine.prefill_seconds_per_token = lambda: COLD_BUDGET_SECONDS / (MIN_COLD_WINDOW + 1)  # as in the test above
    ctx = typing_states()[-1]
    answer = engine.complete(ctx, limits(), document="c")
    assert not answer.short_window and answer.prompt_tokens > MIN_COLD_WINDOW
    assert answer.text == subject.reference.complete(ctx, limits()).text
