"""llama.cpp as the CPU peer in `ghostframe bench latency`: same GGUF file, prompts, tokens and threads.

llama.cpp is what local completion tools (Tabby and others) run on CPUs. Through
`llama-cpp-python` (optional: `pip install 'ghostframe-lsp[llama]'`, it builds from source)
the bench feeds it our own prompt token ids, keeps its KV cache across keystrokes by common
prefix as our engine does, and decodes greedily exactly as many tokens as our engine did for
that keystroke, so the two rows time the same work.
"""

from __future__ import annotations

import time
from pathlib import Path

INSTALL_HINT = "pip install 'ghostframe-lsp[llama]'  (builds llama.cpp from source, several minutes)"


def available() -> str | None:
    """None when llama-cpp-python can be imported, else why not (for the bench's skip message)."""
    try:
        import llama_cpp  # noqa: F401
    except ImportError as exc:
        return f"llama-cpp-python is not installed ({exc.name or exc}); {INSTALL_HINT}"
    return None


class LlamaPeer:
    """One llama.cpp context on a GGUF file, driven token by token."""

    def __init__(self, gguf: Path, threads: int, n_ctx: int = 2048):
        from llama_cpp import Llama

        self.llm = Llama(model_path=str(gguf), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads,
                         n_batch=512, verbose=False)
        self.threads = threads

    def _eval_after_prefix(self, ids: list[int]) -> int:
        """Evaluate `ids`, reusing the longest common prefix already in the KV cache; returns tokens reused."""
        held = list(self.llm.input_ids[: self.llm.n_tokens])
        reuse = 0
        limit = min(len(held), len(ids) - 1)
        while reuse < limit and held[reuse] == ids[reuse]:
            reuse += 1
        self.llm.n_tokens = reuse  # eval drops the KV cache past n_tokens
        self.llm.eval(ids[reuse:])
        return reuse

    def _next(self) -> int:
        """The greedy next token: argmax of the last evaluated position's logits (read from the
        context, since Llama keeps `scores` only with logits_all)."""
        import numpy as np

        logits = np.ctypeslib.as_array(self.llm._ctx.get_logits_ith(-1), shape=(self.llm.n_vocab(),))
        return int(np.argmax(logits))

    def complete(self, ids: list[int], new_tokens: int) -> tuple[list[int], float, float]:
        """Greedy `new_tokens` after `ids`: (tokens, seconds to the first token, total seconds)."""
        started = time.perf_counter()
        self._eval_after_prefix(ids)
        out = [self._next()]
        first = time.perf_counter() - started
        while len(out) < new_tokens:
            self.llm.eval([out[-1]])
            out.append(self._next())
        return out, first, time.perf_counter() - started

    def prefill_and_decode_ms(self, ids: list[int], steps: int = 16) -> tuple[float, float]:
        """Cold prefill of `ids` (ms) and one greedy decode step (ms per token, best of `steps`)."""
        self.llm.reset()
        started = time.perf_counter()
        self.llm.eval(ids)
        prefill = time.perf_counter() - started
        token, best = self._next(), float("inf")
        for _ in range(steps):
            started = time.perf_counter()
            self.llm.eval([token])
            best = min(best, time.perf_counter() - started)
            token = self._next()
        return prefill * 1000, best * 1000
