"""`ghostframe bench retrieval`: what repository and data context cost per request, and the index's build.

Indexes the given folders with the server's own rules (as `WorkspaceContext` does in the
background), then times, at seeded random cursor positions in the indexed files:
`retrieve` with no region cache (every request a new region: the worst case) and the
data-file notes, and prints p50/p95 with the index's size and build time.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import time
from collections import Counter
from pathlib import Path

from ghostframe.server.inference.machine import environment


def _ms(seconds: list[float]) -> dict:
    import numpy as np

    p50, p95 = np.percentile(seconds, [50, 95])
    return {"p50_ms": round(float(p50) * 1000, 2), "p95_ms": round(float(p95) * 1000, 2),
            "max_ms": round(max(seconds) * 1000, 2), "n": len(seconds)}


def cursor_positions(texts: dict[Path, str], requests: int, seed: int) -> list[tuple[Path, str, str]]:
    """(file, before, after) at `requests` seeded random line starts of the files."""
    rng = random.Random(seed)
    paths = sorted(texts)
    out = []
    while len(out) < requests and paths:
        path = rng.choice(paths)
        lines = texts[path].split("\n")
        row = rng.randrange(len(lines))
        indentation = lines[row][: len(lines[row]) - len(lines[row].lstrip())]
        out.append((path, "\n".join(lines[:row]) + "\n" + indentation, "\n" + "\n".join(lines[row + 1:])))
    return out


def typing_session(index, texts: dict, seed: int, positions: int = 20, keystrokes: int = 40) -> list[float]:
    """Seconds `WorkspaceContext.context_for` adds per keystroke while a user types lines of code:
    retrieval runs when the cursor enters a region, and the region's snippets serve the rest."""
    from ghostframe.server.inference.prompt import CompletionContext
    from ghostframe.server.lsp.workspace_context import WorkspaceContext

    context = WorkspaceContext()
    context.index = index
    seconds = []
    for number, (path, before, after) in enumerate(cursor_positions(texts, positions, seed + 1)):
        typed = after.lstrip("\n")[:keystrokes]
        for count in range(1, len(typed) + 1):
            ctx = CompletionContext(before + typed[:count], after[count:])
            started = time.perf_counter()
            context.context_for(f"doc-{number}", path, ctx)
            seconds.append(time.perf_counter() - started)
    return seconds


def run(folders: list[Path], requests: int, seed: int) -> dict:
    from ghostframe.server.inference.context.data_headers import HeaderReader
    from ghostframe.server.inference.context.retrieval import RetrievalOptions, retrieve
    from ghostframe.server.inference.context.workspace_index import WorkspaceIndex
    from ghostframe.server.lsp.workspace_context import discover

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    stats: Counter = Counter()
    texts = dict(discover(folders, stats))
    read_s = time.perf_counter() - started
    index = WorkspaceIndex(tuple(folders))
    started = time.perf_counter()
    for path, text in texts.items():
        index.update(path, text)
    update_s = time.perf_counter() - started
    started = time.perf_counter()
    snapshot = index.refresh()
    refresh_s = time.perf_counter() - started
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    options, headers = RetrievalOptions(), HeaderReader()
    retrieval, retrieval_cpu, notes, snippet_counts = [], [], [], []
    for path, before, after in cursor_positions(texts, requests, seed):
        relative = index.relative_path(path)
        t0, c0 = time.perf_counter(), time.thread_time()
        snippets = retrieve(snapshot, relative, before, after, options)
        t1, c1 = time.perf_counter(), time.thread_time()
        headers.notes(before, path.parent, index.roots)
        t2 = time.perf_counter()
        retrieval.append(t1 - t0)
        retrieval_cpu.append(c1 - c0)
        notes.append(t2 - t1)
        snippet_counts.append(len(snippets))
    typing = typing_session(index, texts, seed)
    return {
        "folders": [str(f) for f in folders],
        "files": len(snapshot.files), "chunks": len(snapshot.chunks), "chars": index.total_chars,
        "discovery": dict(stats),
        "build_s": {"read": round(read_s, 2), "index": round(update_s, 2), "snapshot": round(refresh_s, 2)},
        "max_rss_growth_mb": round((rss_after - rss_before) / 1024, 1),
        "retrieve": _ms(retrieval), "retrieve_cpu": _ms(retrieval_cpu), "data_notes": _ms(notes),
        "typing": _ms(typing),
        "snippets_per_request": round(sum(snippet_counts) / max(1, len(snippet_counts)), 1),
        "environment": environment(None),
    }


def report(result: dict) -> str:
    r, c, d, b = result["retrieve"], result["retrieve_cpu"], result["data_notes"], result["build_s"]
    t = result["typing"]
    return "\n".join([
        f"workspace: {result['files']} files, {result['chunks']} chunks, {result['chars'] / 1e6:.1f} M chars "
        f"({', '.join(result['folders'])})",
        f"index build: read {b['read']} s, parse and chunk {b['index']} s, searchable snapshot {b['snapshot']} s; "
        f"peak memory grew {result['max_rss_growth_mb']} MB",
        "| per request (no region cache) | p50 ms | p95 ms | max ms | n |",
        "| --- | ---: | ---: | ---: | ---: |",
        f"| repository retrieval | {r['p50_ms']} | {r['p95_ms']} | {r['max_ms']} | {r['n']} |",
        f"| repository retrieval, CPU time of its thread | {c['p50_ms']} | {c['p95_ms']} | {c['max_ms']} | {c['n']} |",
        f"| data-file notes | {d['p50_ms']} | {d['p95_ms']} | {d['max_ms']} | {d['n']} |",
        f"| per keystroke while typing (retrieval once per region) | {t['p50_ms']} | {t['p95_ms']} | {t['max_ms']} "
        f"| {t['n']} |",
        f"{result['snippets_per_request']} snippets per request on average; "
        f"CPU: {result['environment']['processor']} ({', '.join(result['environment']['cpu_flags']) or 'no listed flags'})",
    ])


def retrieval(args: argparse.Namespace) -> int:
    folders = [Path(f).expanduser().resolve() for f in args.folders]
    missing = [str(f) for f in folders if not f.is_dir()]
    if missing:
        print(f"ghostframe: not a folder: {', '.join(missing)}", file=sys.stderr)
        return 1
    result = run(folders, args.requests, args.seed)
    if not result["files"]:
        print("ghostframe: no Python file found to index", file=sys.stderr)
        return 1
    print(report(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0
