"""Run the model for one completion: prompt in, finished suggestion out, cancellable per token.

`CompletionEngine` is what the server, the evaluation and the benches call; it holds what every
engine shares — the prompt (`build_prompt`), the stop rules (`cut_completion`, end tokens, a time
cap after the first line), typed-through answers and the `Completion` it returns. Two engines
run the model behind it:

- `TorchEngine` (transformers; GPUs, training, any Hugging Face folder). Two paths give the same
  greedy text: `plain` is transformers' `generate`, the reference; the fast path (default)
  continues each document's KV cache across keystrokes (decoding.py).
- `LlamaEngine` (llama.cpp in process, llama_engine.py; CPUs and the pinned GGUF files as they are).

Both answer at once when the user types what the previous suggestion began with. `warm_step`
fills a document's KV cache ahead of the first request, one chunk at a time (warming.py decides
when), through the same prompt builder, so a warm request decodes the same greedy text as a
cold one and only computes what the cache lacks.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable

from ghostframe.server.inference.decoding import (MAX_DRAFT_TOKENS, greedy_decode, prefill,
                                                  stopping_criteria)
from ghostframe.server.inference.model_loading import LoadedModel
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
SHORT_WINDOW_DOCUMENT = "\0short-window"  # the cache key of those shorter prompts (never a URI)


@dataclass(frozen=True)
class SpeedOptions:
    plain: bool = False          # model.generate and no speed-up at all (the reference path; torch only)
    prefix_cache: bool = True    # reuse the document's KV cache from the last request
    prompt_lookup: bool = False  # transformers' prompt-lookup drafts; from a new cache (see decoding)
    typed_through: bool = True   # typed what the suggestion began with: show the rest, no model run
    warm: bool = True            # prefill a document's cache in the background when opened or edited
    prefetch: bool = True        # after a suggestion at a line's end, compute the next line's in the background
    predict_cap: float | None = PREDICT_CAP_SECONDS  # seconds after the first token; None: no cap
    cold_budget: float | None = COLD_BUDGET_SECONDS  # seconds of prefill a cold request may take; None: any


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


@dataclass(frozen=True)
class WarmProgress:
    """Where warming a document's prompt stands after one step."""

    cached: int    # prompt tokens whose keys/values the document's cache holds
    target: int    # tokens to hold: all of the prompt but its last, which a request always computes
    computed: int  # tokens this step ran through the model

    @property
    def done(self) -> bool:
        return self.cached >= self.target


@dataclass
class _Shown:
    """A suggestion the document got, for typed-through reuse."""

    before: str
    after: str
    text: str


# Suggestions kept per document for typed-through answers: the one shown, and the one computed
# ahead for the line after accepting it (see the server's prefetch).
SHOWN_PER_DOCUMENT = 2


# (new token ids so far, their text when the engine has it) -> stop now
StopRule = Callable[..., bool]


class CompletionEngine:
    """Greedy completion with a loaded model. Not thread-safe: call it from one worker thread.

    Subclasses run the model: `_generate` (new token ids and how many prompt tokens came from
    the document's cache), `warm_step`, `_forget_cache` and `cached_documents`.
    """

    kind = ""  # "torch" | "llama.cpp", for the status and reports

    def __init__(self, loaded: LoadedModel, options: SpeedOptions = SpeedOptions(),
                 max_cached_documents: int = MAX_CACHED_DOCUMENTS):
        self.loaded = loaded
        self.options = options
        self.max_cached_documents = max_cached_documents
        self._shown: dict[str, list[_Shown]] = {}  # most recent first

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

    def _typed_through(self, ctx: CompletionContext, document: str | None) -> str | None:
        """The rest of a suggestion this document got, when the user typed its beginning (or nothing:
        the same place asked again, or the suggestion computed ahead for the line after accepting)."""
        use = document and self.options.typed_through and not self.options.plain
        for shown in self._shown.get(document, []) if use else []:
            if shown.after != ctx.after or not ctx.before.startswith(shown.before):
                continue
            typed = ctx.before[len(shown.before):]
            if not typed:
                return shown.text
            if "\n" not in typed and shown.text.startswith(typed) and len(shown.text) > len(typed):
                return shown.text[len(typed):]
        return None

    def _remember(self, document: str, shown: _Shown) -> None:
        kept = [shown, *(s for s in self._shown.get(document, []) if (s.before, s.after) != (shown.before, shown.after))]
        self._shown[document] = kept[:SHOWN_PER_DOCUMENT]

    def complete(self, ctx: CompletionContext, max_new_tokens: int, max_prompt_tokens: int,
                 multiline: bool, cancel: threading.Event | None = None, document: str | None = None) -> Completion:
        """The suggestion at `ctx`; empty if cancelled. `document` keys the per-document reuse."""
        cancel = cancel or threading.Event()
        start = time.perf_counter()
        if (rest := self._typed_through(ctx, document)) is not None:
            self._remember(document, _Shown(ctx.before, ctx.after, rest))
            return Completion(rest, 0, 0, time.perf_counter() - start, typed_through=True)
        ids = self.prompt_ids(ctx, max_prompt_tokens)
        if cancel.is_set() or not ids:
            return Completion("", len(ids), 0, time.perf_counter() - start, cancelled=cancel.is_set())
        cache_key, short = document, False
        if document and (window := self._affordable_window(document, ids)) is not None:
            ids, cache_key, short = self.prompt_ids(ctx, window), SHORT_WINDOW_DOCUMENT, True
        stop_ids = set(self.loaded.stop_token_ids)
        cap = None if self.options.plain else self.options.predict_cap
        seen: list[float] = []  # seen[n - 1]: when the first n new tokens were first asked about

        def should_stop(new: list[int], text: str | None = None) -> bool:
            while len(seen) < len(new):  # a prefix is judged by when it was generated, however often asked
                seen.append(time.perf_counter())
            if cancel.is_set() or new[-1] in stop_ids:
                return True
            text, ended = cut_completion(self.decode(new) if text is None else text, ctx, multiline)
            return ended or (cap is not None and seen[len(new) - 1] - seen[0] > cap and "\n" in text)

        new, reused, generated = self._generate(ids, max_new_tokens, should_stop, cache_key, cancel)
        new = [t for t in new if t not in stop_ids]
        seconds = time.perf_counter() - start
        if cancel.is_set():
            return Completion("", len(ids), len(new), seconds, cancelled=True, reused_tokens=reused, short_window=short)
        text = finish_completion(self.decode(new) if generated is None else generated, ctx, multiline)
        if document:
            self._remember(document, _Shown(ctx.before, ctx.after, text))
        return Completion(text, len(ids), len(new), seconds, first_token_seconds=seen[0] - start if seen else None,
                          reused_tokens=reused, short_window=short)

    def _affordable_window(self, document: str, ids: list[int]) -> int | None:
        """A smaller prompt budget when prefilling what `document`'s cache lacks of `ids` would take
        longer than the cold budget (None: the whole prompt is affordable, or the rate is unknown)."""
        budget, rate = self.options.cold_budget, self.prefill_seconds_per_token()
        if budget is None or rate is None or self.options.plain or not self.options.prefix_cache:
            return None
        if (len(ids) - self.cached_tokens(document, ids)) * rate <= budget:
            return None
        affordable = int(budget / rate)
        window = MIN_COLD_WINDOW  # a power of two: the window stays the same from keystroke to keystroke
        while window * 2 <= affordable:
            window *= 2
        return window if window < len(ids) else None

    # --- what an engine implements ------------------------------------------------------------

    def _generate(self, ids: list[int], max_new_tokens: int, should_stop: StopRule, document: str | None,
                  cancel: threading.Event) -> tuple[list[int], int, str | None]:
        """Greedy new token ids after `ids` (asking `should_stop` after each), the prompt tokens reused,
        and the new tokens' text where the engine has it (None: decode the ids)."""
        raise NotImplementedError

    def warm_step(self, document: str, ids: list[int], chunk_tokens: int) -> WarmProgress:
        """Prefill at most about `chunk_tokens` more of `ids` into the document's cache."""
        raise NotImplementedError

    def _forget_cache(self, document: str) -> None:
        raise NotImplementedError

    def cached_documents(self) -> set[str]:
        raise NotImplementedError

    def cached_tokens(self, document: str, ids: list[int]) -> int:
        """How many of `ids`' first tokens `document`'s cache holds now."""
        raise NotImplementedError

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

    def _forget_cache(self, document: str) -> None:
        self.prefix_cache.evict(document)

    def cached_documents(self) -> set[str]:
        return set(list(self.prefix_cache._entries)) - {SHORT_WINDOW_DOCUMENT}

    def cached_tokens(self, document: str, ids: list[int]) -> int:
        return self.prefix_cache.reusable(document, ids)

    def warm_step(self, document: str, ids: list[int], chunk_tokens: int) -> WarmProgress:
        """What the cache holds already is kept; a last piece shorter than half a chunk is
        taken with the one before, so the prefill runs in rows as wide as a cold one's."""
        target = len(ids) - 1
        if self.options.plain or not self.options.prefix_cache:
            return WarmProgress(target, target, 0)
        have = min(self.prefix_cache.reusable(document, ids), target)
        if have >= target:
            return WarmProgress(have, target, 0)
        cache, cached = self.prefix_cache.take(document, ids)
        if cache is None:
            from transformers import DynamicCache

            cache, cached = DynamicCache(), 0
        end = target if target - cached <= chunk_tokens * 3 // 2 else cached + chunk_tokens
        prefill(self.loaded.model, ids[cached:end], cache)
        self.prefix_cache.put(document, ids[:end], cache)
        return WarmProgress(end, target, end - cached)

    def _generate(self, ids, max_new_tokens, should_stop, document, cancel) -> tuple[list[int], int, None]:
        if self.options.plain:
            return self._reference(ids, max_new_tokens, should_stop), 0, None
        use_cache = self.options.prefix_cache and document is not None
        cache, reused = self.prefix_cache.take(document, ids) if use_cache else (None, 0)
        new, cache, held = greedy_decode(
            self.loaded.model, ids, cache, reused, max_new_tokens, should_stop,
            prompt_lookup=self.options.prompt_lookup,
            max_draft=MAX_DRAFT_TOKENS.get(self.loaded.device, MAX_DRAFT_TOKENS["cpu"]))
        if use_cache:
            self.prefix_cache.put(document, held, cache)
        return new, reused, None

    def _reference(self, ids, max_new_tokens, should_stop) -> list[int]:
        """The reference: transformers' generate with the same stopping rule."""
        import torch

        input_ids = torch.tensor([ids], device=self.loaded.device)
        with torch.inference_mode():
            output = self.loaded.model.generate(
                input_ids=input_ids, attention_mask=torch.ones_like(input_ids), max_new_tokens=max_new_tokens,
                do_sample=False, eos_token_id=self.loaded.stop_token_ids or None,
                pad_token_id=self.loaded.tokenizer.pad_token_id, stopping_criteria=stopping_criteria(should_stop, len(ids)),
            )
        return output[0, len(ids):].tolist()


def make_engine(loaded: LoadedModel, options: SpeedOptions = SpeedOptions(),
                max_cached_documents: int = MAX_CACHED_DOCUMENTS) -> CompletionEngine:
    """The engine that runs `loaded` (model_loading decided which when it loaded it)."""
    if loaded.engine == "llama.cpp":
        from ghostframe.server.inference.llama_engine import LlamaEngine

        return LlamaEngine(loaded, options, max_cached_documents)
    return TorchEngine(loaded, options, max_cached_documents)
