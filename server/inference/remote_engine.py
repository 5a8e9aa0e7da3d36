"""The remote engine: the completion engine's policies here, the model on a team server.

Everything but the forward passes stays on this machine, in the shared `CompletionEngine`: the
prompt (built with the model's own tokenizer, read locally by remote_loading, FIM tokens and
workspace context included), the stop rules, typed-through answers, the look-ahead and the show
filter's log-probabilities. Only the prompt's token ids go to the endpoint: llama-server's native
`/completion` (`cache_prompt`, so its slot reuses the prefix across keystrokes; `n_probs` for the
ids and log-probabilities; the `lora` field for the workspace's adapter), an OpenAI-compatible
`/v1/completions` (vLLM, SGLang, llama-server; the adapter's name as the `model`), or Ollama's
`/api/generate` (a raw text prompt: Ollama takes no token ids; an adapter is a model made with ADAPTER).

Tokens stream back; the shared stop rule ends a request by closing the stream, and so does a
newer keystroke (the scheduler's cancel event): llama-server stops decoding at its next token, and
drops a request still waiting for a slot once it notices the close (within a second). On llama-server
each typist keeps one slot (remote_slot), so a keystroke reuses the KV cache the previous one left;
there a stale request runs to its first token (its prefill is the next prompt's prefix) and is closed
then. Nothing is shed: only the newest keystroke waits. A server that is down, slow, at capacity
(503/429), refuses the key or answers garbage gives an empty suggestion at once and a `health` the
status shows. No KV cache is kept here, so nothing is warmed ahead.
"""

from __future__ import annotations

import logging
import random
import threading
from collections import Counter
from dataclasses import replace
from pathlib import Path

from ghostframe.server.inference.engine import (Completion, CompletionEngine, Generated, Limits, SpeedOptions,
                                                StopRule, WarmProgress)
from ghostframe.server.inference.loaded_model import LoadedModel
from ghostframe.server.inference.prompt import CompletionContext
from ghostframe.server.inference.remote_client import (BAD_ANSWER, OK, TIMED_OUT, UNAUTHORIZED, UNREACHABLE, RemoteClient,
                                                       RemoteError)
from ghostframe.server.inference.remote_slot import SlotClaim

log = logging.getLogger("ghostframe.remote")

def _token_ids(tokens: list) -> list[int] | None:
    """vLLM's `return_tokens_as_token_ids` spelling ("token_id:123") as ids; None when not so spelled."""
    ids = []
    for token in tokens:
        if not (isinstance(token, str) and token.startswith("token_id:") and token[9:].isdigit()):
            return None
        ids.append(int(token[9:]))
    return ids


def parse_event(event: dict) -> tuple[list[int] | None, str, list[float], dict]:
    """(new token ids or None when the server does not say them, new text, their log-probabilities,
    timings) of one streamed event, in llama-server's native, the OpenAI completion or Ollama's format;
    RemoteError "remote: bad answer" for anything else."""
    try:
        ids, text, logprobs, timings = _parsed(event)
        if not (isinstance(text, str) and isinstance(timings, dict)
                and (ids is None or isinstance(ids, list) and all(type(i) is int for i in ids))):
            raise TypeError("a field of the wrong type")
        return ids, text, [float(p) for p in logprobs], timings
    except (KeyError, IndexError, TypeError, ValueError, AttributeError):
        raise RemoteError(BAD_ANSWER, f"an event of no known format: {str(event)[:80]}") from None


def _parsed(event: dict) -> tuple[list[int] | None, str, list[float], dict]:
    if "choices" in event:  # OpenAI-compatible
        choices = event["choices"]
        choice = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else None
        if choice is None:
            raise RemoteError(BAD_ANSWER, "an event without a choice")
        text = choice.get("text") or ""
        logprobs = choice.get("logprobs") or {}
        if entries := logprobs.get("content"):  # llama-server's own: ids and log-probabilities
            return [e["id"] for e in entries], text, [e["logprob"] for e in entries], event.get("timings") or {}
        tokens = logprobs.get("tokens") or []
        ids = _token_ids(tokens) if tokens else None
        return ids, text, [p for p in logprobs.get("token_logprobs") or [] if p is not None], event.get("timings") or {}
    if "response" in event:  # Ollama: text only
        return None, event["response"] or "", [], {}
    if "content" not in event:
        raise RemoteError(BAD_ANSWER, f"an event without content: {str(event)[:80]}")
    entries = event.get("completion_probabilities") or []
    ids = event.get("tokens")
    if ids is None and entries:
        ids = [e["id"] for e in entries]
    return ids, event["content"] or "", [e["logprob"] for e in entries if "logprob" in e], event.get("timings") or {}


class RemoteEngine(CompletionEngine):
    """The completion engine on a team server (see the module docstring)."""

    kind = "remote"

    def __init__(self, loaded: LoadedModel, options: SpeedOptions = SpeedOptions(), max_cached_documents: int = 4):
        super().__init__(loaded, options, max_cached_documents)
        self.client: RemoteClient = loaded.model
        self.endpoint = self.client.endpoint
        self.health = ""     # the last request's state: "remote: ok", "remote: unreachable", ...
        self.problem = ""    # why, in a few words (never the key, never the prompt)
        self.adapter_note = ""  # a named adapter the server does not serve
        self._lora: list[dict] | None = None  # llama-server's `lora` field for the adapter (None: not looked up)
        self._model: str | None = None        # the `model` of an OpenAI request (None: not decided)
        self._failed = False
        self.failures: Counter[str] = Counter()  # failed requests by state, since the engine started
        self.slot = SlotClaim()  # llama-server: the slot that holds this typist's prompt
        self._context: int | None = None  # the server's context per request, in tokens (0: it does not say)

    @property
    def warms(self) -> bool:
        return False  # the server keeps the KV cache: warming would only spend its time

    def warm_step(self, document: str, ids: list[int], chunk_tokens: int) -> WarmProgress:
        return WarmProgress(len(ids) - 1, len(ids) - 1, 0)

    def complete(self, ctx: CompletionContext, limits: Limits, *, cancel: threading.Event | None = None,
                 document: str | None = None) -> Completion:
        """As every engine; a failed request's empty answer is not remembered for typed-through, so the
        same place asked again goes to the server again."""
        self._failed = False
        if (context := self._server_context()) and limits.max_prompt_tokens + limits.max_new_tokens >= context:
            limits = replace(limits, max_prompt_tokens=max(context - limits.max_new_tokens - 1, 1))
        done = super().complete(ctx, limits, cancel=cancel, document=document)
        if self._failed and document in self._shown:
            self._shown[document] = [s for s in self._shown[document] if (s.before, s.after) != (ctx.before, ctx.after)]
        return done

    def _server_context(self) -> int:
        """The tokens a request may hold on the server (llama-server: a slot's context; vLLM: the model's
        length), asked once; 0 when it does not say. A longer prompt would be refused or cut there, losing
        the lines next to the cursor, so the prompt is cut here instead (from the far end, as always)."""
        if self._context is None and self.endpoint.api != "ollama" and self.health not in (UNREACHABLE, TIMED_OUT):
            try:
                if self.endpoint.api == "llama-server":
                    answer = self.client.get_json("/props")
                    self._context = int(answer["default_generation_settings"]["n_ctx"])
                else:
                    answer = self.client.get_json("/v1/models")
                    self._context = int(answer["data"][0].get("max_model_len") or 0)
            except RemoteError as error:
                if error.state == BAD_ANSWER:
                    self._context = 0  # not said (llama-server --no-props, an OpenAI server other than vLLM)
            except (KeyError, IndexError, TypeError, ValueError, AttributeError):
                self._context = 0
        return self._context or 0

    # --- requests ----------------------------------------------------------------------------

    def _failure(self, error: RemoteError) -> None:
        self._failed = True
        self.failures = self.failures + Counter({error.state: 1})  # replaced, not changed: the status reads it
        if (error.state, error.detail) != (self.health, self.problem):
            log.warning("%s (%s)", error.state, error.detail)  # the detail names no key and no prompt
        self.health, self.problem = error.state, error.detail
        if error.state != UNAUTHORIZED:
            self._lora = None  # a server that comes back may serve other adapters
            self.slot.forget()  # ... and has other slots

    def _succeeded(self) -> None:
        if self.health != OK and self.health:
            log.info("%s again", OK)
        self.health, self.problem = OK, ""

    def _body(self, ids: list[int], max_tokens: int, cache: str | None, probs: int, stream: bool) -> tuple[str, dict]:
        if self.endpoint.api == "llama-server":
            return "/completion", {"prompt": ids, "n_predict": max_tokens, "temperature": 0.0, "stream": stream,
                                   "cache_prompt": cache is not None, "n_probs": probs, "return_tokens": True,
                                   "timings_per_token": True,  # cache_n (the reused prefix) from the first token on
                                   "lora": self._adapter_lora(), **(self.slot.fields() if cache else {})}
        if self.endpoint.api == "ollama":  # a text prompt, used as it is (raw): FIM tokens written out
            return "/api/generate", {"model": self._request_model(), "stream": stream, "raw": True,
                                     "prompt": self.loaded.tokenizer.decode(ids, skip_special_tokens=False),
                                     "options": {"temperature": 0.0, "top_k": 1, "num_predict": max_tokens}}
        body = {"prompt": ids, "max_tokens": max_tokens, "temperature": 0.0, "stream": stream, "logprobs": probs,
                "return_tokens_as_token_ids": True}
        if model := self._request_model():
            body["model"] = model
        return "/v1/completions", body

    def _decode(self, ids: list[int], max_new_tokens: int, stop: StopRule, cache: str | None) -> Generated:
        new: list[int] = []
        text = ""
        logprobs: list[float] = []
        reused = 0
        spelled = True  # the server says each token's id
        claims = self.endpoint.api == "llama-server" and cache is not None
        observed = False  # the slot's reuse was checked (at the first event that says it)
        try:
            if claims and self.slot.slot is None:
                self._claim_slot(ids)
            path, body = self._body(ids, max_new_tokens, cache, 1, True)
            # In our own slot, a newer keystroke lets the prefill finish (its first token): the next prompt
            # shares that prefix and waits for this slot anyway, and the first token says whether the slot
            # still held our prompt. Closed at the first token; elsewhere, closed at once.
            held = claims and self.slot.slot is not None
            events = self.client.stream(path, body, threading.Event() if held else stop.cancel)
            try:
                for event in events:
                    got, piece, probs, timings = parse_event(event)
                    if type(cached := timings.get("cache_n")) is int:
                        if claims and not observed:
                            self.slot.reused(ids, cached)  # the first answer: the slot holds `ids` now
                            observed = True
                        reused = cached
                    if held and stop.cancel.is_set():
                        break
                    if got is None:
                        spelled = False
                    if not got and not piece:
                        continue  # a progress or the final event
                    text += piece
                    logprobs.extend(probs)
                    new = new + (got or []) if spelled else self._ids_of(text)
                    if new and (stop(new, text) or len(new) >= max_new_tokens):
                        break
            finally:
                events.close()  # stopped early: the stream is closed, the server frees the slot
        except RemoteError as error:
            if stop.cancel.is_set():
                return Generated(new, reused, text, logprobs if spelled else [])
            self._failure(error)
            return Generated([], 0, "", [])
        if not stop.cancel.is_set():
            self._succeeded()
        return Generated(new, reused, text, logprobs[:len(new)] if spelled else [])

    def _claim_slot(self, ids: list[int]) -> None:
        """Prefill `ids` in a slot no other typist holds, and keep that slot (remote_slot). Not stopped by a
        newer keystroke: the next request needs the prefix, and a claim cut short would leave it in a slot
        we do not know (the read timeout still ends it)."""
        chosen = self._free_slot()
        path, body = self._body(ids, 0, "claim", 0, False)
        if chosen is not None:
            body["id_slot"] = chosen
        answer = self.client.post_json(path, body)
        self.slot.claimed(answer.get("id_slot") if isinstance(answer, dict) else None, ids)

    def _free_slot(self) -> int | None:
        """A slot for a claim from `GET /slots`: an idle one that never served a request (at random, so that
        typists claiming at once spread out), else the idle one used longest ago (the smallest last task
        id); None to let the server choose (no idle slot, or a server that does not list them). The server
        would choose the slot whose cache is most like the prompt: another typist's, when both write the
        same file."""
        try:
            slots = self.client.get_json("/slots")
        except RemoteError as error:
            if error.state != BAD_ANSWER:
                raise
            return None  # --no-slots
        idle = [s for s in slots if isinstance(s, dict) and type(s.get("id")) is int and not s.get("is_processing")] \
            if isinstance(slots, list) else []
        if unused := [s for s in idle if type(s.get("id_task")) is not int]:
            return random.choice(unused)["id"]
        return min(idle, key=lambda s: s["id_task"])["id"] if idle else None

    def _next_tokens(self, ids: list[int], count: int, cache: str | None) -> list[tuple[int, float]]:
        if self.endpoint.api == "ollama":
            return []  # no top tokens: the greedy answer stands
        try:
            path, body = self._body(ids, 1, cache, count, False)
            answer = self.client.post_json(path, body)
        except RemoteError as error:
            self._failure(error)
            return []
        try:
            if "choices" in answer:
                entries = answer["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
            else:
                entries = answer["completion_probabilities"][0]["top_logprobs"]
            return [(int(e["id"]), float(e["logprob"])) for e in entries]
        except (KeyError, IndexError, TypeError, ValueError):
            return []  # a server that does not say ids: the greedy answer stands

    def _ids_of(self, text: str) -> list[int]:
        return self.loaded.tokenizer.encode(text, add_special_tokens=False)

    # --- adapters per request -------------------------------------------------------------------

    def _adapter_lora(self) -> list[dict]:
        """llama-server's `lora` field: the named adapter at scale 1 and every other adapter the server
        loaded at 0, so a request without an adapter gets the base model whatever scales the server
        started with (a server leaves an adapter the field does not list at its own scale)."""
        if self._lora is None:
            try:
                listed = self.client.get_json("/lora-adapters")
            except RemoteError as error:
                if error.state != BAD_ANSWER:
                    raise  # down, slow or refusing: the request would be too; asked again next time
                listed = []    # a server without adapters (or without the endpoint)
            self._lora = self._match_lora(self.loaded.adapter or "", listed if isinstance(listed, list) else [])
        return self._lora

    def _match_lora(self, name: str, listed: list) -> list[dict]:
        entries = [e for e in listed if isinstance(e, dict) and isinstance(e.get("id"), int)]
        wanted = Path(name).expanduser() if name else None
        chosen = None
        for entry in entries:
            path = Path(str(entry.get("path", "")))
            if name and (name in (str(entry["id"]), str(path), path.name, path.stem, path.parent.name)
                         or (wanted.is_absolute() and path == wanted)):
                chosen = entry["id"]
                break
        self.adapter_note = ""
        if name and chosen is None:
            served = ", ".join(str(e.get("path", e["id"])) for e in entries) or "none"
            self.adapter_note = f"adapter {name!r} is not on the server (it serves: {served}); the base model answers"
            log.warning("%s", self.adapter_note)
        return [{"id": e["id"], "scale": 1.0 if e["id"] == chosen else 0.0} for e in entries]

    def _request_model(self) -> str:
        """An OpenAI or Ollama request's `model`: the adapter's name (vLLM serves it per request; Ollama
        as a model made with ADAPTER), else the endpoint's model, else the first the server lists."""
        if self.loaded.adapter:
            return self.loaded.adapter
        if self._model is None:
            self._model = self.endpoint.model
            if not self._model and self.endpoint.api == "openai":
                try:
                    listed = self.client.get_json("/v1/models")
                    self._model = str(listed["data"][0]["id"])
                except (RemoteError, KeyError, IndexError, TypeError):
                    return ""  # asked again next time
        return self._model

    def describe_health(self) -> str:
        """The state for the status: the last request's, and why it failed."""
        parts = [self.health or "remote: no request yet"]
        if self.problem:
            parts.append(self.problem)
        if self.adapter_note:
            parts.append(self.adapter_note)
        return "; ".join(parts)

    def close(self) -> None:
        self.client.close()
