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

from ghostframe.server.inference.engine import (MAX_CACHED_DOCUMENTS, SHORT_WINDOW_DOCUMENT, CompletionEngine,
                                                SpeedOptions, StopRule, WarmProgress)
from ghostframe.server.inference.llama_runtime import (MAX_SUGGESTION_TOKENS, MEASURED_PREFILL_TOKENS,
                                                       LlamaRuntime)
from ghostframe.server.inference.model_loading import LoadedModel

log = logging.getLogger("ghostframe.llama")


class _Slots:
    """Which llama.cpp slot holds which document's cache, least recently used first out.

    The last slot is never given to a document: requests without one (the evaluation) use it.
    `held[document]` mirrors the token ids the slot's cache holds (what warming has to add).
    """

    def __init__(self, documents: int):
        self.free = list(range(documents))
        self.by_document: OrderedDict[str, int] = OrderedDict()
        self.held: dict[str, list[int]] = {}
        self.spare = documents

    def of(self, document: str) -> int:
        if document in self.by_document:
            self.by_document.move_to_end(document)
            return self.by_document[document]
        if not self.free:
            oldest, slot = self.by_document.popitem(last=False)
            self.held.pop(oldest, None)
            self.free.append(slot)
        self.by_document[document] = slot = self.free.pop()
        return slot

    def release(self, document: str) -> int | None:
        """Give `document`'s slot back; returns it (None when it had none)."""
        if (slot := self.by_document.pop(document, None)) is not None:
            self.free.append(slot)
        self.held.pop(document, None)
        return slot


def common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class LlamaEngine(CompletionEngine):
    """The completion engine on llama.cpp (see the module docstring)."""

    kind = "llama.cpp"

    def prompt_ids(self, ctx, max_prompt_tokens: int) -> list[int]:
        """build_prompt's ids, within what a slot holds besides the longest suggestion (the context was
        sized at load from the settings then; a larger maxPromptTokens takes effect on reload)."""
        room = self.runtime.config.slot_tokens - MAX_SUGGESTION_TOKENS
        if max_prompt_tokens > room and not self._warned_room:
            log.warning("prompts are cut to %d tokens: the llama.cpp context was sized for that (reload the model "
                        "to use maxPromptTokens %d)", room, max_prompt_tokens)
            self._warned_room = True
        return super().prompt_ids(ctx, min(max_prompt_tokens, room))

    def __init__(self, loaded: LoadedModel, options: SpeedOptions = SpeedOptions(),
                 max_cached_documents: int = MAX_CACHED_DOCUMENTS):
        super().__init__(loaded, options, max_cached_documents)
        self.runtime: LlamaRuntime = loaded.model
        documents = min(max_cached_documents, self.runtime.config.slots - 1)
        self.slots = _Slots(documents)
        self._lock = threading.Lock()  # slot bookkeeping is touched from the worker only; forget may come from elsewhere
        self._prefill_rate: float | None = self.runtime.startup_prefill_rate  # seconds per prompt token
        self._warned_room = False

    def _forget_cache(self, document: str) -> None:
        with self._lock:
            slot = self.slots.release(document)
        if slot is not None:
            self.runtime.erase(slot)

    def cached_documents(self) -> set[str]:
        with self._lock:
            return set(self.slots.by_document) - {SHORT_WINDOW_DOCUMENT}

    def cached_tokens(self, document: str, ids: list[int]) -> int:
        with self._lock:
            return common_prefix(self.slots.held.get(document, []), ids)

    def prefill_seconds_per_token(self) -> float | None:
        return self._prefill_rate

    def _measured(self, timings: dict) -> None:
        """Keep a running estimate of the prefill rate from llama-server's timings of a request."""
        if timings.get("prompt_n", 0) >= MEASURED_PREFILL_TOKENS and timings.get("prompt_ms"):
            rate = timings["prompt_ms"] / 1000 / timings["prompt_n"]
            self._prefill_rate = rate if self._prefill_rate is None else 0.7 * self._prefill_rate + 0.3 * rate

    def warm_step(self, document: str, ids: list[int], chunk_tokens: int) -> WarmProgress:
        target = len(ids) - 1
        if not self.options.prefix_cache:
            return WarmProgress(target, target, 0)
        with self._lock:
            slot = self.slots.of(document)
            have = min(common_prefix(self.slots.held.get(document, []), ids), target)
        if have >= target:
            return WarmProgress(have, target, 0)
        end = target if target - have <= chunk_tokens * 3 // 2 else have + chunk_tokens
        timings = self.runtime.prefill(ids[:end], slot)
        self._measured(timings)
        with self._lock:
            if self.slots.by_document.get(document) == slot:
                self.slots.held[document] = ids[:end]
        return WarmProgress(end, target, int(timings.get("prompt_n", end - have)))

    def _generate(self, ids, max_new_tokens, should_stop: StopRule, document, cancel):
        use_cache = self.options.prefix_cache and document is not None
        with self._lock:
            slot = self.slots.of(document) if use_cache else self.slots.spare
        kept: list[int] = []
        generated: list[str] = [""]

        def on_tokens(new: list[int], text: str) -> bool:
            kept[:], generated[0] = new, text
            return should_stop(new, text) or len(new) >= max_new_tokens

        timings = self.runtime.stream(ids, max_new_tokens, slot, on_tokens, cache_prompt=use_cache,
                                      keep_going=lambda: not cancel.is_set())
        self._measured(timings)
        if use_cache:
            with self._lock:
                if self.slots.by_document.get(document) == slot:
                    self.slots.held[document] = ids + kept
        # a step of speculative decoding brings several tokens; the text is cut by the shared rules
        return kept, int(timings.get("cache_n", 0)), generated[0]

    def close(self) -> None:
        self.runtime.close()
