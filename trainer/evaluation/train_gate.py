"""The gate at the end of a training run: its settings, what it will cost, and running it.

`ghostframe-train` calls these (the training loop itself never imports evaluation): it
measures the gate's cost for `--budget`, and after the adapter is written runs the gate
with the server's own prompt settings.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from ghostframe.server.inference.model_loading import ADAPTER_METADATA
from ghostframe.server.lsp.settings import Settings
from ghostframe.trainer.config import TrainConfig
from ghostframe.trainer.data.corpus import CorpusOptions, DatasetSource
from ghostframe.trainer.evaluation.cases import DEFAULT_MIN_CHARS, DEFAULT_PER_FILE, DEFAULT_SEED, load_cases
from ghostframe.trainer.evaluation.predict import EvaluationError, Generation, System, predict_in_process

TIMED_CASES = 2  # completions timed for the estimate, after the warm-up one


def gate_prompt_tokens(cfg: TrainConfig) -> int:
    """The prompt length the gate evaluates with: the server's default unless --gate-prompt-tokens."""
    return cfg.gate_prompt_tokens or Settings().max_prompt_tokens


def _generation(cfg: TrainConfig) -> Generation:
    return Generation(device=cfg.device, max_prompt_tokens=gate_prompt_tokens(cfg))


def measure_gate_cost(cfg: TrainConfig, report=lambda _: None) -> dict:
    """Time what the gate does, on a small scale: read the held-out cases, load the base model
    as the server does, complete TIMED_CASES of them. Returns evaluation-free numbers
    (training.budget.GateTiming's fields)."""
    options = CorpusOptions(keywords=tuple(cfg.keywords), filter_keywords=cfg.filter_keywords,
                            max_file_bytes=cfg.max_file_bytes, near_dedup_threshold=cfg.near_dedup_threshold,
                            valid_fraction=cfg.valid_fraction)
    started = time.perf_counter()
    case_set = load_cases(cfg.sources, [DatasetSource(**d) for d in cfg.datasets], options,
                          DEFAULT_PER_FILE, cfg.gate_cases, DEFAULT_SEED, DEFAULT_MIN_CHARS)
    read_seconds = time.perf_counter() - started
    cases = case_set.cases
    if not cases:
        return {"available_cases": 0, "read_seconds": read_seconds, "load_seconds": 0.0, "case_seconds": 0.0}
    started = time.perf_counter()
    predictions, _info = predict_in_process(System("base", cfg.model or ""), cases[:TIMED_CASES],
                                            _generation(cfg), report=report)
    total = time.perf_counter() - started
    case_seconds = sum(p.seconds for p in predictions) / len(predictions)
    return {"available_cases": len(cases), "read_seconds": read_seconds,
            "load_seconds": max(0.0, total - case_seconds * len(predictions)), "case_seconds": case_seconds}


def finish_with_gate(cfg: TrainConfig, max_cases: int | None = None, report=lambda _: None):
    """Run the gate on the finished run in cfg.output and return its verdict (recorded in
    ghostframe.json). A run with no held-out line at all gets "too few", recorded the same way."""
    from ghostframe.trainer.evaluation.gate import judge, run_gate
    from ghostframe.trainer.evaluation.predict import tqdm_progress

    run_dir = Path(cfg.output).expanduser().resolve()
    cases = max_cases or cfg.gate_cases
    try:
        return run_gate(run_dir, cfg.model or "", cfg.device, cases, gate_prompt_tokens(cfg), report,
                        None if cfg.quiet else tqdm_progress)
    except EvaluationError as exc:
        if not str(exc).startswith("No case to evaluate"):
            raise
        report(str(exc))
    gate = judge([], [])  # "too few": 0 held-out lines
    meta_path = run_dir / ADAPTER_METADATA
    meta = json.loads(meta_path.read_text())
    meta["gate"] = {**gate.to_dict(), "report": None}
    meta_path.write_text(json.dumps(meta, indent=2))
    return gate
