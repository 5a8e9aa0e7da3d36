"""`ghostframe bench latency`: a typing session through the real server vs plain `model.generate`.

An editor sends a completion request after each keystroke. This replays that over a
real pandas file (one character at a time) through the server, then times on the very
same prompts, in the same run: plain greedy `generate`, the engine's paths in each CPU
precision, the first request in a just-opened file (cold, after a pause while warming,
fully warm), the llama.cpp engine on the same GGUF file (with and without speculation), and
llama-server on it as llama.vscode drives it (`--peer`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path

from ghostframe.server.inference.machine import environment


def summary(seconds: list[float]) -> dict:
    import numpy as np

    p50, p95 = np.percentile(seconds, [50, 95])
    return {"p50_ms": round(float(p50) * 1000, 1), "p95_ms": round(float(p95) * 1000, 1),
            "mean_ms": round(statistics.mean(seconds) * 1000, 1), "n": len(seconds)}


def typing_session(text: str, keystrokes: int) -> tuple[str, str]:
    """(text already there, characters to type): the last `keystrokes` characters of the last code line(s)."""
    body = text.rstrip()
    return body[: len(body) - keystrokes], body[len(body) - keystrokes:]


def cursor_after(text: str) -> tuple[int, int]:
    """LSP (line, character) at the end of `text`."""
    from ghostframe.server.inference.text import utf16_column

    last = text.rsplit("\n", 1)[-1]
    return text.count("\n"), utf16_column(last, len(last))


async def replay_through_server(args: argparse.Namespace, start: str, typed: str) -> tuple[list[float], list[str], dict]:
    """Open the file, pause as a user does (the server warms it meanwhile), then type."""
    from ghostframe.server.tools.lsp_client import EditorClient
    from ghostframe.server.inference.model_options import ModelOptions

    client = EditorClient(verbose=False)
    await client.start_ready(ModelOptions.from_args(args).server_args(), {"maxNewTokens": args.max_new_tokens})
    try:
        uri = "file:///bench/typing_session.py"
        client.open(uri, start)
        await asyncio.sleep(args.pause_after_open)
        document, seconds, documents = start, [], []
        for char in typed:
            line, character = cursor_after(document)
            client.type_text(uri, line, character, char)
            document += char
            _, elapsed = await client.inline(uri, *cursor_after(document))
            seconds.append(elapsed)
            documents.append(document)
        status = await client.server_status()
    finally:
        await client.close()
    return seconds, documents, status


def variants(args: argparse.Namespace) -> dict:
    """The model in every precision the rows compare, by name; "served" is the server's own choice."""
    import torch

    from ghostframe.server.inference import quantization
    from ghostframe.server.inference.model_loading import load_model
    from ghostframe.server.inference.precision import default_prefill

    from ghostframe.server.inference.model_options import ModelOptions

    load = lambda precision: load_model(args.model or None, args.adapter or None, args.device,  # noqa: E731
                                        precision=precision)
    out = {"float32": load("float32")}
    if out["float32"].device == "cpu":
        out["int8"] = load("int8")
        other = "float32" if default_prefill() == "bfloat16" else "bfloat16"
        out[f"int8, prefill in {other}"] = load("int8")
        quantization.set_wide_dtype(out[f"int8, prefill in {other}"].model, getattr(torch, other))
        out["bfloat16"] = load("bfloat16")
    out["served"] = load(ModelOptions.from_args(args).cpu_precision)
    return out


def micro(loaded, ids: list[int], steps: int = 16) -> dict:
    """Cold prefill of `ids` (ms) and one greedy decode step (ms per token, best of `steps`)."""
    import torch
    from transformers import DynamicCache

    from ghostframe.server.inference.decoding import prefill

    sync = torch.cuda.synchronize if loaded.device == "cuda" else (lambda: None)
    with torch.inference_mode():
        prefill(loaded.model, ids[:16], DynamicCache())  # first-call allocations
        cache = DynamicCache()
        sync()
        started = time.perf_counter()
        token = int(prefill(loaded.model, ids, cache).argmax())
        sync()
        prefill_ms, best = (time.perf_counter() - started) * 1000, float("inf")
        for _ in range(steps):
            started = time.perf_counter()
            token = int(prefill(loaded.model, [token], cache).argmax())
            sync()
            best = min(best, time.perf_counter() - started)
    return {"prompt_tokens": len(ids), "prefill_ms": round(prefill_ms, 1), "decode_ms_per_token": round(best * 1000, 1)}


def first_request(loaded, document: str, args: argparse.Namespace, budget: int) -> dict:
    """The first request at the end of a just-opened file: cold, after a pause spent warming, fully warm."""
    from ghostframe.server.inference.engine import Limits, SpeedOptions, TorchEngine
    from ghostframe.server.inference.prompt import CompletionContext
    from ghostframe.server.inference.warming import CHUNK_TOKENS

    ctx = CompletionContext(document, "")
    out = {}
    for name, pause in (("cold", 0.0), (f"after {args.pause_after_open:g} s warming", args.pause_after_open),
                        ("fully warm", float("inf"))):
        engine = TorchEngine(loaded, SpeedOptions(typed_through=False))
        ids, started = engine.prompt_ids(ctx, budget), time.perf_counter()
        while pause > 0 and time.perf_counter() - started < pause:  # warming.py's chunks, back to back
            if engine.warm_step("doc", ids, CHUNK_TOKENS).done:
                break
        done = engine.complete(ctx, Limits(max_new_tokens=args.max_new_tokens, max_prompt_tokens=budget,
                                           multiline=True), document="doc")
        out[name] = {"ms": round(done.seconds * 1000, 1), "prefilled_tokens": done.prompt_tokens - done.reused_tokens,
                     "new_tokens": done.new_tokens}
    return out


def llama_rows(args: argparse.Namespace, documents: list[str], budget: int) -> dict:
    """The llama.cpp engine on the same documents (without and with speculation), and llama-server
    driven as llama.vscode drives it, when the model is a GGUF file (a pinned model or a .gguf)."""
    from ghostframe.server.inference.engine import Limits, SpeedOptions
    from ghostframe.server.inference.engines import make_engine
    from ghostframe.server.inference.llama_loading import DRAFT_MODELS
    from ghostframe.server.inference.model_loading import gguf_of, load_model
    from ghostframe.server.inference.prompt import CompletionContext
    from ghostframe.server.tools.llama_peer import LlamaServerPeer

    model = args.model or "smollm2-135m"
    if args.adapter:
        return {"skipped": "the llama.cpp rows run the base model only"}
    if gguf_of(model) is None:
        return {"skipped": "llama.cpp needs a GGUF file: a pinned model or --model FILE.gguf"}
    rows, micro_rows = {}, {}
    for speculation in ("none", "ngram", *(("draft",) if model in DRAFT_MODELS else ())):
        loaded = load_model(model, device="cpu", engine="llama", speculation=speculation)
        engine = make_engine(loaded, SpeedOptions(typed_through=False))
        total, first, tokens = [], [], []
        limits = Limits(max_new_tokens=args.max_new_tokens, max_prompt_tokens=budget, multiline=True)
        first_call = Limits(max_new_tokens=4, max_prompt_tokens=budget, multiline=True)
        engine.complete(CompletionContext(documents[0][:200], ""), first_call)  # first-call allocations
        for document in documents:
            done = engine.complete(CompletionContext(document, ""), limits, document="bench")
            total.append(done.seconds)
            first.append(done.first_token_seconds or done.seconds)
            tokens.append(done.new_tokens)
        rows[f"llama.cpp engine, speculation {speculation}"] = {
            **summary(total), "first_token_p50_ms": summary(first)["p50_ms"],
            "new_tokens_mean": round(statistics.mean(tokens), 1)}
        if speculation == "none":
            timings = loaded.model.timed(engine.prompt_ids(CompletionContext(documents[-1], ""), budget), 16)
            micro_rows = {"prompt_tokens": timings["prompt_n"], "prefill_ms": round(timings["prompt_ms"], 1),
                          "decode_ms_per_token": round(timings["predicted_ms"] / max(1, timings["predicted_n"] - 1), 1)}
        engine.close()
    peer = LlamaServerPeer.start(args.peer, model)
    try:
        total = []
        for document in documents:
            started = time.perf_counter()
            peer.post("/completion", {"prompt": document, "n_predict": args.max_new_tokens, "top_k": 40,
                                      "top_p": 0.99, "cache_prompt": True, "t_max_prompt_ms": 500,
                                      "t_max_predict_ms": 1000})
            total.append(time.perf_counter() - started)
        rows[f"llama-server ({peer.describe()}), cache_prompt"] = summary(total)
    finally:
        peer.stop()
    return {"rows": rows, "micro": micro_rows, "gguf": gguf_of(model)[0].name}


def in_process(args: argparse.Namespace, documents: list[str]) -> dict:
    """Per-keystroke latency of plain `generate` (max_new_tokens, no stopping rule) and of the
    engine's plain and fast paths (same stopping rules as the server), on the same prompts,
    in each precision; the first request in a just-opened file; llama.cpp."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    from ghostframe.server.inference.quiet import quiet_transformers
    from ghostframe.server.inference.engine import Limits, SpeedOptions
    from ghostframe.server.inference.engines import make_engine
    from ghostframe.server.inference.prompt import CompletionContext, build_prompt
    from ghostframe.server.lsp.settings import Settings

    quiet_transformers()  # the report, not weight-loading bars
    models = variants(args)
    loaded, served = models["float32"], models["served"]
    sync = torch.cuda.synchronize if loaded.device == "cuda" else (lambda: None)
    budget = Settings().max_prompt_tokens
    cached = SpeedOptions(typed_through=False)
    paths = {"engine_plain": (loaded, SpeedOptions(plain=True)), "engine_cache": (loaded, cached)}
    for name, model in models.items():
        if name not in ("float32", "served"):
            paths["engine_cache_" + name.replace(", prefill in ", "_prefill_")] = (model, cached)
    served_row = next((k for k, (m, _) in paths.items() if k.startswith("engine_cache")
                       and m.precision == served.precision), "engine_cache")
    # prompt lookup, which transformers only does from a new cache, on the same model
    paths["engine_lookup"] = (paths[served_row][0], SpeedOptions(typed_through=False, prompt_lookup=True))
    paths["engine_fast"] = (served, SpeedOptions())
    rows: dict[str, dict[str, list]] = {name: {"total": [], "first": [], "tokens": [], "typed": []}
                                        for name in ("plain_generate", *paths)}

    class FirstToken(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            if self.at is None:
                sync()
                self.at = time.perf_counter()
            return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)

    prompts = [build_prompt(CompletionContext(document, ""), loaded.tokenizer, budget) for document in documents]
    with torch.inference_mode():  # warm-up: first calls pay for allocation and kernel selection
        warm = torch.tensor([prompts[0]], device=loaded.device)
        loaded.model.generate(input_ids=warm, attention_mask=torch.ones_like(warm), max_new_tokens=4,
                              do_sample=False, pad_token_id=loaded.tokenizer.pad_token_id)
    for ids in prompts:
        input_ids = torch.tensor([ids], device=loaded.device)
        first = FirstToken()
        first.at = None
        sync()
        started = time.perf_counter()
        with torch.inference_mode():
            out = loaded.model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                                        max_new_tokens=args.max_new_tokens, do_sample=False,
                                        pad_token_id=loaded.tokenizer.pad_token_id,
                                        stopping_criteria=StoppingCriteriaList([first]))
        sync()
        rows["plain_generate"]["total"].append(time.perf_counter() - started)
        rows["plain_generate"]["first"].append(first.at - started)
        rows["plain_generate"]["tokens"].append(out.shape[1] - len(ids))
    limits = Limits(max_new_tokens=args.max_new_tokens, max_prompt_tokens=budget, multiline=True)
    for name, (model, options) in paths.items():
        engine = make_engine(model, options)  # engine_plain's options give the reference engine
        for document in documents:
            done = engine.complete(CompletionContext(document, ""), limits, document="bench")
            rows[name]["total"].append(done.seconds)
            rows[name]["first"].append(done.first_token_seconds or done.seconds)
            rows[name]["tokens"].append(done.new_tokens)
            rows[name]["typed"].append(done.typed_through)
    report = {name: {**summary(row["total"]), "first_token_p50_ms": summary(row["first"])["p50_ms"],
                     "new_tokens_mean": round(statistics.mean(row["tokens"]), 1),
                     "typed_through_hits": sum(row["typed"])} for name, row in rows.items()}
    report["mean_prompt_tokens"] = round(statistics.mean(len(ids) for ids in prompts))
    report["first_request"] = first_request(served, documents[-1], args, budget)
    report["prefill_decode"] = {name: micro(model, prompts[-1]) for name, model in models.items() if name != "served"}
    report["served_precision_row"] = served_row
    if loaded.device == "cpu":
        report["llama_cpp"] = llama_rows(args, documents, budget)
    report["precision_choice"] = served.precision_choice.describe() if served.precision_choice else served.precision
    return report


ROW_LABELS = {
    "engine_plain": "engine, plain path (generate + stop rules)",
    "engine_cache": "engine, reused KV cache, float32",
    "engine_fast": "engine, all speed-ups (+ typed-through), served",
    "engine_lookup": "engine, prompt lookup (new cache), served",
}


def row_label(name: str) -> str:
    if name in ROW_LABELS:
        return ROW_LABELS[name]
    precision = name.removeprefix("engine_cache_").replace("_prefill_", ", prefill in ")
    label = "int8 weights" if precision == "int8" else precision
    return f"engine, reused KV cache, {label}"


async def latency(args: argparse.Namespace) -> int:
    from ghostframe.server.inference.machine import cpu_description
    from ghostframe.server.tools.lsp_client import read_source
    from ghostframe.server.tools.terminal_cli import example_path

    path = Path(args.file) if args.file else example_path()
    start, typed = typing_session(read_source(path), args.keystrokes)
    print(f"typing {len(typed)} characters at the end of {path.name} ({args.pause_after_open:g} s after opening it), "
          "a completion request after each ...", file=sys.stderr)
    server_seconds, documents, status = await replay_through_server(args, start, typed)
    print("same prompts in-process: plain model.generate, the engine's paths in each precision, llama.cpp ...",
          file=sys.stderr)
    rows = in_process(args, documents)
    prompt_tokens = rows.pop("mean_prompt_tokens")
    first, micro_rows, llama = rows.pop("first_request"), rows.pop("prefill_decode"), rows.pop("llama_cpp", None)
    choice, served_row = rows.pop("precision_choice"), rows.pop("served_precision_row")
    ours, plain = summary(server_seconds), rows["plain_generate"]
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    report = {
        "device": status.get("device"), "precision": status.get("precision"), "model": status.get("model"),
        "engine": status.get("engine"), "engine_reason": status.get("engineReason"),
        "model_choice": status.get("modelChoice"),
        "adapter": status.get("adapter"), "precision_choice": status.get("precisionChoice") or choice,
        "environment": {**environment(), "load_average": load},
        "keystrokes": len(typed), "max_new_tokens": args.max_new_tokens, "mean_prompt_tokens": prompt_tokens,
        "pause_after_open_s": args.pause_after_open,
        "ghostframe_server": {**ours, "first_request_ms": round(server_seconds[0] * 1000, 1)}, **rows,
        "first_request": first, "prefill_decode": micro_rows, "llama_cpp": llama,
        "speedup_p50": round(plain["p50_ms"] / max(ours["p50_ms"], 0.1), 1),
    }
    env = report["environment"]
    hardware = env["cuda"] if report["device"] == "cuda" else cpu_description()
    print(f"\nghostframe bench latency — {report['model']} on {report['device']} ({hardware}), "
          f"{env['torch_threads']} threads" + (f", load average {load[0]:.1f}" if load else ""))
    print(f"served by {status.get('engine')} ({status.get('engineReason')}) in {report['precision_choice']}; "
          f"{len(typed)} keystrokes, ~{prompt_tokens} prompt tokens, max {args.max_new_tokens} new tokens, "
          f"typing starts {args.pause_after_open:g} s after the file is opened")
    if status.get("modelChoice"):
        print(f"model choice: {status['modelChoice']}")
    print(f"{'path':<52}{'p50 ms':>9}{'p95 ms':>9}{'TTFT p50':>10}{'tokens':>8}")
    table = [("ghostframe server, over LSP (end to end)", ours), ("plain model.generate", plain)]
    table += [(row_label(name), rows[name]) for name in rows
              if name.startswith("engine_") and name != "engine_fast"]
    table.append((row_label("engine_fast"), rows["engine_fast"]))
    for name, row in (llama or {}).get("rows", {}).items():
        table.append((name, row))
    for name, row in table:
        print(f"{name:<52}{row['p50_ms']:>9}{row['p95_ms']:>9}{row.get('first_token_p50_ms', '-'):>10}"
              f"{row.get('new_tokens_mean', '-'):>8}")
    if llama and "skipped" in llama:
        print(f"llama.cpp row skipped: {llama['skipped']}")
    print(f"\nfirst request in a just-opened file (served precision): server {report['ghostframe_server']['first_request_ms']} ms "
          f"after a {args.pause_after_open:g} s pause; in-process "
          + ", ".join(f"{name} {row['ms']} ms ({row['prefilled_tokens']} tokens prefilled)" for name, row in first.items()))
    print(f"\n{'prefill + decode, ~' + str(next(iter(micro_rows.values()))['prompt_tokens']) + '-token prompt':<52}"
          f"{'prefill ms':>11}{'decode ms/token':>17}")
    micro_table = list(micro_rows.items()) + ([(f"llama.cpp engine ({llama['gguf']})", llama["micro"])]
                                              if llama and llama.get("micro") else [])
    for name, row in micro_table:
        print(f"{name:<52}{row['prefill_ms']:>11}{row['decode_ms_per_token']:>17}")
    ratio = lambda a, b: round(rows[a]["p50_ms"] / max(rows[b]["p50_ms"], 0.1), 1)  # noqa: E731
    print(f"p50 speed-up vs plain generate: server {report['speedup_p50']}x, engine plain "
          f"{ratio('plain_generate', 'engine_plain')}x, reused cache {ratio('plain_generate', 'engine_cache')}x, "
          f"all {ratio('plain_generate', 'engine_fast')}x; typed-through answered "
          f"{rows['engine_fast']['typed_through_hits']} of {len(typed)} keystrokes")
    cache, lookup = rows[served_row], rows["engine_lookup"]
    print(f"in the served precision: reused KV cache p50 {cache['p50_ms']} / p95 {cache['p95_ms']} ms; prompt lookup "
          f"from a new cache p50 {lookup['p50_ms']} / p95 {lookup['p95_ms']} ms "
          f"({lookup['p50_ms'] / max(cache['p50_ms'], 0.1):.2f}x)")
    if llama and llama.get("micro"):
        ours_row = micro_rows.get(status.get("precision"), next(iter(micro_rows.values())))
        print(f"decode per token, torch ({status.get('precision')}) vs the llama.cpp engine: "
              f"{ours_row['decode_ms_per_token']} vs {llama['micro']['decode_ms_per_token']} ms")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0
