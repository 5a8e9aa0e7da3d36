"""Evaluation: next-line completion accuracy on held-out files, for several models/adapters.

    sources -> trainer pipeline + split (valid files only) -> sampled cases (eval_cases)
    -> for each system, the server's completion path (eval_predict) -> scores (eval_metrics)
    -> results dict, written as JSON, Markdown and a PNG chart (eval_report)

Every system answers the same cases, one system loaded at a time.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ghostframe.server.inference.machine import environment
from ghostframe.server.inference.model_loading import read_adapter_metadata
from ghostframe.trainer.data.corpus import CorpusOptions, DatasetSource
from ghostframe.trainer.evaluation.answer_cache import AnswerCache
from ghostframe.trainer.evaluation.context import apply_context
from ghostframe.trainer.evaluation.cases import DEFAULT_MIN_CHARS, DEFAULT_PER_FILE, DEFAULT_SEED, CaseSet, load_cases
from ghostframe.trainer.evaluation.metrics import score, summarise, summarise_by_file
from ghostframe.trainer.evaluation.predict import (
    EvaluationError,
    Generation,
    Progress,
    System,
    no_progress,
    predict_in_process,
    predict_via_lsp,
)

__all__ = ["EvalConfig", "EvaluationError", "Generation", "System", "evaluate", "merge_results", "run_sources",
           "systems_for"]


@dataclass
class EvalConfig:
    folders: list[str]
    systems: list[System]
    datasets: list[DatasetSource] = field(default_factory=list)
    options: CorpusOptions = field(default_factory=CorpusOptions)
    per_file: int = DEFAULT_PER_FILE
    max_cases: int | None = 200
    seed: int = DEFAULT_SEED
    min_chars: int = DEFAULT_MIN_CHARS
    generation: Generation = field(default_factory=Generation)
    via_lsp: bool = False
    context: str = "none"        # none | repo | data | all (see evaluation.context)
    column_lines: bool = False   # only lines that name a column of a data file the script reads


def systems_for(model: str, adapters: list[str], include_base: bool = True) -> list[System]:
    """The base model (unless left out), then one system per adapter, with distinct labels."""
    base_label = Path(model).name if model else "base"
    systems = [System(base_label, model, "")] if include_base else []
    for adapter in adapters:
        label = Path(adapter).expanduser().resolve().name or adapter
        while label in {s.label for s in systems}:
            label += "'"
        systems.append(System(label, model, adapter))
    return systems


def run_sources(adapter: str) -> tuple[list[str], list[DatasetSource], CorpusOptions]:
    """The sources and data options a `ghostframe-train` output recorded in its ghostframe.json.

    Evaluating with them reproduces the run's split exactly (the split depends on paths
    relative to each source folder, so the same folders must be given).
    """
    meta = read_adapter_metadata(Path(adapter).expanduser())
    config = meta.get("config")
    if not config:
        raise EvaluationError(f"{adapter} has no ghostframe.json with a training configuration; give FOLDERS.")
    folders = meta.get("data", {}).get("sources") or config.get("sources", [])
    dataset_names = {d["name_or_path"] for d in config.get("datasets", [])}
    folders = [f for f in folders if f not in dataset_names]
    datasets = [DatasetSource(**d) for d in config.get("datasets", [])]
    return folders, datasets, CorpusOptions.from_config(config)


def split_warnings(cfg: EvalConfig) -> list[str]:
    """Ways the evaluation's split could differ from the one an adapter was trained with."""
    out = []
    folders = {str(Path(f).expanduser().resolve()) for f in cfg.folders}
    for system in cfg.systems:
        if not system.adapter:
            continue
        meta = read_adapter_metadata(Path(system.adapter).expanduser())
        config = meta.get("config")
        if not config:
            continue
        trained = CorpusOptions.from_config(config)
        for name in ("valid_fraction", "keywords", "filter_keywords", "near_dedup_threshold"):
            if getattr(trained, name) != getattr(cfg.options, name):
                out.append(f"{system.label} was trained with {name}={getattr(trained, name)!r}, "
                           f"this evaluation uses {getattr(cfg.options, name)!r}: its held-out files may differ.")
        recorded = set(meta.get("data", {}).get("sources", []))
        for folder in sorted(folders):
            inside = [r for r in recorded if folder != r and (folder.startswith(r + os.sep) or r.startswith(folder + os.sep))]
            if inside:
                out.append(f"{folder} is nested with {system.label}'s training source {inside[0]}: relative paths, "
                           "and so the split, differ; give the same folder the adapter was trained on.")
    return out


def evaluate(cfg: EvalConfig, progress: Progress = no_progress, report=lambda _: None,
             case_set: CaseSet | None = None, cache: AnswerCache | None = None) -> dict:
    """Run every system on the same cases; return the results as plain data (see eval_report).

    With a `cache` (in process only), the base model reuses its stored answers (evaluation.answer_cache).
    """
    if cfg.via_lsp and cfg.context != "none":
        raise EvaluationError("--context works in process only (the server indexes its own workspace folders)")
    if case_set is None:
        per_file, max_cases = (10**9, None) if cfg.column_lines else (cfg.per_file, cfg.max_cases)
        case_set = load_cases(cfg.folders, cfg.datasets, cfg.options, per_file, max_cases, cfg.seed, cfg.min_chars)
    context = apply_context(case_set, cfg.folders, cfg.datasets, cfg.options, cfg.context, cfg.column_lines,
                            cfg.max_cases, cfg.seed)
    cases = case_set.cases
    if not cases:
        unparsable = f", {len(case_set.unparsable_files)} of them not valid Python" if case_set.unparsable_files else ""
        raise EvaluationError(
            f"No case to evaluate: {len(case_set.valid_files)} file(s) fall in the valid split{unparsable} "
            f"({case_set.data_summary}). Add folders (files must mention one of the data-science keywords, "
            "or pass --no-filter), or raise --valid-fraction (then it differs from the adapter's training split)."
        )
    report(f"{len(cases)} cases from {len(case_set.valid_files)} held-out files")
    systems = []
    for system in cfg.systems:
        started = time.perf_counter()
        if cfg.via_lsp:
            predictions, info = predict_via_lsp(system, cases, cfg.generation, progress, report)
        else:
            predictions, info = predict_in_process(system, cases, cfg.generation, progress, report, cache)
        if info.get("cached"):
            report(f"{system.label}: {info['cached']} of {len(cases)} answers reused from earlier runs")
        scored = [score(c.id, c.file, p.text, c.reference, p.seconds) for c, p in zip(cases, predictions)]
        systems.append({
            **asdict(system), **info,
            "label": system.label if cfg.context == "none" else f"{system.label} +{cfg.context}",
            "seconds": round(time.perf_counter() - started, 1),
            "overall": summarise(scored).to_dict(),
            "per_file": {name: s.to_dict() for name, s in summarise_by_file(scored).items()},
            "predictions": [
                {"id": s.case_id, "prediction": s.prediction, "exact": s.exact,
                 "edit_sim": round(s.edit_sim, 1), "ms": round(s.seconds * 1000, 1)}
                for s in scored
            ],
        })
    return {
        "task": "next-line completion on held-out files",
        "sources": cfg.folders + [d.name_or_path for d in cfg.datasets],
        "split": {"valid_fraction": cfg.options.valid_fraction, "valid_files": case_set.valid_files,
                  "unparsable_files": case_set.unparsable_files},
        "data": case_set.data,
        "sampling": {"per_file": cfg.per_file, "max_cases": cfg.max_cases, "seed": cfg.seed,
                     "min_chars": cfg.min_chars},
        "generation": {**cfg.generation.described(), "via": "lsp" if cfg.via_lsp else "in-process"},
        "context": {**context, "column_lines": cfg.column_lines},
        "environment": environment(None if cfg.via_lsp else cfg.generation.threads),
        "cases": [c.summary() for c in cases],
        "systems": systems,
    }


def merge_results(parts: list[dict]) -> dict:
    """One comparison from runs made separately (say, the base today and an adapter tomorrow).

    They must have answered the same cases under the same generation settings, else the
    numbers would not be comparable and this raises EvaluationError.
    """
    if not parts:
        raise EvaluationError("nothing to merge")
    first = parts[0]
    ids = [c["id"] for c in first["cases"]]
    for other in parts[1:]:
        if [c["id"] for c in other["cases"]] != ids:
            raise EvaluationError("the results to merge were made on different cases (sources, split or sampling differ)")
        settings = {k: v for k, v in other["generation"].items() if k != "threads"}
        if settings != {k: v for k, v in first["generation"].items() if k != "threads"}:
            raise EvaluationError(f"the results to merge used different generation settings: {other['generation']}")
    merged = dict(first)
    merged["systems"] = []
    for part in parts:
        for system in part["systems"]:
            label = system["label"]
            while label in {s["label"] for s in merged["systems"]}:
                label += "'"
            merged["systems"].append({**system, "label": label})
    return merged
