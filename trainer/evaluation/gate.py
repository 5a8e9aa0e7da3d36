"""The evaluation gate: does a new adapter beat its base model on the run's held-out lines?

Both systems answer the same cases, so the comparison is paired: a bootstrap over cases
(resampling whole cases, keeping each case's base and adapter scores together) gives a
confidence interval for the gain in exact match and in edit similarity. The verdict:

- "use it"    both gains are above zero with 95 % confidence;
- "worse"     either gain is below zero with 95 % confidence;
- "no better" anything else (the difference is within the noise of this many cases);
- "too few"   fewer than MIN_CASES held-out lines: no verdict can be trusted.

Only "use it" lets `ghostframe-server --adapter` load the adapter without --force-adapter.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

USE_IT, NO_BETTER, WORSE, TOO_FEW = "use it", "no better", "worse", "too few"
MIN_CASES = 30
BOOTSTRAP_SAMPLES = 2000
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Gain:
    mean: float   # adapter minus base, in points (percent)
    low: float    # the interval's ends
    high: float


@dataclass(frozen=True)
class GateVerdict:
    verdict: str
    cases: int
    exact_match: Gain
    edit_similarity: Gain
    base: dict
    adapter: dict
    reason: str

    def to_dict(self) -> dict:
        return asdict(self)


def paired_bootstrap(base: np.ndarray, adapter: np.ndarray, samples: int = BOOTSTRAP_SAMPLES,
                     seed: int = 0) -> Gain:
    """Mean gain of `adapter` over `base` (paired per case) and its bootstrap interval."""
    diff = np.asarray(adapter, dtype=float) - np.asarray(base, dtype=float)
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), size=(samples, len(diff)))].mean(axis=1)
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return Gain(round(float(diff.mean()), 2), round(float(low), 2), round(float(high), 2))


def judge(base_predictions: list[dict], adapter_predictions: list[dict], seed: int = 0) -> GateVerdict:
    """The verdict for two systems' per-case scores (`exact` 0/1 and `edit_sim` 0-100, same case order)."""
    ids = [p["id"] for p in base_predictions]
    if ids != [p["id"] for p in adapter_predictions]:
        raise ValueError("the gate compares systems on the same cases, in the same order")
    exact = [np.array([100.0 * p["exact"] for p in ps]) for ps in (base_predictions, adapter_predictions)]
    edit = [np.array([float(p["edit_sim"]) for p in ps]) for ps in (base_predictions, adapter_predictions)]
    summary = [{"exact_match": round(float(e.mean()), 2) if len(e) else 0.0,
                "edit_similarity": round(float(s.mean()), 2) if len(s) else 0.0} for e, s in zip(exact, edit)]
    if len(ids) < MIN_CASES:
        zero = Gain(0.0, 0.0, 0.0)
        return GateVerdict(TOO_FEW, len(ids), zero, zero, summary[0], summary[1],
                           f"only {len(ids)} held-out lines (at least {MIN_CASES} are needed for a verdict); "
                           "add more of your code, or raise --valid-fraction")
    em, es = paired_bootstrap(*exact, seed=seed), paired_bootstrap(*edit, seed=seed + 1)
    if em.high < 0 or es.high < 0:
        verdict, reason = WORSE, "the adapter scores lower than the base model beyond the noise margin"
    elif em.low > 0 and es.low > 0:
        verdict, reason = USE_IT, "the adapter beats the base model on exact match and edit similarity"
    else:
        verdict, reason = NO_BETTER, "the difference is within the noise margin of this many held-out lines"
    return GateVerdict(verdict, len(ids), em, es, summary[0], summary[1], reason)


def describe(gate: GateVerdict) -> str:
    """One paragraph for the terminal and the report."""
    return (f"gate: {gate.verdict.upper()} — {gate.reason}. {gate.cases} held-out lines; "
            f"exact match {gate.base['exact_match']:.1f} → {gate.adapter['exact_match']:.1f} "
            f"(gain {gate.exact_match.mean:+.1f}, 95 % interval {gate.exact_match.low:+.1f} … {gate.exact_match.high:+.1f}); "
            f"edit similarity {gate.base['edit_similarity']:.1f} → {gate.adapter['edit_similarity']:.1f} "
            f"(gain {gate.edit_similarity.mean:+.1f}, {gate.edit_similarity.low:+.1f} … {gate.edit_similarity.high:+.1f}).")


def run_gate(run_dir: Path, model: str, device: str, max_cases: int, max_prompt_tokens: int,
             report=lambda _: None, progress=None, context: str = "none", cache=None,
             engine: str = "auto") -> GateVerdict:
    """Evaluate base vs. the adapter in `run_dir` on the run's own held-out split, write the
    report into `run_dir/gate/`, record the verdict in its ghostframe.json, and return it.

    Same cases for both, the server's prompt path and settings (see evaluation.run), with
    `context` added to the prompts; the base model reuses answers stored in `cache`
    (an evaluation.answer_cache.AnswerCache, or None).
    """
    from ghostframe.server.inference.model_loading import ADAPTER_METADATA
    from ghostframe.trainer.evaluation.predict import Generation, no_progress
    from ghostframe.trainer.evaluation.report import write_reports
    from ghostframe.trainer.evaluation.run import EvalConfig, evaluate, run_sources, systems_for

    folders, datasets, options = run_sources(str(run_dir))
    cfg = EvalConfig(folders=folders, datasets=datasets, options=options,
                     systems=systems_for(model, [str(run_dir)]), max_cases=max_cases,
                     generation=Generation(device=device, max_prompt_tokens=max_prompt_tokens, engine=engine),
                     context=context)
    results = evaluate(cfg, progress or no_progress, report, cache=cache)
    base, adapter = (s["predictions"] for s in results["systems"])
    gate = judge(base, adapter)
    results["gate"] = gate.to_dict()
    paths = write_reports(results, run_dir / "gate")
    meta_path = run_dir / ADAPTER_METADATA
    meta = json.loads(meta_path.read_text())
    # the verdict holds for the engine it was reached on (llama.cpp runs Q4 weights, torch dequantised ones)
    engines = sorted({s.get("engine") or "torch" for s in results["systems"]})
    meta["gate"] = {**gate.to_dict(), "engine": ", ".join(engines),
                    "report": str(paths["markdown"].relative_to(run_dir))}
    tmp = meta_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(meta, indent=2))
    tmp.replace(meta_path)
    return gate
