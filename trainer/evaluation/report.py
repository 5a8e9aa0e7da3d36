"""Write an evaluation's results for people: results.json, report.md and chart.png."""

from __future__ import annotations

import json
from pathlib import Path

EXAMPLES = 8


def _row(cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _code(text: str) -> str:
    """Inline Markdown code that survives backticks in the text."""
    fence = "``" if "`" in text else "`"
    pad = " " if "`" in text else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _fmt(value: float) -> str:
    return f"{value:.1f}"


def _system_name(system: dict) -> str:
    what = system.get("model_name") or system["model"] or "default model"
    return f"{system['label']} ({what}{' + ' + Path(system['adapter']).name if system['adapter'] else ''})"


def overall_table(results: dict) -> list[str]:
    systems = results["systems"]
    lines = [
        _row(["system", "cases", "exact match %", "edit sim %", "empty %", "p50 ms", "p95 ms"]),
        _row(["---", "---:", "---:", "---:", "---:", "---:", "---:"]),
    ]
    for s in systems:
        o = s["overall"]
        lines.append(_row([_system_name(s), o["cases"], _fmt(o["exact_match"]), _fmt(o["edit_sim"]),
                           _fmt(o["empty"]), f"{o['p50_ms']:.0f}", f"{o['p95_ms']:.0f}"]))
    if len(systems) > 1:
        base = systems[0]["overall"]
        lines.append("")
        for s in systems[1:]:
            o = s["overall"]
            lines.append(f"- **{s['label']}** vs {systems[0]['label']}: exact match "
                         f"{o['exact_match'] - base['exact_match']:+.1f} points, edit similarity "
                         f"{o['edit_sim'] - base['edit_sim']:+.1f} points.")
    return lines


def per_file_table(results: dict) -> list[str]:
    systems = results["systems"]
    header = ["file", "cases"] + [f"{s['label']} EM / ES" for s in systems]
    lines = [_row(header), _row(["---", "---:"] + ["---:"] * len(systems))]
    files = sorted({name for s in systems for name in s["per_file"]})
    for name in files:
        counts = systems[0]["per_file"].get(name, {}).get("cases", 0)
        cells = [f"{_fmt(s['per_file'][name]['exact_match'])} / {_fmt(s['per_file'][name]['edit_sim'])}"
                 if name in s["per_file"] else "-" for s in systems]
        lines.append(_row([f"`{name}`", counts, *cells]))
    return lines


def examples(results: dict, limit: int = EXAMPLES) -> list[str]:
    """Cases where the systems disagree, first those where one of them is exactly right."""
    systems = results["systems"]
    if len(systems) < 2:
        return []
    picked = []
    for index, case in enumerate(results["cases"]):
        answers = [s["predictions"][index] for s in systems]
        if len({a["prediction"] for a in answers}) > 1:
            picked.append((not any(a["exact"] for a in answers), index))
    lines = []
    for _, index in sorted(picked)[:limit]:
        case = results["cases"][index]
        lines.append(f"- `{case['id']}` reference: {_code(case['reference'])}")
        for s in systems:
            p = s["predictions"][index]
            mark = "exact" if p["exact"] else f"{p['edit_sim']:.0f}"
            lines.append(f"  - {s['label']}: {_code(p['prediction']) if p['prediction'] else '(nothing)'} ({mark})")
    return lines


def _context_and_reuse(results: dict) -> list[str]:
    """What the prompts held besides the file, and which answers came from earlier runs."""
    lines = []
    context = results.get("context", {}).get("mode", "none")
    if context != "none":
        got = results["context"]
        lines += [f"Context: `{context}`, as the server adds it ({got.get('cases_with_snippets', 0)} cases with "
                  f"repository snippets, {got.get('cases_with_data_notes', 0)} with data-file column notes).", ""]
    for s in results["systems"]:
        if s.get("cached"):
            lines += [f"{s['label']}: {s['cached']} of {s['overall']['cases']} answers reused from earlier runs of "
                      "the same model on the same prompts (their latency is the earlier run's).", ""]
    return lines


def markdown(results: dict) -> str:
    gen, sampling, env = results["generation"], results["sampling"], results["environment"]
    hardware = env["cuda"] or f"CPU ({env['processor']}, {env['cpu_count']} cores, {env['torch_threads']} torch threads)"
    split = results["split"]
    lines = [
        "# ghostframe evaluation: next-line completion on held-out files", "",
        f"Sources: {', '.join(f'`{s}`' for s in results['sources'])}. "
        f"Cases come from the {len(split['valid_files'])} file(s) that the training split puts in *valid* "
        f"(valid fraction {split['valid_fraction']}), after the trainer's data-science filter and dedup; "
        f"up to {sampling['per_file']} lines per file, at most {sampling['max_cases']} cases, seed {sampling['seed']}. "
        "Prompt: the file before the line plus its indentation (and the rest of the file below, for models "
        "with fill-in-the-middle); reference: the rest of the line.", "",
        f"Predictions: the server's completion path ({gen['via']}), one line (multiline off), "
        f"at most {gen['max_new_tokens']} new tokens, prompt window {gen['max_prompt_tokens']} tokens, greedy. "
        f"Hardware: {hardware}.", "",
        *_context_and_reuse(results),
        "Exact match: same whitespace-separated tokens; edit sim: normalised Levenshtein similarity (0-100); "
        "empty: share of cases with no suggestion; latency per case.", "",
        "## Overall", "", *overall_table(results), "",
        "## Per file", "", *per_file_table(results), "",
    ]
    shown = examples(results)
    if shown:
        lines += ["## Examples where the systems differ", "", *shown, ""]
    lines += ["![chart](chart.png)", ""]
    return "\n".join(lines)


def chart(results: dict, path: Path) -> None:
    """Grouped bars: exact match, edit sim and empty share per system, plus latency; values printed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    systems = results["systems"]
    labels = [s["label"] for s in systems]
    fig, (quality, latency) = plt.subplots(1, 2, figsize=(12, 4.8), gridspec_kw={"width_ratios": [3, 2]})
    metrics = [("exact_match", "exact match %"), ("edit_sim", "edit similarity %"), ("empty", "empty %")]
    width = 0.8 / max(1, len(systems))
    for i, s in enumerate(systems):
        xs = [j + (i - (len(systems) - 1) / 2) * width for j in range(len(metrics))]
        bars = quality.bar(xs, [s["overall"][key] for key, _ in metrics], width, label=labels[i])
        quality.bar_label(bars, fmt="%.1f", padding=2, fontsize=9)
        xs = [j + (i - (len(systems) - 1) / 2) * width for j in range(2)]
        bars = latency.bar(xs, [s["overall"]["p50_ms"], s["overall"]["p95_ms"]], width, label=labels[i])
        latency.bar_label(bars, fmt="%.0f", padding=2, fontsize=9)
    quality.set_xticks(range(len(metrics)), [name for _, name in metrics])
    quality.set_ylim(0, 110)
    quality.set_title(f"Next-line completion, {systems[0]['overall']['cases']} held-out cases")
    quality.legend(loc="upper left", fontsize=8)
    latency.set_xticks(range(2), ["p50", "p95"])
    latency.set_ylabel("ms per case")
    latency.set_title(f"Latency ({results['generation']['via']})")
    latency.margins(y=0.15)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_reports(results: dict, output: Path) -> dict[str, Path]:
    """Write the three files into `output` (created if needed); return their paths."""
    output.mkdir(parents=True, exist_ok=True)
    paths = {"json": output / "results.json", "markdown": output / "report.md", "chart": output / "chart.png"}
    paths["json"].write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    paths["markdown"].write_text(markdown(results))
    chart(results, paths["chart"])
    return paths
