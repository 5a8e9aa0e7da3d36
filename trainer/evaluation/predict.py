"""Get each system's suggestion for each case, through the server's own completion path.

In process, `CompletionEngine.complete` is called exactly as the language server calls
it (same prompt building, stopping and post-processing). With `via_lsp`, the real server
is started over stdio and asked `textDocument/inlineCompletion`, which checks that the
two agree and measures the latency an editor sees.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import Callable, Iterable

from ghostframe.server.inference.model_loading import read_adapter_metadata
from ghostframe.server.inference.remote_client import Endpoint
from ghostframe.trainer.evaluation.answer_cache import AnswerCache, case_key, system_key
from ghostframe.trainer.evaluation.cases import Case


@dataclass(frozen=True)
class System:
    """A model, possibly with an adapter: one column of the comparison."""

    label: str
    model: str = ""  # "" = the embedded default model
    adapter: str = ""

    def load_arguments(self) -> tuple[str, str]:
        """(model, adapter) for load_model; a full fine-tune's output is a model, not an adapter."""
        if self.adapter and read_adapter_metadata(Path(self.adapter).expanduser()).get("kind") == "full":
            return self.adapter, ""
        return self.model, self.adapter


@dataclass(frozen=True)
class Generation:
    """The server settings a prediction runs under."""

    max_new_tokens: int = 48
    max_prompt_tokens: int = 1024
    multiline: bool = False  # one line: the thing a line-level benchmark scores
    device: str = "auto"
    threads: int | None = None  # CPU threads for torch in process (None: the loader's choice, all cores)
    precision: str = "auto"  # CPU weights, as the server's --precision (auto: the fastest measured here)
    engine: str = "auto"  # what runs the model, as the server's --engine (auto: the engine that serves here)
    speculation: str = "auto"  # the llama.cpp engine's speculative decoding, as the server's --speculation
    endpoint: Endpoint | None = None  # engine "remote": the team server that answers (--endpoint ...)

    def described(self) -> dict:
        """The settings for a results file: the endpoint by its URL and API only (never its API key)."""
        fields = {f.name: getattr(self, f.name) for f in dataclass_fields(self) if f.name != "endpoint"}
        return {**fields, "endpoint": None if self.endpoint is None else f"{self.endpoint.api} {self.endpoint.url}"}

    def answer_settings(self) -> dict:
        """What, besides the model and the prompt, decides an answer (threads and device do not)."""
        return {"max_new_tokens": self.max_new_tokens, "max_prompt_tokens": self.max_prompt_tokens,
                "multiline": self.multiline}

    def lsp_settings(self) -> dict:
        """The server's settings for --via-lsp; the show filter off, since the evaluation scores the model's
        answers (show_filter_check scores the filter)."""
        return {"maxNewTokens": self.max_new_tokens, "maxPromptTokens": self.max_prompt_tokens,
                "multiline": self.multiline, "precision": self.precision, "engine": self.engine, "showFilter": False}


@dataclass(frozen=True)
class Prediction:
    text: str
    seconds: float


class EvaluationError(RuntimeError):
    """A system could not be evaluated; the message says why."""


Progress = Callable[[Iterable, str, int], Iterable]


def no_progress(items: Iterable, label: str, total: int) -> Iterable:
    return items


def tqdm_progress(items: Iterable, label: str, total: int) -> Iterable:
    from tqdm import tqdm

    return tqdm(items, desc=label, total=total, file=sys.stderr, unit="case", dynamic_ncols=True)


def predict_in_process(system: System, cases: list[Case], gen: Generation,
                       progress: Progress = no_progress, report=lambda _: None,
                       cache: AnswerCache | None = None) -> tuple[list[Prediction], dict]:
    """Predictions with the model loaded here; also returns what was loaded (name, device).

    A system without adapter gets an `info["answer_key"]`; with a `cache`, it reuses the answers
    it gave to the same prompts before (see evaluation.answer_cache) and stores the new ones;
    `info["cached"]` says how many were reused.
    """
    import torch

    from ghostframe.server.inference.engine import Limits
    from ghostframe.server.inference.engines import make_engine
    from ghostframe.server.inference.model_loading import load_model

    model, adapter = system.load_arguments()
    # The evaluation measures any adapter, also one a gate marked: measuring is how it was marked.
    loaded = load_model(model or None, adapter or None, gen.device, report, precision=gen.precision,
                        force_adapter=True, engine=gen.engine, speculation=gen.speculation,
                        prompt_tokens=gen.max_prompt_tokens, endpoint=gen.endpoint)
    # an adapter's answers, and a team server's (whose weights cannot be read from here), are never reused
    key = None if system.adapter or loaded.engine == "remote" else system_key(loaded, gen.answer_settings())
    earlier = cache.load(key) if key and cache is not None else {}
    new: dict[str, list] = {}
    engine = make_engine(loaded)
    limits = Limits(max_new_tokens=gen.max_new_tokens, max_prompt_tokens=gen.max_prompt_tokens, multiline=gen.multiline)
    threads = torch.get_num_threads()
    if gen.threads:  # after loading, which sets one thread per core
        torch.set_num_threads(gen.threads)
    try:
        warm = False
        out, cached = [], 0
        for case in progress(cases, system.label, len(cases)):
            prompt_key = case_key(case.context)
            known = earlier.get(prompt_key)
            if known is not None:
                out.append(Prediction(*known))
                cached += 1
                continue
            if not warm:  # the first call pays one-time costs (allocations, kernels); keep them out of the latency
                engine.complete(case.context, limits)
                warm = True
            done = engine.complete(case.context, limits)
            out.append(Prediction(done.text, done.seconds))
            new[prompt_key] = [done.text, done.seconds]
    finally:
        torch.set_num_threads(threads)
    if key and cache is not None and new:
        cache.save(key, {**earlier, **new})
    info = {"model_name": loaded.model_name, "device": loaded.device, "fingerprint": loaded.fingerprint,
            "precision": loaded.precision, "engine": loaded.engine, "cached": cached}
    if key:
        info["answer_key"] = key
    engine.close()
    del engine, loaded
    return out, info


async def _predict_via_lsp(system: System, cases: list[Case], gen: Generation, progress: Progress):
    from lsprotocol import types

    from ghostframe.server.tools.lsp_client import EditorClient
    from ghostframe.server.inference.model_options import ModelOptions

    model, adapter = system.load_arguments()
    remote = gen.endpoint
    args = ModelOptions(model=model, adapter=adapter, device=gen.device, precision=gen.precision,
                        engine=gen.engine, speculation=gen.speculation,
                        **({} if remote is None else {
                            "endpoint": remote.url, "endpoint_api": remote.api, "endpoint_model": remote.model,
                            "ca_file": remote.ca_file, "allow_insecure_http": remote.allow_insecure_http})).server_args()
    client = EditorClient(verbose=False)
    await client.start([*args, "--log-level", "WARNING"], gen.lsp_settings())
    try:
        status = await client.wait_ready()
        if not status.get("ready"):
            raise EvaluationError(f"the server could not load {system.label}: {status.get('error')}")
        out = []
        for index, case in enumerate(progress(cases, f"{system.label} (lsp)", len(cases))):
            uri = f"file:///ghostframe-eval/case-{index:05d}.py"
            client.open(uri, case.document)
            if index == 0:  # warm-up, as in process
                await client.inline(uri, case.line, len(case.indentation.encode("utf-16-le")) // 2)
            text, seconds = await client.inline(uri, case.line, len(case.indentation.encode("utf-16-le")) // 2)
            client.text_document_did_close(types.DidCloseTextDocumentParams(
                text_document=types.TextDocumentIdentifier(uri=uri)))
            out.append(Prediction(text, seconds))
        info = {"model_name": status.get("model"), "device": status.get("device"), "fingerprint": "",
                "engine": status.get("engine")}
    finally:
        await client.close()
    return out, info


def predict_via_lsp(system: System, cases: list[Case], gen: Generation,
                    progress: Progress = no_progress, report=lambda _: None) -> tuple[list[Prediction], dict]:
    """Predictions from a real `ghostframe.server` process, one inline completion request per case.

    The server chooses its own CPU threads (`gen.threads` applies in process only).
    """
    report(f"starting ghostframe.server for {system.label}")
    return asyncio.run(_predict_via_lsp(system, cases, gen, progress))
