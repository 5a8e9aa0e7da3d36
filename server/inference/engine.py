"""Run the model for one completion: prompt in, finished suggestion out, cancellable per token.

`CompletionEngine` is what the server, the evaluation and the benches call, and it owns every
policy the engines share: the prompt (`build_prompt`), the stop rules (`SuggestionStop`: end
tokens, `cut_completion`, a time cap after the first line), a line start's first token (line_start.py:
code, never a line break or an end that would leave the suggestion empty), typed-through answers and the
look-ahead's memory, which KV cache a request uses (its document's, the spare one for a cold
request's short window, or none), warming in chunks, the cold-window budget, and the
`Completion` it returns. An engine only runs its runtime: it decodes after a prompt
(`_decode`), extends a document's cache (`_prefill`) and says what its caches hold.

- `TorchEngine` (transformers; GPUs, training, any Hugging Face folder): `generate` continuing each
  document's KV cache across keystrokes (decoding.py).
- `LlamaEngine` (llama.cpp in process, llama_engine.py; CPUs and the pinned GGUF files as they are).
- `ReferenceEngine` (reference_engine.py): transformers' own `generate` on the whole prompt and
  nothing kept, the greedy text the other two must give (the exactness tests, `--plain`).

Both fast engines answer at once when the user types what the previous suggestion began with.
`warm_step` fills a document's KV cache ahead of the first request, one chunk at a time
(warming.py decides when), through the same prompt builder, so a warm request decodes the same
greedy text as a cold one and only computes what the cache lacks.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol

from ghostframe.server.inference.decoding import MAX_DRAFT_TOKENS, greedy_decode, likeliest, prefill
from ghostframe.server.inference.line_start import CANDIDATES as LINE_START_CANDIDATES, at_line_start, first_code_token
from ghostframe.server.inference.loaded_model import LoadedModel
from ghostframe.server.inference.prefix_cache import PrefixCache
from ghostframe.server.inference.prompt import CompletionContext, build_prompt, cut_completion, finish_completion

# A block suggestion is shown only when it is finished; past this long after its first token, a
# generation that has a whole line stops there (llama-server's t_max_predict_ms does the same for
# llama.vscode), so a slow machine shows one line now instead of a block seconds later.
PREDICT_CAP_SECONDS = 1.0
MAX_CACHED_DOCUMENTS = 4
# A request whose prompt the document's cache mostly lacks (the user just moved to another place
# of a large file) gets the end of the window it can prefill in this long, so a suggestion shows
# now; the whole window is warmed in the background for the requests after the next pause.
COLD_BUDGET_SECONDS = 0.5
MIN_COLD_WINDOW = 64
# The key of the one cache an engine keeps apart from its documents' (never a URI): a cold request's
# short window lives there, so the next keystroke's short window reuses it without taking a document's.
SPARE_CACHE = "\0spare"
# Suggestions kept per document for typed-through answers: the one shown, and the one computed
# ahead for the line after accepting it (see the server's prefetch).
SHOWN_PER_DOCUMENT = 2


@dataclass(frozen=True)
class SpeedOptions:
    plain: bool = False          # serve the reference: engines.make_engine gives ReferenceEngine (torch) or NO_SPEEDUPS
    prefix_cache: bool = True    # reuse the document's KV cache from the last request
    prompt_lookup: bool = False  # transformers' prompt-lookup drafts; from a new cache (see decoding; torch only)
    typed_through: bool = True   # typed what the suggestion began with: show the rest, no model run
    warm: bool = True            # prefill a document's cache in the background when opened or edited
    prefetch: bool = True        # after a suggestion at a line's end, compute the next line's in the background
    predict_cap: float | None = PREDICT_CAP_SECONDS  # seconds after the first token; None: no cap
    cold_budget: float | None = COLD_BUDGET_SECONDS  # seconds of prefill a cold request may take; None: any


# Every speed-up off: the reference's greedy text, on whichever engine runs it.
NO_SPEEDUPS = SpeedOptions(prefix_cache=False, typed_through=False, warm=False, prefetch=False,
                           predict_cap=None, cold_budget=None)


@dataclass(frozen=True, kw_only=True)
class Limits:
    """What one request may read and write (the server takes them from its settings)."""

    max_new_tokens: int
    max_prompt_tokens: int
    multiline: bool  # a block may follow the first line


@dataclass
class Completion:
    text: str
    prompt_tokens: int
    new_tokens: int
    seconds: float
    cancelled: bool = False
    first_token_seconds: float | None = None
    reused_tokens: int = 0       # prompt tokens whose KV came from the document's cache
    typed_through: bool = False  # answered from the previous suggestion, without the model
    short_window: bool = False   # a cold request answered from the end of the window (COLD_BUDGET_SECONDS)
    # each new token's log-probability under the model, where the engine has them (show_filter reads them)
    token_logprobs: tuple[float, ...] = ()


@dataclass
class Generated:
    """What an engine's decoding gives back."""

    ids: list[int]           # the greedy new token ids, up to where the stop rule stopped
    reused_tokens: int       # prompt tokens whose keys/values came from the cache
    text: str | None = None  # their text where the runtime has it (None: decode the ids)
    logprobs: list[float] = field(default_factory=list)  # parallel to `ids` where the runtime gives them


@dataclass(frozen=True)
class WarmProgress:
    """Where warming a document's prompt stands after one step."""

    cached: int    # prompt tokens whose keys/values the document's cache holds
    target: int    # tokens to hold: all of the prompt but its last, which a request always computes
    computed: int  # tokens this step ran through the model

    @property
    def done(self) -> bool:
        return self.cached >= self.target


class StopRule(Protocol):
    """Asked by an engine after every decoding step."""

    cancel: threading.Event  # set once nobody wants the answer (a newer keystroke): stop, a prefill too

    def __call__(self, new: list[int], text: str | None = None) -> bool:
        """Stop after `new` (the new token ids so far; `text`: their text where the runtime has it)?"""
        ...


class SuggestionStop:
    """A suggestion ends when it is cancelled, at an end token, where `cut_completion` ends it, or at a
    line's end once `cap` seconds have passed since its first token."""

    def __init__(self, ctx: CompletionContext, multiline: bool, decode: Callable[[list[int]], str],
                 stop_ids: set[int], cancel: threading.Event, cap: float | None):
        self.ctx, self.multiline, self.decode = ctx, multiline, decode
        self.stop_ids, self.cancel, self.cap = stop_ids, cancel, cap
        self.seen: list[float] = []  # seen[n - 1]: when the first n new tokens were first asked about

    def __call__(self, new: list[int], text: str | None = None) -> bool:
        while len(self.seen) < len(new):  # a prefix is judged by when it was generated, however often asked
            self.seen.append(time.perf_counter())
        if self.cancel.is_set() or new[-1] in self.stop_ids:
            return True
        text, ended = cut_completion(self.decode(new) if text is None else text, self.ctx, self.multiline)
        return ended or (self.cap is not None and self.seen[len(new) - 1] - self.seen[0] > self.cap and "\n" in text)

    @property
    def first_token_at(self) -> float | None:
        return self.seen[0] if self.seen else None


class _After:
    """A StopRule for decoding on after a chosen first token: `rule` asked about the whole suggestion."""

    def __init__(self, rule: StopRule, first: int, text: str):
        self.rule, self.first, self.text, self.cancel = rule, first, text, rule.cancel

    def __call__(self, new: list[int], text: str | None = None) -> bool:
        return self.rule([self.first, *new], None if text is None else self.text + text)


@dataclass
class _Shown:
    """A suggestion the document got, for typed-through reuse."""

    before: str
    after: str
    text: str
    logprobs: tuple[float, ...] = ()  # of its tokens, as computed (a typed-through rest has none)


class CompletionEngine:
    """Greedy completion with a loaded model. Not thread-safe: call it from one worker thread.

    The base class is an engine without caches; a subclass runs its runtime: `_decode`, and, to keep
    documents' KV caches, `_prefill`, `cached_tokens`, `cached_documents` and `_forget_cache`.
    """

    kind = ""  # "torch" | "llama.cpp", for the status and reports

    def __init__(self, loaded: LoadedModel, options: SpeedOptions = SpeedOptions(),
                 max_cached_documents: int = MAX_CACHED_DOCUMENTS):
        self.loaded = loaded
        self.options = options
        self.max_cached_documents = max_cached_documents
        self._shown: dict[str, list[_Shown]] = {}  # most recent first

    @property
    def warms(self) -> bool:
        """Whether warming a document ahead of its requests helps here (the server schedules it)."""
        return self.options.warm and self.options.prefix_cache

    @property
    def looks_ahead(self) -> bool:
        """Whether computing the next line's suggestion ahead helps here (typed-through answers it)."""
        return self.options.prefetch and self.options.typed_through

    def decode(self, ids: list[int]) -> str:
        return self.loaded.tokenizer.decode(ids, skip_special_tokens=True)

    def forget(self, document: str) -> None:
        """Drop what is kept for a closed document."""
        self._forget_cache(document)
        self._shown.pop(document, None)

    def documents(self) -> set[str]:
        """The documents something is kept for (a KV cache or the last suggestion)."""
        return self.cached_documents() | set(list(self._shown))  # list(): one C call, safe across threads

    def prompt_ids(self, ctx: CompletionContext, max_prompt_tokens: int) -> list[int]:
        """The prompt a request at `ctx` gives the model (warming prefills the same)."""
        return build_prompt(ctx, self.loaded.tokenizer, max_prompt_tokens)

    def complete(self, ctx: CompletionContext, limits: Limits, *, cancel: threading.Event | None = None,
                 document: str | None = None) -> Completion:
        """The suggestion at `ctx`; empty if cancelled. `document` keys the per-document reuse."""
        cancel = cancel or threading.Event()
        start = time.perf_counter()
        if (again := self._typed_through(ctx, document)) is not None:
            self._remember(document, again)
            return Completion(again.text, 0, 0, time.perf_counter() - start, typed_through=True,
                              token_logprobs=again.logprobs)
        ids = self.prompt_ids(ctx, limits.max_prompt_tokens)
        if cancel.is_set() or not ids:
            return Completion("", len(ids), 0, time.perf_counter() - start, cancelled=cancel.is_set())
        cache = document if self.options.prefix_cache else None
        short = cache is not None and (window := self._affordable_window(cache, ids)) is not None
        if short:
            ids, cache = self.prompt_ids(ctx, window), SPARE_CACHE
        stop_ids = set(self.loaded.stop_token_ids)
        stop = SuggestionStop(ctx, limits.multiline, self.decode, stop_ids, cancel, self.options.predict_cap)
        generated = self._decode(ids, limits.max_new_tokens, stop, cache)
        if at_line_start(ctx) and generated.ids and not self._opens_code(generated.ids[0], ctx, stop_ids):
            generated = self._from_a_code_token(ctx, ids, limits.max_new_tokens, stop, cache, generated)
        new = [t for t in generated.ids if t not in stop_ids]
        logprobs = tuple(p for t, p in zip(generated.ids, generated.logprobs) if t not in stop_ids)
        seconds = time.perf_counter() - start
        reused = generated.reused_tokens
        if cancel.is_set():
            return Completion("", len(ids), len(new), seconds, cancelled=True, reused_tokens=reused, short_window=short)
        text = finish_completion(self.decode(new) if generated.text is None else generated.text, ctx, limits.multiline)
        if document:
            self._remember(document, _Shown(ctx.before, ctx.after, text, logprobs))
        first = stop.first_token_at
        return Completion(text, len(ids), len(new), seconds, first_token_seconds=None if first is None else first - start,
                          reused_tokens=reused, short_window=short, token_logprobs=logprobs)

    def warm_step(self, document: str, ids: list[int], chunk_tokens: int) -> WarmProgress:
        """Prefill at most about `chunk_tokens` more of `ids` into the document's cache. What the cache
        holds already is kept; a last piece shorter than half a chunk is taken with the one before, so
        the prefill runs in rows as wide as a cold one's."""
        target = len(ids) - 1
        if not self.options.prefix_cache:
            return WarmProgress(target, target, 0)
        have = min(self.cached_tokens(document, ids), target)
        if have >= target:
            return WarmProgress(have, target, 0)
        end = target if target - have <= chunk_tokens * 3 // 2 else have + chunk_tokens
        return WarmProgress(end, target, self._prefill(document, ids[:end], have))

    def _opens_code(self, token: int, ctx: CompletionContext, stop_ids: set[int]) -> bool:
        return first_code_token([token], self.decode, stop_ids, ctx.healed_prefix) is not None

    def _from_a_code_token(self, ctx: CompletionContext, ids: list[int], max_new_tokens: int, stop: SuggestionStop,
                           cache: str | None, generated: Generated) -> Generated:
        """At a line start whose greedy first token leaves the suggestion empty: the likeliest first token
        that opens code, and the greedy rest after it (see line_start); `generated` when none does."""
        candidates = self._next_tokens(ids, LINE_START_CANDIDATES, cache)
        first = first_code_token([t for t, _ in candidates], self.decode, stop.stop_ids, ctx.healed_prefix)
        if first is None or stop.cancel.is_set():
            return generated
        logprob = dict(candidates)[first]
        text = self.decode([first])
        if max_new_tokens <= 1 or stop([first], text):
            return Generated([first], generated.reused_tokens, text, [logprob])
        rest = self._decode(ids + [first], max_new_tokens - 1, _After(stop, first, text), cache)
        return Generated([first, *rest.ids], generated.reused_tokens, None if rest.text is None else text + rest.text,
                         [logprob, *rest.logprobs] if rest.logprobs else [])

    def _typed_through(self, ctx: CompletionContext, document: str | None) -> _Shown | None:
        """The rest of a suggestion this document got, at `ctx`, when the user typed its beginning; or all of
        it, with its log-probabilities, when they typed nothing (the same place asked again, or the suggestion
        computed ahead for the line after accepting)."""
        use = document and self.options.typed_through
        for shown in self._shown.get(document, []) if use else []:
            if shown.after != ctx.after or not ctx.before.startswith(shown.before):
                continue
            typed = ctx.before[len(shown.before):]
            if not typed:
                return _Shown(ctx.before, ctx.after, shown.text, shown.logprobs)
            if "\n" not in typed and shown.text.startswith(typed) and len(shown.text) > len(typed):
                return _Shown(ctx.before, ctx.after, shown.text[len(typed):])
        return None

    def _remember(self, document: str, shown: _Shown) -> None:
        kept = [shown, *(s for s in self._shown.get(document, []) if (s.before, s.after) != (shown.before, shown.after))]
        self._shown[document] = kept[:SHOWN_PER_DOCUMENT]

    def _affordable_window(self, document: str, ids: list[int]) -> int | None:
        """A smaller prompt budget when prefilling what `document`'s cache lacks of `ids` would take
        longer than the cold budget (None: the whole prompt is affordable, or the rate is unknown)."""
        budget, rate = self.options.cold_budget, self.prefill_seconds_per_token()
        if budget is None or rate is None:
            return None
        if (len(ids) - self.cached_tokens(document, ids)) * rate <= budget:
            return None
        affordable = int(budget / rate)
        window = MIN_COLD_WINDOW  # a power of two: the window stays the same from keystroke to keystroke
        while window * 2 <= affordable:
            window *= 2
        return window if window < len(ids) else None

    # --- what an engine implements ------------------------------------------------------------

    def _decode(self, ids: list[int], max_new_tokens: int, stop: StopRule, cache: str | None) -> Generated:
        """Greedy new tokens after `ids`, asking `stop` after each. `cache`: the document whose KV cache
        the request reuses and leaves its own in, SPARE_CACHE, or None (no cache read or kept)."""
        raise NotImplementedError

    def _prefill(self, document: str, ids: list[int], cached: int) -> int:
        """Make `document`'s cache hold `ids`, of which it holds the first `cached`; the tokens computed."""
        raise NotImplementedError

    def _next_tokens(self, ids: list[int], count: int, cache: str | None) -> list[tuple[int, float]]:
        """The `count` likeliest tokens after `ids`, likeliest first, with their log-probabilities. `cache`
        as in `_decode`: the prompt was just decoded there, so only its last token needs computing."""
        raise NotImplementedError

    def _forget_cache(self, document: str) -> None:
        """Free `document`'s KV cache."""

    def cached_documents(self) -> set[str]:
        """The documents whose KV cache the engine holds."""
        return set()

    def cached_tokens(self, document: str, ids: list[int]) -> int:
        """How many of `ids`' first tokens `document`'s cache holds now."""
        return 0

    def prefill_seconds_per_token(self) -> float | None:
        """What prefilling one prompt token costs here, as measured on recent requests (None: unknown)."""
        return None

    def close(self) -> None:
        """Free what the engine holds outside Python's memory (a llama.cpp context); idempotent."""


class TorchEngine(CompletionEngine):
    """transformers on CPU or GPU: `generate` continuing each document's DynamicCache."""

    kind = "torch"

    def __init__(self, loaded: LoadedModel, options: SpeedOptions = SpeedOptions(),
                 max_cached_documents: int = MAX_CACHED_DOCUMENTS):
        super().__init__(loaded, options, max_cached_documents)
        self.prefix_cache = PrefixCache(max_cached_documents)
        self._spare = PrefixCache(1)  # SPARE_CACHE's, apart from the documents' so it evicts none of them

    def _forget_cache(self, document: str) -> None:
        self.prefix_cache.evict(document)

    def cached_documents(self) -> set[str]:
        return self.prefix_cache.documents()

    def cached_tokens(self, document: str, ids: list[int]) -> int:
        return self.prefix_cache.reusable(document, ids)

    def _prefill(self, document: str, ids: list[int], cached: int) -> int:
        cache, reused = self.prefix_cache.take(document, ids)  # reused == cached: take keeps the same prefix
        if cache is None:
            from transformers import DynamicCache

            cache, reused = DynamicCache(), 0
        prefill(self.loaded.model, ids[reused:], cache)
        self.prefix_cache.put(document, ids, cache)
        return len(ids) - reused

    def _store(self, cache: str | None) -> PrefixCache | None:
        return None if cache is None else self._spare if cache == SPARE_CACHE else self.prefix_cache

    def _next_tokens(self, ids: list[int], count: int, cache: str | None) -> list[tuple[int, float]]:
        from transformers import DynamicCache

        store = self._store(cache)
        kv, reused = store.take(cache, ids) if store is not None else (None, 0)
        if kv is None:
            kv, reused = DynamicCache(), 0
        logits = prefill(self.loaded.model, ids[reused:], kv)
        if store is not None:
            store.put(cache, ids, kv)
        return likeliest(logits, count)

    def _decode(self, ids: list[int], max_new_tokens: int, stop: StopRule, cache: str | None) -> Generated:
        store = self._store(cache)
        kv, reused = store.take(cache, ids) if store is not None else (None, 0)
        logprobs: list[float] = []
        new, kv, held = greedy_decode(
            self.loaded.model, ids, kv, reused, max_new_tokens, stop, prompt_lookup=self.options.prompt_lookup,
            max_draft=MAX_DRAFT_TOKENS.get(self.loaded.device, MAX_DRAFT_TOKENS["cpu"]), logprobs=logprobs)
        if store is not None:
            store.put(cache, held, kv)
        return Generated(new, reused, logprobs=logprobs)
