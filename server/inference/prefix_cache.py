"""Per-document KV caches, so the next keystroke's prompt only prefills the tokens that changed.

While someone types, consecutive prompts share almost all their tokens. Each document
keeps the cache of its last prompt (plus what was generated); a new prompt reuses the
longest common token prefix. Memory stays bounded: a few documents, least recently used
first out, and a document's cache goes when it is closed.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any


@dataclass
class CachedPrefix:
    ids: list[int]  # the tokens whose keys/values `cache` holds, in order
    cache: Any      # a transformers DynamicCache


def common_prefix_length(a: list[int], b: list[int]) -> int:
    """How many first tokens `a` and `b` share (every engine's cache reuse is measured so)."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def crop(cache: Any, length: int) -> None:
    """Keep the first `length` positions of a DynamicCache."""
    extra = cache.get_seq_length() - length
    if extra > 0:
        cache.crop(-extra)


class PrefixCache:
    """Least-recently-used map from document to its last CachedPrefix."""

    def __init__(self, max_documents: int = 4):
        self.max_documents = max_documents
        self._entries: OrderedDict[str, CachedPrefix] = OrderedDict()

    def take(self, document: str, ids: list[int]) -> tuple[Any | None, int]:
        """Remove and return (cache cropped to the reusable prefix, its length) for a new prompt.

        At least the prompt's last token is always left to compute, since its logits
        give the first new token.
        """
        entry = self._entries.pop(document, None)
        if entry is None:
            return None, 0
        reuse = min(common_prefix_length(entry.ids, ids), len(ids) - 1)
        if reuse <= 0:
            return None, 0
        crop(entry.cache, reuse)
        return entry.cache, reuse

    def reusable(self, document: str, ids: list[int]) -> int:
        """How many of `ids`' first tokens the document's cache holds now (nothing is moved)."""
        entry = self._entries.get(document)
        return 0 if entry is None else common_prefix_length(entry.ids, ids)

    def put(self, document: str, ids: list[int], cache: Any) -> None:
        self._entries.pop(document, None)
        self._entries[document] = CachedPrefix(ids, cache)
        while len(self._entries) > self.max_documents:
            self._entries.popitem(last=False)

    def documents(self) -> set[str]:
        return set(list(self._entries))  # list(): one C call, safe against the worker changing it

    def evict(self, document: str) -> None:
        self._entries.pop(document, None)

    def __len__(self) -> int:
        return len(self._entries)
