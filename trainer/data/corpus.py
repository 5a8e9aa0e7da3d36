"""From source folders and data sets to clean, split training text: the data pipeline.

    discover (sources) -> read and decode -> size limit -> notebook to Python
    -> generated/minified check -> data-science filter -> secret scrubbing
    -> exact and near dedup -> train/valid split by path hash

Every file dropped is counted under a reason in the `DataReport`, which ends up in the
run's `ghostframe.json`. The evaluation command reuses `iter_clean_files` so it sees
the same files, and the same split, that training saw.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from ghostframe.server.inference.source_files.hygiene import (DEFAULT_KEYWORDS, DEFAULT_MAX_FILE_BYTES,
                                                             read_source_file, source_text)
from ghostframe.trainer.data.dedup import DEFAULT_NEAR_THRESHOLD, Deduplicator
from ghostframe.trainer.data.scrubbing import scrub_secrets
from ghostframe.trainer.data.sources import CandidateFile, iter_dataset_records, iter_folder_files
from ghostframe.trainer.data.split import DEFAULT_VALID_FRACTION, TRAIN, VALID, split_of


class CorpusError(RuntimeError):
    """The sources gave nothing to train on; the message says why and what to change."""


@dataclass
class DatasetSource:
    """A Hugging Face data set given with --dataset (hub name, save_to_disk folder or data file)."""

    name_or_path: str
    split: str = "train"
    text_column: str = "content"
    streaming: bool = False
    limit: int | None = None


@dataclass
class CorpusOptions:
    """What counts as a training file."""

    keywords: tuple[str, ...] = DEFAULT_KEYWORDS
    filter_keywords: bool = True
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    near_dedup_threshold: float | None = DEFAULT_NEAR_THRESHOLD
    valid_fraction: float = DEFAULT_VALID_FRACTION

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "CorpusOptions":
        """The options a training configuration names (a TrainConfig's fields, or the `config` a
        run saved in ghostframe.json); a missing key keeps its default."""
        fields = {f.name for f in dataclasses.fields(cls)}
        chosen = {k: v for k, v in config.items() if k in fields}
        if "keywords" in chosen:
            chosen["keywords"] = tuple(chosen["keywords"])
        return cls(**chosen)


@dataclass
class CleanFile:
    source: str
    relative_path: str
    text: str
    split: str


@dataclass
class DataReport:
    """Counts of what was seen, kept and skipped (by reason), and secrets scrubbed (by kind)."""

    sources: list[str] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)
    secrets_scrubbed: Counter = field(default_factory=Counter)
    train_files: int = 0
    valid_files: int = 0
    train_chars: int = 0
    valid_chars: int = 0

    def to_dict(self) -> dict:
        return {
            "sources": self.sources,
            "files_seen": self.counts.get("seen", 0),
            "files_kept": self.train_files + self.valid_files,
            "train_files": self.train_files,
            "valid_files": self.valid_files,
            "train_chars": self.train_chars,
            "valid_chars": self.valid_chars,
            "skipped": {k: v for k, v in sorted(self.counts.items()) if k.startswith("skipped")},
            "duplicates": {k: v for k, v in sorted(self.counts.items()) if k.startswith("duplicate")},
            "secrets_scrubbed": dict(sorted(self.secrets_scrubbed.items())),
        }

    def summary(self) -> str:
        d = self.to_dict()
        skipped = ", ".join(f"{k.removeprefix('skipped_')} {v}" for k, v in d["skipped"].items()) or "none"
        dups = ", ".join(f"{k.removeprefix('duplicates_')} {v}" for k, v in d["duplicates"].items()) or "none"
        secrets = sum(d["secrets_scrubbed"].values())
        return (
            f"files seen {d['files_seen']}, kept {d['files_kept']} "
            f"(train {d['train_files']}, valid {d['valid_files']}); skipped: {skipped}; "
            f"duplicates: {dups}; secrets scrubbed: {secrets}"
        )


def _candidate_text(candidate: CandidateFile, options: CorpusOptions, counts: Counter) -> str | None:
    """Read, decode and (for notebooks) extract one candidate; None, counted, when it is unusable."""
    keywords = options.keywords if options.filter_keywords else None
    if candidate.text is not None:
        text, reason = source_text(candidate.text.encode("utf-8", errors="replace"), candidate.is_notebook,
                                   options.max_file_bytes, keywords)
    else:
        text, reason = read_source_file(candidate.path, options.max_file_bytes, keywords)
    if text is None:
        counts[reason] += 1
    return text


def iter_candidates(
    folders: Iterable[str | Path],
    datasets: Iterable[DatasetSource],
    counts: Counter,
    exclude: tuple[Path, ...] = (),
) -> Iterator[CandidateFile]:
    """All candidate files of all sources, checking that each folder exists and has some."""
    for folder in folders:
        root = Path(folder).expanduser()
        if not root.exists():
            raise CorpusError(f"Source folder {root} does not exist.")
        if not root.is_dir():
            raise CorpusError(f"Source {root} is not a folder (give folders, or a data set with --dataset).")
        before = counts["seen"]
        yield from iter_folder_files(root, counts, exclude)
        if counts["seen"] == before:
            raise CorpusError(
                f"Source folder {root} has no .py or .ipynb files (outside .git, virtualenvs, "
                "build folders and .gitignore'd paths)."
            )
    for dataset in datasets:
        try:
            yield from iter_dataset_records(
                dataset.name_or_path, counts, dataset.split, dataset.text_column, dataset.streaming, dataset.limit
            )
        except (OSError, ValueError, FileNotFoundError) as exc:
            raise CorpusError(f"Could not read data set {dataset.name_or_path}: {exc}") from exc


def iter_clean_files(
    folders: Iterable[str | Path] = (),
    datasets: Iterable[DatasetSource] = (),
    options: CorpusOptions | None = None,
    report: DataReport | None = None,
    exclude: tuple[Path, ...] = (),
) -> Iterator[CleanFile]:
    """Yield the files that pass every hygiene step, scrubbed, with their split."""
    options = options or CorpusOptions()
    report = report if report is not None else DataReport()
    folders, datasets = list(folders), list(datasets)
    report.sources = [str(Path(f).expanduser().resolve()) for f in folders] + [d.name_or_path for d in datasets]
    dedup = Deduplicator(options.near_dedup_threshold)
    for candidate in iter_candidates(folders, datasets, report.counts, exclude):
        try:
            text = _candidate_text(candidate, options, report.counts)
            if text is None:
                continue
            text, found = scrub_secrets(text)
        except Exception as exc:  # noqa: BLE001 - one hostile file must not end the run
            report.counts[f"skipped_unreadable_{type(exc).__name__}"] += 1
            continue
        report.secrets_scrubbed.update(found)
        duplicate = dedup.check(text)
        if duplicate:
            report.counts[f"duplicates_{duplicate}"] += 1
            continue
        split = split_of(candidate.relative_path, options.valid_fraction)
        if split == TRAIN:
            report.train_files += 1
            report.train_chars += len(text)
        else:
            report.valid_files += 1
            report.valid_chars += len(text)
        yield CleanFile(candidate.source, candidate.relative_path, text, split)


def build_corpus(
    data_dir: Path,
    folders: Iterable[str | Path] = (),
    datasets: Iterable[DatasetSource] = (),
    options: CorpusOptions | None = None,
    exclude: tuple[Path, ...] = (),
) -> DataReport:
    """Write train.jsonl and valid.jsonl ({"text", "path", "source"} per line) and data_report.json.

    Raises CorpusError when no file is left for training.
    """
    options = options or CorpusOptions()
    report = DataReport()
    data_dir.mkdir(parents=True, exist_ok=True)
    partial = {name: data_dir / f"{name}.jsonl.partial" for name in (TRAIN, VALID)}
    handles = {name: open(path, "w", encoding="utf-8") for name, path in partial.items()}
    try:
        for clean in iter_clean_files(folders, datasets, options, report, exclude):
            record = {"text": clean.text, "path": clean.relative_path, "source": clean.source}
            handles[clean.split].write(json.dumps(record) + "\n")
    finally:
        for handle in handles.values():
            handle.close()
    if report.train_files == 0:
        for path in partial.values():
            path.unlink(missing_ok=True)
        seen = report.counts.get("seen", 0)
        if report.train_files + report.valid_files == 0 and report.counts.get("skipped_no_keyword"):
            raise CorpusError(
                f"No file passed the data-science filter ({seen} seen, none mentions any of "
                f"{', '.join(options.keywords)}). Pass --keywords to choose others, or --no-filter to keep all. "
                f"({report.summary()})"
            )
        if report.valid_files:
            raise CorpusError(
                f"All {report.valid_files} kept files fell in the valid split, none is left for training; "
                f"add sources or pass --valid-fraction 0. ({report.summary()})"
            )
        raise CorpusError(f"No file is left for training: {report.summary()}")
    for name, path in partial.items():
        path.replace(data_dir / f"{name}.jsonl")
    (data_dir / "data_report.json").write_text(json.dumps(report.to_dict(), indent=2))
    return report

