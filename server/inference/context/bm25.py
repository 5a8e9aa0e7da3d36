"""Okapi BM25 over code chunks, with the inverted index in numpy arrays.

A small scorer rather than `rank-bm25`: that library loops over every document in
Python for each query term (tens of milliseconds on a 1,000-file repository), while
this one touches only the postings of the query's terms. Tokens are identifiers, as in
RepoCoder and the CrossCodeEval retrieval baselines, interned as integers so a chunk's
bag of tokens costs a few bytes per distinct token.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
K1 = 1.2
B = 0.75
# Query terms found in more than this share of chunks (`self`, `return`, `np`) are left out:
# their weight is small and their postings are most of a query's cost.
MAX_DOCUMENT_FREQUENCY = 0.25
# Distinct tokens an index remembers at most (edits add half-typed names; this bounds them).
MAX_VOCABULARY = 500_000


def tokens(text: str) -> list[str]:
    """The identifier-like tokens of `text` (names, keywords and words inside strings)."""
    return TOKEN.findall(text)


class Vocabulary:
    """Token text <-> integer id, shared by every file of an index (only grows)."""

    def __init__(self):
        self.ids: dict[str, int] = {}

    def bag(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """(token ids, counts) of `text`, ids sorted. Once full, new tokens are left out (bounded memory)."""
        if len(self.ids) < MAX_VOCABULARY:
            ids = [self.ids.setdefault(t, len(self.ids)) for t in tokens(text)]
        else:
            ids = [i for i in map(self.ids.get, tokens(text)) if i is not None]
        if not ids:
            return np.zeros(0, np.int32), np.zeros(0, np.int32)
        unique, counts = np.unique(np.array(ids, dtype=np.int32), return_counts=True)
        return unique.astype(np.int32), counts.astype(np.int32)

    def lookup(self, query: Sequence[str]) -> list[int]:
        return sorted({self.ids[t] for t in query if t in self.ids})


@dataclass(frozen=True)
class Bags:
    """Bags of tokens of many documents, concatenated (CSR): document d is offsets[d]:offsets[d+1]."""

    token_ids: np.ndarray
    counts: np.ndarray
    offsets: np.ndarray

    @staticmethod
    def of(bags: Sequence[tuple[np.ndarray, np.ndarray]]) -> "Bags":
        lengths = np.array([len(ids) for ids, _ in bags], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        if not bags:
            return Bags(np.zeros(0, np.int32), np.zeros(0, np.int32), offsets)
        return Bags(np.concatenate([ids for ids, _ in bags]), np.concatenate([c for _, c in bags]), offsets)

    @staticmethod
    def join(parts: Sequence["Bags"]) -> "Bags":
        shifts = np.cumsum([0] + [int(p.offsets[-1]) for p in parts[:-1]])
        offsets = [np.zeros(1, np.int64)] + [p.offsets[1:] + s for p, s in zip(parts, shifts)]
        return Bags(np.concatenate([p.token_ids for p in parts] or [np.zeros(0, np.int32)]),
                    np.concatenate([p.counts for p in parts] or [np.zeros(0, np.int32)]),
                    np.concatenate(offsets))

    @property
    def size(self) -> int:
        return len(self.offsets) - 1


class BM25:
    """Scores a query against fixed documents (their token bags), built with array operations."""

    def __init__(self, bags: Bags, vocabulary: Vocabulary):
        self.vocabulary = vocabulary
        self.size = bags.size
        vocab_size = len(vocabulary.ids)
        documents = np.repeat(np.arange(self.size, dtype=np.int32), np.diff(bags.offsets))
        lengths = np.bincount(documents, weights=bags.counts, minlength=self.size).astype(np.float32)
        average = float(lengths.mean()) if self.size else 1.0
        norm = K1 * (1 - B + B * lengths / max(average, 1e-9))
        order = np.argsort(bags.token_ids, kind="stable")
        self._documents = documents[order]
        tf = bags.counts[order].astype(np.float32)
        frequency = np.bincount(bags.token_ids, minlength=vocab_size)
        self._starts = np.concatenate([[0], np.cumsum(frequency)]).astype(np.int64)
        idf = np.log(1 + (self.size - frequency + 0.5) / (frequency + 0.5)).astype(np.float32)
        self._weights = (idf[bags.token_ids[order]] * tf * (K1 + 1) / (tf + norm[self._documents])).astype(np.float32)
        self._frequency = frequency

    def scores(self, query: Sequence[str]) -> np.ndarray:
        """One score per document (0 where no query token occurs); each distinct token counts once."""
        terms = [t for t in self.vocabulary.lookup(query) if t < len(self._frequency) and self._frequency[t]]
        common = self.size * MAX_DOCUMENT_FREQUENCY
        rare = [t for t in terms if self._frequency[t] <= common] or terms
        if not rare or not self.size:
            return np.zeros(self.size, dtype=np.float32)
        slices = [slice(self._starts[t], self._starts[t + 1]) for t in rare]
        documents = np.concatenate([self._documents[s] for s in slices])
        weights = np.concatenate([self._weights[s] for s in slices])
        return np.bincount(documents, weights=weights, minlength=self.size).astype(np.float32)

    def top(self, query: Sequence[str], k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """The `k` best (document, score) pairs with a positive score, best first, ties by document id.

        `allowed` is a boolean mask of documents that may be returned.
        """
        scores = self.scores(query)
        if allowed is not None:
            scores = np.where(allowed, scores, 0.0)
        candidates = np.flatnonzero(scores > 0)
        if candidates.size == 0:
            return []
        if candidates.size > k:
            part = np.argpartition(-scores[candidates], k - 1)[:k]
            # keep every document tied with the k-th score, so the final order depends on ids only
            threshold = scores[candidates[part]].min()
            candidates = candidates[scores[candidates] >= threshold]
        ordered = sorted(candidates.tolist(), key=lambda d: (-float(scores[d]), d))[:k]
        return [(d, float(scores[d])) for d in ordered]
