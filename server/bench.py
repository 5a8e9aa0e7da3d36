"""`ghostframe bench latency`: a typing session through the real server vs plain `model.generate`.

An editor sends a completion request after each keystroke. This replays that over a
real pandas file (one character at a time), then runs plain greedy `generate` on the
very same prompts, in the same run, and prints both latency distributions.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def summary(seconds: list[float]) -> dict:
    return {"p50_ms": round(percentile(seconds, 50) * 1000, 1), "p95_ms": round(percentile(seconds, 95) * 1000, 1),
            "mean_ms": round(statistics.mean(seconds) * 1000, 1), "n": len(seconds)}


def typing_session(text: str, keystrokes: int) -> tuple[str, str]:
    """(text already there, characters to type): the last `keystrokes` characters of the last code line(s)."""
    body = text.rstrip()
    return body[: len(body) - keystrokes], body[len(body) - keystrokes:]


def cursor_after(text: str) -> tuple[int, int]:
    lines = text.split("\n")
    return len(lines) - 1, len(lines[-1].encode("utf-16-le")) // 2


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


def plain_generate(args: argparse.Namespace, documents: list[str]) -> tuple[list[float], list[int], int]:
    """Plain greedy `generate` of max_new_tokens on the same prompts, no stopping rules."""
    import torch

    from ghostframe.server.model_loading import load_model
    from ghostframe.server.prompt import CompletionContext, build_prompt
    from ghostframe.server.settings import Settings

    loaded = load_model(args.model or None, args.adapter or None, args.device)
    seconds, new_tokens = [], []
    prompt_lengths = []
    for document in documents:
        ids = build_prompt(CompletionContext(document, ""), loaded.tokenizer, Settings().max_prompt_tokens)
        prompt_lengths.append(len(ids))
        input_ids = torch.tensor([ids], device=loaded.device)
        if loaded.device == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        with torch.inference_mode():
            out = loaded.model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                                        max_new_tokens=args.max_new_tokens, do_sample=False,
                                        pad_token_id=loaded.tokenizer.pad_token_id)
        if loaded.device == "cuda":
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - started)
        new_tokens.append(out.shape[1] - len(ids))
    return seconds, new_tokens, round(statistics.mean(prompt_lengths))


async def latency(args: argparse.Namespace) -> int:
    from ghostframe.server.lsp_client import read_source
    from ghostframe.server.terminal_cli import example_path

    path = Path(args.file) if args.file else example_path()
    start, typed = typing_session(read_source(path), args.keystrokes)
    print(f"typing {len(typed)} characters at the end of {path.name}, a completion request after each ...",
          file=sys.stderr)
    server_seconds, documents, status = await replay_through_server(args, start, typed)
    print("same prompts through plain model.generate ...", file=sys.stderr)
    plain_seconds, plain_tokens, prompt_tokens = plain_generate(args, documents)
    ours, plain = summary(server_seconds), summary(plain_seconds)
    report = {
        "device": status.get("device"), "model": status.get("model"), "adapter": status.get("adapter"),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "keystrokes": len(typed), "max_new_tokens": args.max_new_tokens, "mean_prompt_tokens": prompt_tokens,
        "ghostframe_server": ours, "plain_generate": plain,
        "plain_generate_new_tokens_mean": round(statistics.mean(plain_tokens), 1),
        "speedup_p50": round(plain["p50_ms"] / max(ours["p50_ms"], 1e-6), 2),
    }
    if report["device"] == "cuda":
        import torch

        report["gpu"] = torch.cuda.get_device_name(0)
    print(f"\nghostframe bench latency — {report['model']} on {report['device']}"
          f"{' (' + report['gpu'] + ')' if 'gpu' in report else ''}, {len(typed)} keystrokes, "
          f"~{prompt_tokens} prompt tokens, max {args.max_new_tokens} new tokens")
    print(f"{'path':<28}{'p50 ms':>10}{'p95 ms':>10}{'mean ms':>10}")
    for name, row in (("ghostframe server (LSP)", ours), ("plain model.generate", plain)):
        print(f"{name:<28}{row['p50_ms']:>10}{row['p95_ms']:>10}{row['mean_ms']:>10}")
    print(f"speed-up at p50: {report['speedup_p50']}x (plain generate made "
          f"{report['plain_generate_new_tokens_mean']} tokens on average)")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0
