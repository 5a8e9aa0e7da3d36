"""Drop exact and near duplicates, keeping the first copy seen.

Copies of a file (vendored code, a notebook saved twice, `utils_old.py`) would be
learnt twice and, worse, land on both sides of the train/valid split. Exact copies go
by SHA-256 of the text with trailing whitespace ignored; near copies by MinHash over
token 5-grams with datasketch's LSH index at Jaccard >= 0.85 (codeparrot's threshold).
"""

from __future__ import annotations

import hashlib
import re

from datasketch import MinHash, MinHashLSH

_TOKEN = re.compile(r"\w+|[^\w\s]")
NUM_PERM = 128
DEFAULT_NEAR_THRESHOLD = 0.85
SHINGLE_SIZE = 5


def content_hash(text: str) -> str:
    """SHA-256 of the text with trailing whitespace of each line and the file ignored."""
    normalised = "\n".join(line.rstrip() for line in text.strip().splitlines())
    return hashlib.sha256(normalised.encode("utf-8")).hexdigest()


def minhash_of(text: str) -> MinHash:
    """MinHash of the set of token 5-grams (whitespace-insensitive, so reformatting does not hide a copy)."""
    tokens = _TOKEN.findall(text)
    shingles = {" ".join(tokens[i : i + SHINGLE_SIZE]) for i in range(max(1, len(tokens) - SHINGLE_SIZE + 1))}
    signature = MinHash(num_perm=NUM_PERM)
    signature.update_batch([s.encode("utf-8") for s in shingles])
    return signature


class Deduplicator:
    """Decide for each text, in order, whether it is new, an exact copy or a near copy."""

    def __init__(self, near_threshold: float | None = DEFAULT_NEAR_THRESHOLD):
        self._hashes: set[str] = set()
        self._lsh = MinHashLSH(threshold=near_threshold, num_perm=NUM_PERM) if near_threshold else None
        self._count = 0

    def check(self, text: str) -> str | None:
        """Return None and remember `text` if it is new, else "exact" or "near"."""
        digest = content_hash(text)
        if digest in self._hashes:
            return "exact"
        self._hashes.add(digest)
        if self._lsh is not None:
            signature = minhash_of(text)
            if self._lsh.query(signature):
                return "near"
            self._lsh.insert(str(self._count), signature)
            self._count += 1
        return None
