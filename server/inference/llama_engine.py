"""llama.cpp in process: the CPU engine, serving the pinned GGUF files as they are.

Each open document gets a slot of its own (llama-server's `id_slot`, run by
`llama_runtime.LlamaRuntime`), so its KV cache survives keystrokes in other documents;
`cache_prompt` reuses the longest common token prefix of the slot's last prompt, and
`n_cache_reuse` shifts cached chunks that only moved (the window start stepped on). Prompts are
the same `build_prompt` token ids the torch engine gets (the GGUF's vocabulary and the Hugging
Face tokenizer agree: tests/test_gguf_tokenizer.py); tokens stream back one by one (`n_probs`
carries their ids) and the shared stop rule stops a request by returning True from the stream
callback, which cancels it in the engine's loop. A prompt's prefill reports progress per batch,
so a newer keystroke also stops a long prefill.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict

from ghostframe.server.inference.engine import (MAX_CACHED_DOCUMENTS, SPARE_CACHE, CompletionEngine, Generated,
                                                SpeedOptions, StopRule)
from ghostframe.server.inference.llama_runtime import (MAX_SUGGESTION_TOKENS, MEASURED_PREFILL_TOKENS,
                                                       LlamaRuntime)
from ghostframe.server.inference.loaded_model import LoadedModel
from ghostframe.server.inference.prefix_cache import common_prefix_length

log = logging.getLogger("ghostframe.llama")


class _Slots:
    """Which llama.cpp slot holds which cache: a document's, least recently used first out, or SPARE_CACHE.

    The last slot is never given to a document: SPARE_CACHE and requests without a cache use it.
    `held[key]` mirrors the token ids the slot's cache holds (what a request or warming reuses).
    """

    def __init__(self, documents: int):
        self.free = list(range(documents))
        self.by_document: OrderedDict[str, int] = OrderedDict()
        self.held: dict[str, list[int]] = {}
        self.spare = documents

    def of(self, key: str) -> int:
        if key == SPARE_CACHE:
            return self.spare
        if key in self.by_document:
            self.by_document.move_to_end(key)
            return self.by_document[key]
        if not self.free:
            oldest, slot = self.by_document.popitem(last=False)
            self.held.pop(oldest, None)
            self.free.append(slot)
        self.by_document[key] = slot = self.free.pop()
        return slot

    def record(self, key: str, slot: int, ids: list[int]) -> None:
        """`slot` now holds `ids`, kept for `key` unless the slot went to another document meanwhile."""
        if key == SPARE_CACHE or self.by_document.get(key) == slot:
            self.held[key] = ids

    def release(self, document: str) -> int | None:
        """Give `document`'s slot back; returns it (None when it had none)."""
        if (slot := self.by_document.pop(document, None)) is not None:
            self.free.append(slot)
        self.held.pop(document, None)
        return slot


class LlamaEngine(CompletionEngine):
    """The completion engine on llama.cpp (see the module docstring)."""

    kind = "llama.cpp"

    def __init__(self, loaded: LoadedModel, options: SpeedOptions = SpeedOptions(),
                 max_cached_documents: int = MAX_CACHED_DOCUMENTS):
        super().__init__(loaded, options, max_cached_documents)
        self.runtime: LlamaRuntime = loaded.model
        documents = min(max_cached_documents, self.runtime.config.slots - 1)
        self.slots = _Slots(documents)
        self._lock = threading.Lock()  # slot bookkeeping is touched from the worker only; forget may come from elsewhere
        self._prefill_rate: float | None = self.runtime.startup_prefill_rate  # seconds per prompt token
        self._warned_room = False

    def prompt_ids(self, ctx, max_prompt_tokens: int) -> list[int]:
        """build_prompt's ids, within what a slot holds besides the longest suggestion (the context was
        sized at load from the settings then; a larger maxPromptTokens takes effect on reload)."""
        room = self.runtime.config.slot_tokens - MAX_SUGGESTION_TOKENS
        if max_prompt_tokens > room and not self._warned_room:
            log.warning("prompts are cut to %d tokens: the llama.cpp context was sized for that (reload the model "
                        "to use maxPromptTokens %d)", room, max_prompt_tokens)
            self._warned_room = True
        return super().prompt_ids(ctx, min(max_prompt_tokens, room))

    def _forget_cache(self, document: str) -> None:
        with self._lock:
            slot = self.slots.release(document)
        if slot is not None:
            self.runtime.erase(slot)

    def cached_documents(self) -> set[str]:
        with self._lock:
            return set(self.slots.by_document)

    def cached_tokens(self, document: str, ids: list[int]) -> int:
        with self._lock:
            return common_prefix_length(self.slots.held.get(document, []), ids)

    def prefill_seconds_per_token(self) -> float | None:
        return self._prefill_rate

    def _measured(self, timings: dict) -> None:
        """Keep a running estimate of the prefill rate from llama-server's timings of a request."""
        if timings.get("prompt_n", 0) >= MEASURED_PREFILL_TOKENS and timings.get("prompt_ms"):
            rate = timings["prompt_ms"] / 1000 / timings["prompt_n"]
            self._prefill_rate = rate if self._prefill_rate is None else 0.7 * self._prefill_rate + 0.3 * rate

    def _prefill(self, document: str, ids: list[int], cached: int) -> int:
        with self._lock:
            slot = self.slots.of(document)
        timings = self.runtime.prefill(ids, slot)
        self._measured(timings)
        with self._lock:
            self.slots.record(document, slot, ids)
        return int(timings.get("prompt_n", len(ids) - cached))

    def _decode(self, ids: list[int], max_new_tokens: int, stop: StopRule, cache: str | None) -> Generated:
        with self._lock:
            slot = self.slots.spare if cache is None else self.slots.of(cache)
            if cache is None:  # the request overwrites the spare slot's cache
                self.slots.held.pop(SPARE_CACHE, None)
        kept: list[int] = []
        generated: list[str] = [""]
        logprobs: list[float] = []

        def on_tokens(new: list[int], text: str) -> bool:
            kept[:], generated[0] = new, text
            return stop(new, text) or len(new) >= max_new_tokens

        timings = self.runtime.stream(ids, max_new_tokens, slot, on_tokens, cache_prompt=cache is not None,
                                      keep_going=lambda: not stop.cancel.is_set(), logprobs=logprobs)
        self._measured(timings)
        if cache is not None:
            with self._lock:
                self.slots.record(cache, slot, ids + kept)
        # a step of speculative decoding brings several tokens; the text is cut by the shared rules
        return Generated(kept, int(timings.get("cache_n", 0)), generated[0], logprobs[:len(kept)])

    def _next_tokens(self, ids: list[int], count: int, cache: str | None) -> list[tuple[int, float]]:
        with self._lock:
            slot = self.slots.spare if cache is None else self.slots.of(cache)
        likeliest = self.runtime.likeliest(ids, count, slot, cache_prompt=cache is not None)
        if cache is not None:
            with self._lock:
                self.slots.record(cache, slot, ids)
        return likeliest

    def close(self) -> None:
        self.runtime.close()
