"""`ghostframe bench decode`: prefill and decode speed of one model on each engine, same prompt and threads.

The rows: the torch engine (in the precision `--precision auto` picks), the llama.cpp engine in
process as the server runs it (tokens streamed back through its stop rule), and llama-server on
the same GGUF file and thread count — the build ghostframe ships (xllamacpp) and, with `--peer`,
any other llama-server binary (for instance one built for this very CPU). Each row is the best of
`--repeats`: a cold prefill of the first `--prompt-tokens` tokens of a real file, then `--new-tokens`
greedy tokens (end of text ignored). Each in-process engine is timed in a fresh process of its own:
after torch has computed, its idle worker threads slow llama.cpp's next tokens in the same process
(by ~1.3× on a 2-core CPU), which is not what a server running one engine meets.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path


def _prompt(model: str, text: str, tokens: int) -> list[int]:
    from ghostframe.server.inference.gguf_files import gguf_tokenizer_and_facts
    from ghostframe.server.tools.llama_peer import gguf_for

    tokenizer, _ = gguf_tokenizer_and_facts(gguf_for(model)[0])
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if len(ids) < tokens:
        raise SystemExit(f"ghostframe: the file has {len(ids)} tokens, fewer than --prompt-tokens {tokens}.")
    return ids[:tokens]


def torch_row(model: str, ids: list[int], new: int, repeats: int) -> dict:
    import torch

    from ghostframe.server.inference.decoding import prefill
    from ghostframe.server.inference.model_loading import load_model
    from transformers import DynamicCache

    loaded = load_model(model, device="cpu", engine="torch")
    best_prefill, best_decode = float("inf"), float("inf")
    with torch.inference_mode():
        for _ in range(repeats):
            cache = DynamicCache()
            started = time.perf_counter()
            token = int(prefill(loaded.model, ids, cache).argmax())
            best_prefill = min(best_prefill, time.perf_counter() - started)
            started = time.perf_counter()
            for _ in range(new):
                token = int(prefill(loaded.model, [token], cache).argmax())
            best_decode = min(best_decode, (time.perf_counter() - started) / new)
    return {"engine": f"torch ({loaded.precision})", "prefill_ms_per_token": round(best_prefill * 1000 / len(ids), 2),
            "decode_ms_per_token": round(best_decode * 1000, 2), "threads": torch.get_num_threads()}


def llama_engine_row(model: str, ids: list[int], new: int, repeats: int) -> dict:
    """The server's own path: a request streamed token by token into the shared stop rule."""
    from ghostframe.server.inference.llama_runtime import physical_cores
    from ghostframe.server.inference.model_loading import load_model

    loaded = load_model(model, device="cpu", engine="llama", prompt_tokens=len(ids))
    runtime = loaded.model
    best_prefill, best_decode = float("inf"), float("inf")
    try:
        for _ in range(repeats):
            seen: list[float] = []

            def on_tokens(tokens, text):
                seen.append(time.perf_counter())
                return len(tokens) >= new

            started = time.perf_counter()
            runtime.stream(ids, new, 0, on_tokens, cache_prompt=False)
            best_prefill = min(best_prefill, seen[0] - started)
            best_decode = min(best_decode, (seen[-1] - seen[0]) / max(1, len(seen) - 1))
    finally:
        runtime.close()
    return {"engine": "llama.cpp engine (xllamacpp, in process)",
            "prefill_ms_per_token": round(best_prefill * 1000 / len(ids), 2),
            "decode_ms_per_token": round(best_decode * 1000, 2), "threads": physical_cores()}


def llama_server_row(binary: str, model: str, ids: list[int], new: int, repeats: int) -> dict:
    from ghostframe.server.tools.llama_peer import LlamaServerPeer

    peer = LlamaServerPeer.start(binary, model)
    try:
        timings = [peer.post("/completion", {"prompt": ids, "n_predict": new, "temperature": 0, "ignore_eos": True,
                                             "cache_prompt": False})["timings"] for _ in range(repeats)]
    finally:
        peer.stop()
    return {"engine": f"llama-server ({peer.describe()})",
            "prefill_ms_per_token": round(min(t["prompt_per_token_ms"] for t in timings), 2),
            "decode_ms_per_token": round(min(t["predicted_per_token_ms"] for t in timings), 2), "threads": peer.threads}


def _in_own_process(row, *arguments) -> dict:
    """`row(*arguments)` in a fresh process, so that no other engine's threads share its cores."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as process:
        return process.submit(row, *arguments).result()


def decode(args: argparse.Namespace) -> int:
    from ghostframe.server.inference.machine import cpu_description
    from ghostframe.server.tools.lsp_client import read_source

    text = read_source(Path(args.file))
    ids = _prompt(args.model, text, args.prompt_tokens)
    rows = []
    for engine, row in (("torch", torch_row), ("llama", llama_engine_row)):
        if engine in args.engines:
            rows.append(_in_own_process(row, args.model, ids, args.new_tokens, args.repeats))
    for binary in ["xllamacpp", *args.peer]:
        rows.append(llama_server_row(binary, args.model, ids, args.new_tokens, args.repeats))
    print(f"\nghostframe bench decode — {args.model}, {len(ids)}-token prompt from {Path(args.file).name}, "
          f"{args.new_tokens} new tokens, best of {args.repeats}; {cpu_description()}")
    print(f"{'engine':<64}{'threads':>8}{'prefill ms/token':>18}{'decode ms/token':>17}")
    for row in rows:
        print(f"{row['engine'][:63]:<64}{row['threads']:>8}{row['prefill_ms_per_token']:>18}{row['decode_ms_per_token']:>17}")
    if args.json:
        Path(args.json).write_text(json.dumps({"model": args.model, "cpu": cpu_description(), "rows": rows}, indent=2))
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="a real Python file to take the prompt from")
    parser.add_argument("--model", default="smollm2-135m", help="a pinned model or a .gguf file")
    parser.add_argument("--engines", default="torch,llama", type=lambda v: v.split(","),
                        help="in-process engines to time: torch, llama (default both)")
    parser.add_argument("--peer", action="append", default=[],
                        help="another llama-server binary to time beside xllamacpp's (repeatable)")
    parser.add_argument("--prompt-tokens", type=int, default=512)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="also write the rows as JSON to this path")
