"""`ghostframe bench latency`: a typing session through the real server vs plain `model.generate`.

An editor sends a completion request after each keystroke. This replays that over a
real pandas file (one character at a time), then runs plain greedy `generate` on the
very same prompts, in the same run, and prints both latency distributions.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from ghostframe.server.machine import environment


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
    from ghostframe.server.terminal_cli import utf16_column

    last = text.rsplit("\n", 1)[-1]
    return text.count("\n"), utf16_column(last, len(last))


async def replay_through_server(args: argparse.Namespace, start: str, typed: str) -> tuple[list[float], list[str], dict]:
    from ghostframe.server.lsp_client import EditorClient
    from ghostframe.server.terminal_cli import server_args

    client = EditorClient(verbose=False)
    await client.start(server_args(args), {"maxNewTokens": args.max_new_tokens})
    try:
        status = await client.wait_ready()
        if not status.get("ready"):
            raise SystemExit(f"ghostframe: the model did not load: {status.get('error')}")
        uri = "file:///bench/typing_session.py"
        client.open(uri, start)
        document, seconds, documents = start, [], []
        for char in typed:
            line, character = cursor_after(document)
            client.type_text(uri, line, character, char)
            document += char
            _, elapsed = await client.inline(uri, *cursor_after(document))
            seconds.append(elapsed)
            documents.append(document)
    finally:
        await client.close()
    return seconds, documents, status


def in_process(args: argparse.Namespace, documents: list[str]) -> dict:
    """Per-keystroke latency of plain `generate` (max_new_tokens, no stopping rule) and of the
    engine's plain and fast paths (same stopping rules as the server), on the same prompts.
    The reference runs the model as loaded by transformers; on CPU the fast paths are timed
    both on those weights and on the server's int8 weights."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    from ghostframe.server.cli import quiet_transformers
    from ghostframe.server.engine import CompletionEngine, SpeedOptions
    from ghostframe.server.model_loading import load_model
    from ghostframe.server.prompt import CompletionContext, build_prompt
    from ghostframe.server.settings import Settings

    quiet_transformers()  # the report, not weight-loading bars
    loaded = load_model(args.model or None, args.adapter or None, args.device, cpu_int8=False)
    int8 = loaded.device == "cpu" and not args.no_cpu_int8
    served = load_model(args.model or None, args.adapter or None, args.device) if int8 else loaded
    sync = torch.cuda.synchronize if loaded.device == "cuda" else (lambda: None)
    budget = Settings().max_prompt_tokens
    paths = {"engine_plain": (loaded, SpeedOptions(plain=True)),
             "engine_cache_lookup": (loaded, SpeedOptions(typed_through=False))}
    if served is not loaded:
        paths["engine_cache_lookup_int8"] = (served, SpeedOptions(typed_through=False))
    paths["engine_fast"] = (served, SpeedOptions())
    rows: dict[str, dict[str, list]] = {name: {"total": [], "first": [], "tokens": [], "typed": []}
                                        for name in ("plain_generate", *paths)}

    class FirstToken(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            if self.at is None:
                sync()
                self.at = time.perf_counter()
            return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)

    with torch.inference_mode():  # warm-up: first calls pay for allocation and kernel selection
        warm = torch.tensor([build_prompt(CompletionContext(documents[0], ""), loaded.tokenizer, budget)],
                            device=loaded.device)
        loaded.model.generate(input_ids=warm, attention_mask=torch.ones_like(warm), max_new_tokens=4,
                              do_sample=False, pad_token_id=loaded.tokenizer.pad_token_id)
    prompt_lengths = []
    for document in documents:
        ids = build_prompt(CompletionContext(document, ""), loaded.tokenizer, budget)
        prompt_lengths.append(len(ids))
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
    for name, (model, options) in paths.items():
        engine = CompletionEngine(model, options)
        for document in documents:
            done = engine.complete(CompletionContext(document, ""), args.max_new_tokens, budget, True, document="bench")
            rows[name]["total"].append(done.seconds)
            rows[name]["first"].append(done.first_token_seconds or done.seconds)
            rows[name]["tokens"].append(done.new_tokens)
            rows[name]["typed"].append(done.typed_through)
    report = {name: {**summary(row["total"]), "first_token_p50_ms": summary(row["first"])["p50_ms"],
                     "new_tokens_mean": round(statistics.mean(row["tokens"]), 1),
                     "typed_through_hits": sum(row["typed"])} for name, row in rows.items()}
    report["mean_prompt_tokens"] = round(statistics.mean(prompt_lengths))
    return report


async def latency(args: argparse.Namespace) -> int:
    from ghostframe.server.lsp_client import read_source
    from ghostframe.server.terminal_cli import example_path

    path = Path(args.file) if args.file else example_path()
    start, typed = typing_session(read_source(path), args.keystrokes)
    print(f"typing {len(typed)} characters at the end of {path.name}, a completion request after each ...",
          file=sys.stderr)
    server_seconds, documents, status = await replay_through_server(args, start, typed)
    print("same prompts in-process: plain model.generate, the engine's plain and fast paths ...", file=sys.stderr)
    rows = in_process(args, documents)
    prompt_tokens = rows.pop("mean_prompt_tokens")
    ours, plain = summary(server_seconds), rows["plain_generate"]
    report = {
        "device": status.get("device"), "precision": status.get("precision"), "model": status.get("model"),
        "adapter": status.get("adapter"),
        "environment": environment(),
        "keystrokes": len(typed), "max_new_tokens": args.max_new_tokens, "mean_prompt_tokens": prompt_tokens,
        "ghostframe_server": ours, **rows,
        "speedup_p50": round(plain["p50_ms"] / max(ours["p50_ms"], 0.1), 1),
    }
    env = report["environment"]
    hardware = env["cuda"] if report["device"] == "cuda" else f"{env['processor']}, {env['cpu_count']} cores"
    print(f"\nghostframe bench latency — {report['model']} on {report['device']} ({hardware}), "
          f"served in {report['precision']}, {len(typed)} keystrokes, "
          f"~{prompt_tokens} prompt tokens, max {args.max_new_tokens} new tokens")
    print(f"{'path':<44}{'p50 ms':>9}{'p95 ms':>9}{'TTFT p50':>10}{'tokens':>8}")
    table = [("ghostframe server, over LSP (end to end)", ours),
             ("plain model.generate", plain),
             ("engine, plain path (generate + stop rules)", rows["engine_plain"]),
             ("engine, KV prefix cache + prompt lookup", rows["engine_cache_lookup"]),
             ("engine, all speed-ups (+ typed-through)", rows["engine_fast"])]
    if "engine_cache_lookup_int8" in rows:
        table.insert(4, ("engine, cache + lookup + int8 weights", rows["engine_cache_lookup_int8"]))
    for name, row in table:
        print(f"{name:<44}{row['p50_ms']:>9}{row['p95_ms']:>9}{row.get('first_token_p50_ms', '-'):>10}"
              f"{row.get('new_tokens_mean', '-'):>8}")
    ratio = lambda a, b: round(rows[a]["p50_ms"] / max(rows[b]["p50_ms"], 0.1), 1)  # noqa: E731
    print(f"p50 speed-up vs plain generate: server {report['speedup_p50']}x, engine plain "
          f"{ratio('plain_generate', 'engine_plain')}x, cache+lookup {ratio('plain_generate', 'engine_cache_lookup')}x, "
          + (f"+int8 {ratio('plain_generate', 'engine_cache_lookup_int8')}x, " if "engine_cache_lookup_int8" in rows else "")
          + f"all {ratio('plain_generate', 'engine_fast')}x; typed-through answered "
          f"{rows['engine_fast']['typed_through_hits']} of {len(typed)} keystrokes")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0
