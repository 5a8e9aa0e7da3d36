"""llama.cpp in process through the `xllamacpp` wheel: loading a GGUF and running requests on it.

`xllamacpp` (a prebuilt wheel: no compiler on the user's machine) runs llama-server's engine
inside this process. `LlamaRuntime` owns it: the model, its slots (KV caches, llama-server's
`id_slot`), streamed greedy requests, prefill-only requests and timed ones. What a slot means for
completion (a document, its cached tokens, the shared stop rules) is `llama_engine.LlamaEngine`'s.

llama-server also listens for HTTP: here on a Unix socket in a private folder, with a random API
key, so no other user's process can reach it.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

log = logging.getLogger("ghostframe.llama")

# Prompt tokens evaluated per batch: a cancelled request stops after the batch it is in, and
# 256 is as fast per token as llama-server's 512 for the pinned models on 2 AVX2 cores.
BATCH_TOKENS = 256
# Chunks at least this long that moved are shifted into place instead of recomputed
# (llama.vscode's --cache-reuse 256).
CACHE_REUSE_TOKENS = 256
# The most new tokens a suggestion may have (the maxNewTokens setting's maximum): a slot keeps room for them.
MAX_SUGGESTION_TOKENS = 512
# Prefills at least this long tell the engine its prefill rate (shorter ones are mostly overhead).
MEASURED_PREFILL_TOKENS = 32
SPECULATIONS = ("none", "ngram", "draft")
# Draft tokens per step: the 0.5B model drafting for the 1.5B, llama.vscode's FIM presets' values.
DRAFT_MAX, DRAFT_MIN = 16, 0


def available() -> str | None:
    """None when the llama.cpp binding can be imported, else why not."""
    try:
        import xllamacpp  # noqa: F401  (the probe itself; it loads llama.cpp's libraries)
    except ImportError as exc:
        return f"the llama.cpp binding xllamacpp is not installed ({exc})"
    return None


def physical_cores() -> int:
    """Threads for llama.cpp: the physical cores this process may run on (a second hyper-thread on a
    core only adds contention; llama.cpp's own default counts the same way), the performance cores
    on Apple silicon."""
    try:
        allowed = sorted(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        if sys.platform == "darwin":
            try:
                found = subprocess.run(["sysctl", "-n", "hw.perflevel0.physicalcpu"], capture_output=True,
                                       text=True, timeout=5).stdout.strip()
                return max(1, int(found))
            except (OSError, ValueError, subprocess.SubprocessError):
                pass
        return max(1, os.cpu_count() or 1)
    cores = set()
    for cpu in allowed:
        try:
            siblings = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list").read_text().strip()
        except OSError:
            siblings = str(cpu)
        cores.add(siblings)
    return max(1, len(cores))


@dataclass(frozen=True)
class RuntimeConfig:
    """How llama.cpp runs a GGUF file; every field shapes the context at load."""

    gguf: Path
    threads: int = field(default_factory=physical_cores)
    slots: int = 5                          # LlamaEngine: one per cached document, one for requests without one
    slot_tokens: int = 2048                 # context per slot: the prompt plus the new tokens
    speculation: str = "none"               # none | ngram (prompt lookup) | draft (a small model drafts)
    draft: Path | None = None               # the draft model's GGUF, with speculation="draft"
    lora: tuple[tuple[Path, float], ...] = ()
    batch_tokens: int = BATCH_TOKENS


class LlamaError(RuntimeError):
    """llama.cpp refused a request or a model; the message is llama-server's."""


class LlamaRuntime:
    """One GGUF model (plus draft and LoRA) loaded by llama.cpp, with `slots` KV caches."""

    def __init__(self, config: RuntimeConfig):
        import xllamacpp as xlc  # loads llama.cpp's libraries: only when a model runs

        self.config = config
        self._folder = tempfile.mkdtemp(prefix="ghostframe-llama-")  # 0700: the socket's only door
        self._api_key = secrets.token_hex(16)
        p = xlc.CommonParams()
        p.model.path = str(config.gguf)
        p.n_parallel = config.slots
        p.n_ctx = config.slots * config.slot_tokens
        p.n_batch = p.n_ubatch = config.batch_tokens
        p.cpuparams.n_threads = p.cpuparams_batch.n_threads = config.threads
        p.n_cache_reuse = CACHE_REUSE_TOKENS
        p.cache_ram_mib = 0          # documents keep their own slots; no second copy in RAM
        p.cache_idle_slots = False
        p.endpoint_metrics = p.endpoint_props = False  # /slots stays: forget erases a slot through it
        p.slot_save_path = self._folder  # slot actions need one; nothing is saved there
        unix_socket = os.path.join(self._folder, "llama.sock")
        p.hostnames = [unix_socket] if hasattr(socket, "AF_UNIX") else ["127.0.0.1"]  # Windows: the key guards it
        p.api_keys = [self._api_key]
        p.verbosity = 3 if log.isEnabledFor(logging.DEBUG) else 1
        if config.lora:
            p.lora_adapters = [xlc.CommonAdapterLoraInfo(str(path), scale) for path, scale in config.lora]
        if config.speculation == "draft":
            if config.draft is None:
                raise ValueError("speculation 'draft' needs a draft model")
            p.speculative.types = [xlc.common_speculative_type.COMMON_SPECULATIVE_TYPE_DRAFT_SIMPLE]
            p.speculative.draft.mparams.path = str(config.draft)
            p.speculative.draft.n_max, p.speculative.draft.n_min = DRAFT_MAX, DRAFT_MIN
            p.speculative.draft.cpuparams.n_threads = p.speculative.draft.cpuparams_batch.n_threads = config.threads
        elif config.speculation == "ngram":
            p.speculative.types = [xlc.common_speculative_type.COMMON_SPECULATIVE_TYPE_NGRAM_SIMPLE]
        elif config.speculation != "none":
            raise ValueError(f"unknown speculation {config.speculation!r}: use one of {', '.join(SPECULATIONS)}")
        try:
            self._server = xlc.Server(p)
        except RuntimeError as exc:
            shutil.rmtree(self._folder, ignore_errors=True)
            raise LlamaError(f"llama.cpp could not load {config.gguf.name}: {exc}") from exc
        self._address = self._server.listening_address  # unix:///…/llama.sock or http://127.0.0.1:PORT
        # The engine's loop starts after the constructor returns; a stop sent before it runs is
        # lost and closing would wait forever. One request through the loop makes sure it runs,
        # and tells what a prefill costs here before the first real one.
        timings = self.prefill(list(range(1, MEASURED_PREFILL_TOKENS * 2 + 1)), config.slots - 1)
        self.startup_prefill_rate = timings["prompt_ms"] / 1000 / max(1, timings["prompt_n"])

    def stream(self, ids: list[int], max_tokens: int, slot: int, on_tokens: Callable[[list[int], str], bool],
               cache_prompt: bool = True, keep_going: Callable[[], bool] = lambda: True,
               logprobs: list[float] | None = None) -> dict:
        """Greedy tokens after `ids` in `slot`: `on_tokens(new ids, their text)` after each step; True stops
        the request.

        The text is llama-server's: a token that ends inside a UTF-8 character is sent with the
        next one, and its id is then missing from the ids (the text has it). `keep_going()` is
        also asked while the prompt is evaluated (once per batch); False stops it there. `logprobs`,
        when given, gets each new id's log-probability (parallel to the ids). Returns llama-server's
        timings of the request.
        """
        new: list[int] = []
        text: list[str] = []
        timings: dict = {}
        errors: list[str] = []

        def receive(chunk: Any) -> bool:
            if isinstance(chunk, (str, bytes)):
                chunk = json.loads(chunk)
            if "error" in chunk or "code" in chunk and "choices" not in chunk:
                errors.append(str(chunk.get("error") or chunk.get("message") or chunk))
                return True
            timings.update(chunk.get("timings") or {})
            choice = (chunk.get("choices") or [{}])[0]
            entries = (choice.get("logprobs") or {}).get("content") or []
            tokens = [entry["id"] for entry in entries]
            if not tokens:
                return not keep_going()  # a prompt-progress event (or the final one)
            new.extend(tokens)
            if logprobs is not None:
                logprobs.extend(entry["logprob"] for entry in entries)
            text.append(choice.get("text") or "")
            return on_tokens(new, "".join(text))

        request = {"prompt": ids, "max_tokens": max_tokens, "temperature": 0.0, "n_probs": 1, "stream": True,
                   "return_progress": True, "timings_per_token": True, "cache_prompt": cache_prompt, "id_slot": slot,
                   "n_cache_reuse": CACHE_REUSE_TOKENS if cache_prompt else 0}
        self._server.handle_completions(request, receive)
        if errors:
            raise LlamaError(errors[0])
        return timings

    def _answer(self, request: dict) -> dict:
        """llama-server's answer to a request answered at once (its error raised as LlamaError)."""
        result = self._server.handle_completions(request)
        if "choices" not in result:
            raise LlamaError(str(result.get("error") or result.get("message") or result))
        return result

    def _timings(self, request: dict) -> dict:
        """llama-server's timings of a request answered at once."""
        return self._answer(request).get("timings") or {}

    def prefill(self, ids: list[int], slot: int) -> dict:
        """Evaluate `ids` into `slot`'s cache and generate nothing (llama-server's n_predict 0)."""
        return self._timings({"prompt": ids, "max_tokens": 0, "id_slot": slot, "cache_prompt": True,
                              "n_cache_reuse": CACHE_REUSE_TOKENS})

    def likeliest(self, ids: list[int], count: int, slot: int, cache_prompt: bool = True) -> list[tuple[int, float]]:
        """The `count` likeliest tokens after `ids` in `slot`, likeliest first, with their log-probabilities
        (llama-server's top_logprobs: from the model's own distribution, before sampling)."""
        result = self._answer({"prompt": ids, "max_tokens": 1, "temperature": 0.0, "n_probs": count,
                               "cache_prompt": cache_prompt, "id_slot": slot})
        entries = ((result["choices"][0].get("logprobs") or {}).get("content") or [{}])[0].get("top_logprobs") or []
        return [(entry["id"], entry["logprob"]) for entry in entries]

    def timed(self, ids: list[int], new_tokens: int) -> dict:
        """A cold prefill of `ids` and exactly `new_tokens` greedy tokens; llama-server's timings of it."""
        return self._timings({"prompt": ids, "max_tokens": new_tokens, "temperature": 0.0, "ignore_eos": True,
                              "cache_prompt": False, "id_slot": 0})

    def erase(self, slot: int) -> None:
        """Drop what `slot`'s KV cache holds (a closed document's text)."""
        self._http("POST", f"/slots/{slot}?action=erase", "{}")

    def tokenize(self, text: str) -> list[int]:
        """llama.cpp's own tokenization of `text` (no BOS, special tokens as text), over its socket."""
        body = json.dumps({"content": text, "add_special": False, "parse_special": False})
        return json.loads(self._http("POST", "/tokenize", body))["tokens"]

    def _http(self, method: str, path: str, body: str) -> str:
        if self._address.startswith("unix://"):
            connection: http.client.HTTPConnection = _UnixConnection(self._address.removeprefix("unix://"))
        else:
            host, _, port = self._address.removeprefix("http://").rpartition(":")
            connection = http.client.HTTPConnection(host, int(port), timeout=60)
        try:
            connection.request(method, path, body=body.encode(), headers={
                "Authorization": f"Bearer {self._api_key}", "Content-Type": "application/json"})
            response = connection.getresponse()
            data = response.read().decode()
            if response.status != 200:
                raise LlamaError(f"llama-server answered {response.status}: {data[:300]}")
            return data
        finally:
            connection.close()

    def close(self) -> None:
        """Stop llama.cpp's loop and free the model (the object is unusable afterwards)."""
        server, self._server = getattr(self, "_server", None), None
        del server
        shutil.rmtree(self._folder, ignore_errors=True)


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str):
        super().__init__("localhost", timeout=60)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)
