"""The gate at the end of a training run: its settings, what it will cost, and running it.

`ghostframe-train` calls these (the training loop itself never imports evaluation): it
measures the gate's cost for `--budget`, and after the adapter is written runs the gate
with the server's own prompt settings: its prompt length and the context it adds by
default (repository snippets and data-file columns). The base model's answers are kept
between runs (evaluation.answer_cache), so training again on the same code evaluates only
the new adapter.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from ghostframe.server.inference.context import context_mode
from ghostframe.server.inference.model_loading import ADAPTER_METADATA
from ghostframe.server.lsp.settings import Settings
from ghostframe.trainer.config import TrainConfig
from ghostframe.trainer.evaluation.answer_cache import AnswerCache
from ghostframe.trainer.evaluation.cases import DEFAULT_MIN_CHARS, DEFAULT_PER_FILE, DEFAULT_SEED, Case, load_cases
from ghostframe.trainer.evaluation.context import apply_context
from ghostframe.trainer.evaluation.predict import EvaluationError, Generation, System, predict_in_process

TIMED_CASES = 4  # completions timed for the estimate, after the warm-up one, spread over prompt sizes


def gate_prompt_tokens(cfg: TrainConfig) -> int:
    """The prompt length the gate evaluates with: the server's default unless --gate-prompt-tokens."""
    return cfg.gate_prompt_tokens or Settings().max_prompt_tokens


def gate_context(cfg: TrainConfig) -> str:
    """The context the gate's prompts get: what the server adds by default unless --gate-context."""
    if cfg.gate_context:
        return cfg.gate_context
    defaults = Settings()
    return context_mode(defaults.repo_context, defaults.data_context)


def _generation(cfg: TrainConfig) -> Generation:
    return Generation(device=cfg.device, max_prompt_tokens=gate_prompt_tokens(cfg), engine=cfg.engine)


def _prompt_chars(case: Case) -> int:
    return len(case.before) + sum(map(len, case.snippets)) + sum(len(note) for _, note in case.notes)


def timing_sample(cases: list[Case], count: int = TIMED_CASES) -> list[Case]:
    """`count` cases whose prompts are spread evenly over the prompt sizes of all of them.

    A case costs about its prompt's prefill, so their mean time stands for the mean case.
    The first cases of a sample do not: a default run timed two short ones and its 30-minute
    budget took 35 (the gate ran 820 s against an estimate of 420).
    """
    by_size = sorted(cases, key=_prompt_chars)
    count = min(count, len(by_size))
    return [by_size[int((i + 0.5) * len(by_size) / count)] for i in range(count)]


def measure_gate_cost(cfg: TrainConfig, report=lambda _: None, cache: AnswerCache | None = None) -> dict:
    """Time what the gate does, on a small scale: read the held-out cases and add their context,
    load the base model as the server does, complete TIMED_CASES of them, and count the cases
    whose base answers are cached. Returns evaluation-free numbers (training.budget.GateTiming's fields)."""
    options, datasets = cfg.corpus_options(), cfg.dataset_sources()
    started = time.perf_counter()
    case_set = load_cases(cfg.sources, datasets, options, DEFAULT_PER_FILE, cfg.gate_cases, DEFAULT_SEED,
                          DEFAULT_MIN_CHARS)
    apply_context(case_set, cfg.sources, datasets, options, gate_context(cfg), False, cfg.gate_cases, DEFAULT_SEED)
    read_seconds = time.perf_counter() - started
    cases = case_set.cases
    if not cases:
        return {"available_cases": 0, "read_seconds": read_seconds, "load_seconds": 0.0, "case_seconds": 0.0}
    started = time.perf_counter()
    # Timed for real (no cache): the adapter will answer every case at this speed.
    predictions, info = predict_in_process(System("base", cfg.model or ""), timing_sample(cases),
                                           _generation(cfg), report=report, cache=None)
    total = time.perf_counter() - started
    case_seconds = sum(p.seconds for p in predictions) / len(predictions)
    cache = cache if cache is not None else AnswerCache()
    cached = cache.count(info["answer_key"], (c.context for c in cases)) if info.get("answer_key") else 0
    return {"available_cases": len(cases), "read_seconds": read_seconds,
            "load_seconds": max(0.0, total - case_seconds * len(predictions)), "case_seconds": case_seconds,
            "base_cached_cases": cached}


def finish_with_gate(cfg: TrainConfig, max_cases: int | None = None, report=lambda _: None):
    """Run the gate on the finished run in cfg.output and return its verdict (recorded in
    ghostframe.json). A run with no held-out line at all gets "too few", recorded the same way."""
    from ghostframe.trainer.evaluation.gate import judge, run_gate
    from ghostframe.trainer.evaluation.predict import tqdm_progress

    run_dir = Path(cfg.output).expanduser().resolve()
    cases = max_cases or cfg.gate_cases
    try:
        return run_gate(run_dir, cfg.model or "", cfg.device, cases, gate_prompt_tokens(cfg), report,
                        None if cfg.quiet else tqdm_progress, context=gate_context(cfg), cache=AnswerCache(),
                        engine=cfg.engine)
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
