"""Train/valid split by file, decided by a hash of the file's path relative to its source.

One function so training and evaluation can never disagree: a file's split depends
only on its relative path (not on the machine, the order of discovery or the other
files), so no file is ever in both splits and adding files never moves old ones.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import PurePath, PurePosixPath, PureWindowsPath

TRAIN = "train"
VALID = "valid"
DEFAULT_VALID_FRACTION = 0.1


def normalise_relative_path(relative_path: str | PurePath) -> str:
    """POSIX form without a leading './', so 'a\\b.py' on Windows equals 'a/b.py' elsewhere."""
    text = str(relative_path)
    parts = PureWindowsPath(text).parts if "\\" in text else PurePosixPath(text).parts
    return "/".join(part for part in parts if part not in ("", "."))


def split_of(relative_path: str | PurePath, valid_fraction: float = DEFAULT_VALID_FRACTION) -> str:
    """Return "train" or "valid" for a file, from a SHA-256 of its normalised relative path."""
    if not 0.0 <= valid_fraction <= 1.0:
        raise ValueError(f"valid_fraction must be in [0, 1], got {valid_fraction}")
    digest = hashlib.sha256(normalise_relative_path(relative_path).encode("utf-8")).digest()
    position = int.from_bytes(digest[:8], "big") / 2**64  # uniform in [0, 1)
    return VALID if position < valid_fraction else TRAIN


def _fraction(text: str, whole: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (0.0 <= value <= 1.0 if whole else 0.0 <= value < 1.0):
        raise argparse.ArgumentTypeError(
            f"{text} is not a share of files from 0 to 1" + ("" if whole else " (1 would leave nothing to train on)"))
    return value


def training_valid_fraction(text: str) -> float:
    """`--valid-fraction` for training (an argparse type): below 1, so some files remain to train on."""
    return _fraction(text, whole=False)


def evaluation_valid_fraction(text: str) -> float:
    """`--valid-fraction` for an evaluation (an argparse type): 1 holds every file out, for a set no
    training saw."""
    return _fraction(text, whole=True)
