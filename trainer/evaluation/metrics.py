"""Line-completion metrics: exact match, edit similarity, empty share and latency percentiles.

Exact match compares whitespace-separated tokens, as CodeXGLUE line completion does (so
`f(a,b)` vs `f(a, b)` differs but trailing spaces do not), and one thing more: the
suggestion is inserted after the line's indentation, so one that starts with a space
breaks the indentation and is not a match. Edit similarity is the normalised Levenshtein
similarity from rapidfuzz, 0-100, on the suggestion with trailing space removed (so a
stray leading space costs one edit). An empty suggestion scores 0 on both and is also
counted on its own: it is what the user sees when nothing appears.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterable

import numpy as np
from rapidfuzz.distance import Levenshtein


def exact_match(prediction: str, reference: str) -> bool:
    """Same tokens, and no extra whitespace before the first one (`reference` is the stripped line)."""
    return prediction.split() == reference.split() and prediction[:1].isspace() == reference[:1].isspace()


def leading_space(prediction: str) -> bool:
    """A non-empty suggestion that starts with whitespace: inserted after the indentation, it mis-indents."""
    return bool(prediction.strip()) and prediction[:1].isspace()


def edit_similarity(prediction: str, reference: str) -> float:
    """100 x (1 - Levenshtein distance / length of the longer string); 100 for two empty strings."""
    return 100.0 * Levenshtein.normalized_similarity(prediction.rstrip(), reference.rstrip())


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), numpy's linear interpolation; 0 for no values."""
    return float(np.percentile(values, q)) if values else 0.0


@dataclass(frozen=True)
class Scored:
    """One prediction with its scores."""

    case_id: str
    file: str
    prediction: str
    reference: str
    seconds: float
    exact: bool
    edit_sim: float

    @property
    def empty(self) -> bool:
        return not self.prediction.strip()


def score(case_id: str, file: str, prediction: str, reference: str, seconds: float) -> Scored:
    return Scored(case_id, file, prediction, reference, seconds,
                  exact_match(prediction, reference), edit_similarity(prediction, reference))


@dataclass(frozen=True)
class Summary:
    """Aggregates over some scored cases; percentages are 0-100, latencies milliseconds."""

    cases: int
    exact_match: float
    edit_sim: float
    empty: float
    p50_ms: float
    p95_ms: float
    leading_space: float = 0.0  # share of suggestions that start with whitespace (see `leading_space`)

    def to_dict(self) -> dict:
        return {k: round(v, 2) if isinstance(v, float) else v for k, v in asdict(self).items()}


def summarise(scored: Iterable[Scored]) -> Summary:
    items = list(scored)
    n = len(items)
    if n == 0:
        return Summary(0, 0.0, 0.0, 0.0, 0.0, 0.0)
    ms = [s.seconds * 1000 for s in items]
    return Summary(
        cases=n,
        exact_match=100.0 * sum(s.exact for s in items) / n,
        edit_sim=sum(s.edit_sim for s in items) / n,
        empty=100.0 * sum(s.empty for s in items) / n,
        p50_ms=percentile(ms, 50),
        p95_ms=percentile(ms, 95),
        leading_space=100.0 * sum(leading_space(s.prediction) for s in items) / n,
    )


def summarise_by_file(scored: Iterable[Scored]) -> dict[str, Summary]:
    groups: dict[str, list[Scored]] = {}
    for s in scored:
        groups.setdefault(s.file, []).append(s)
    return {name: summarise(items) for name, items in sorted(groups.items())}
