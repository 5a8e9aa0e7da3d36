"""What a source file holds, if it is worth reading: size, encoding, notebook cells, the junk
detectors and the data-science filter (for training and for the server's workspace index alike).

The filter is the Hugging Face course's (chapter 7.6): keep a file when any keyword
appears anywhere in it, as plain substrings, which is crude but cheap and is what the
codeparrot-ds data set was built with.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from ghostframe.server.inference.source_files.notebooks import NotebookError, notebook_to_python

DEFAULT_KEYWORDS: tuple[str, ...] = ("pandas", "sklearn", "matplotlib", "seaborn")
DEFAULT_MAX_FILE_BYTES = 1_000_000
# A notebook's JSON carries its saved outputs (plots as base64, tables), often megabytes around a
# few kilobytes of code: the code limit applies to the code, and the raw file may be this large.
MAX_NOTEBOOK_BYTES = 32_000_000

# Generated or minified code, with codeparrot's cleaning thresholds.
MAX_LINE_LENGTH = 1000
MAX_MEAN_LINE_LENGTH = 100
MIN_ALPHANUMERIC_FRACTION = 0.25


def raw_size_limit(is_notebook: bool, max_file_bytes: int) -> int:
    """The most bytes read from a source file: the code limit, or for a notebook MAX_NOTEBOOK_BYTES."""
    return max(max_file_bytes, MAX_NOTEBOOK_BYTES) if is_notebook else max_file_bytes


def source_text(data: bytes, is_notebook: bool, max_file_bytes: int,
                keywords: Iterable[str] | None) -> tuple[str | None, str]:
    """A source file's Python text by these rules, or (None, the reason it is unusable).

    The one place the trainer's corpus and the server's workspace index decide what a file
    holds: size (of a notebook's code, not of its saved outputs), encoding, notebook cells,
    generated code and, unless `keywords` is None, the data-science filter.
    """
    if len(data) > raw_size_limit(is_notebook, max_file_bytes):
        return None, "skipped_too_large"
    text = decode_source(data)
    if text is None:
        return None, "skipped_binary_or_not_utf8"
    if is_notebook:
        try:
            text = notebook_to_python(text)
        except NotebookError:
            return None, "skipped_bad_notebook"
        if len(text.encode("utf-8")) > max_file_bytes:
            return None, "skipped_too_large"
    if not text.strip():
        return None, "skipped_empty"
    if generated_reason(text):
        return None, "skipped_generated_or_minified"
    if keywords is not None and not any_keyword_in_string(text, keywords):
        return None, "skipped_no_keyword"
    return text, ""


def read_source_file(path: Path, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
                     keywords: Iterable[str] | None = None) -> tuple[str | None, str]:
    """`source_text` of the file at `path`, which is not read when its size already rules it out;
    (None, "skipped_unreadable") when it cannot be read."""
    is_notebook = path.suffix == ".ipynb"
    try:
        if path.stat().st_size > raw_size_limit(is_notebook, max_file_bytes):
            return None, "skipped_too_large"
        data = path.read_bytes()
    except OSError:
        return None, "skipped_unreadable"
    return source_text(data, is_notebook, max_file_bytes, keywords)


def any_keyword_in_string(string: str, keywords: Iterable[str]) -> bool:
    """True when any keyword occurs in `string` (case-sensitive substring, as in the course)."""
    return any(keyword in string for keyword in keywords)


def decode_source(data: bytes) -> str | None:
    """The text of a source file, or None for binary (NUL bytes) or non-UTF-8 content."""
    if b"\x00" in data:
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text.removeprefix("\ufeff")


@dataclass(frozen=True)
class TextShape:
    """Line statistics that tell hand-written code from generated or minified code."""

    max_line_length: int
    mean_line_length: float
    alphanumeric_fraction: float


def text_shape(text: str) -> TextShape:
    lines = text.splitlines() or [""]
    lengths = [len(line) for line in lines]
    alnum = sum(ch.isalnum() for ch in text)
    return TextShape(max(lengths), sum(lengths) / len(lengths), alnum / max(1, len(text)))


def generated_reason(text: str) -> str | None:
    """Why `text` looks generated or minified ('long-lines', 'low-alphanumeric'), or None."""
    shape = text_shape(text)
    if shape.max_line_length > MAX_LINE_LENGTH or shape.mean_line_length > MAX_MEAN_LINE_LENGTH:
        return "long-lines"
    if text.strip() and shape.alphanumeric_fraction < MIN_ALPHANUMERIC_FRACTION:
        return "low-alphanumeric"
    return None
