"""The candidate training files of the user's folders and data sets, read-only.

Folders are walked by the rules the server's workspace index also follows
(`server.inference.source_files.discovery`: no links, no virtualenvs, build output or
caches, nothing `.gitignore` ignores, only `.py` and `.ipynb`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ghostframe.server.inference.source_files.discovery import SOURCE_SUFFIXES, walk_source_files


@dataclass(frozen=True)
class CandidateFile:
    """One file (or data-set record) that may become training text.

    `relative_path` is relative to its source root and decides the split; `path` is set
    for files on disk and `text` for data-set records.
    """

    source: str
    relative_path: str
    path: Path | None = None
    text: str | None = None

    @property
    def is_notebook(self) -> bool:
        return self.relative_path.endswith(".ipynb")


def iter_folder_files(root: Path, stats: Counter, exclude: tuple[Path, ...] = ()) -> Iterator[CandidateFile]:
    """Yield the `.py`/`.ipynb` files under `root` in sorted order, counting what was skipped."""
    root = root.resolve()
    for relative, path in walk_source_files(root, stats, exclude):
        yield CandidateFile(source=str(root), relative_path=relative, path=path)


def _load_hf_dataset(name_or_path: str, split: str, streaming: bool):
    """A `datasets` split from a hub name, a save_to_disk folder, or local json/csv/parquet files."""
    import datasets

    path = Path(name_or_path).expanduser()
    if path.is_dir() and any((path / name).is_file() for name in ("dataset_info.json", "dataset_dict.json")):
        loaded = datasets.load_from_disk(str(path))
        loaded = loaded[split] if isinstance(loaded, datasets.DatasetDict) else loaded
        return loaded.to_iterable_dataset() if streaming else loaded
    if path.is_file():
        kind = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}.get(path.suffix)
        if kind is None:
            raise ValueError(f"{path}: a local data set must be .json, .jsonl, .csv or .parquet")
        return datasets.load_dataset(kind, data_files=str(path), split="train", streaming=streaming)
    return datasets.load_dataset(name_or_path, split=split, streaming=streaming)


def iter_dataset_records(
    name_or_path: str,
    stats: Counter,
    split: str = "train",
    text_column: str = "content",
    streaming: bool = False,
    limit: int | None = None,
) -> Iterator[CandidateFile]:
    """Yield records of a Hugging Face data set of code files (e.g. huggingface-course/codeparrot-ds-train).

    The text is `text_column`; the split key is `repo_name/path` when the set has those
    columns (as codeparrot does), else the record's index. `.ipynb` paths are notebooks.
    """
    dataset = _load_hf_dataset(name_or_path, split, streaming)
    for index, record in enumerate(dataset):
        if limit is not None and index >= limit:
            break
        text = record.get(text_column)
        if text is None:
            raise ValueError(
                f"data set {name_or_path} has no column {text_column!r} (it has {sorted(record)}); "
                "choose one with --dataset-text-column"
            )
        path = str(record.get("path") or f"record-{index}.py")
        relative = f"{record['repo_name']}/{path}" if record.get("repo_name") else path
        if not relative.endswith(SOURCE_SUFFIXES):
            relative += ".py"
        stats["seen"] += 1
        yield CandidateFile(source=name_or_path, relative_path=relative, text=str(text))
