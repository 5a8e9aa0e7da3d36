"""Tokenize the clean files and pack them into fixed-length blocks for training.

Files are tokenized, each followed by EOS, concatenated and cut into blocks of
`context_length` tokens, so no compute is spent on padding and the model learns where
a file ends. Done with `datasets.map` (batched), whose on-disk cache makes a resumed
run skip the work. The tail of each map batch shorter than a block is dropped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

MAP_BATCH_FILES = 1000


def pack_token_lists(token_lists: list[list[int]], eos_token_id: int, context_length: int) -> list[list[int]]:
    """Concatenate token lists with EOS after each and cut into full blocks (the tail is dropped)."""
    stream: list[int] = []
    for tokens in token_lists:
        stream.extend(tokens)
        stream.append(eos_token_id)
    usable = len(stream) // context_length * context_length
    return [stream[i : i + context_length] for i in range(0, usable, context_length)]


class _TokenizeAndPack:
    """A picklable map function (datasets hashes it for the cache key)."""

    def __init__(self, tokenizer: Any, context_length: int):
        self.tokenizer = tokenizer
        self.context_length = context_length

    def __call__(self, batch: dict) -> dict:
        ids = self.tokenizer(batch["text"], add_special_tokens=False)["input_ids"]
        return {"input_ids": pack_token_lists(ids, self.tokenizer.eos_token_id, self.context_length)}


def packed_blocks(jsonl_file: Path, tokenizer: Any, context_length: int, cache_dir: Path, num_proc: int | None = None):
    """A `datasets.Dataset` of {"input_ids": [context_length ints]} blocks from a corpus jsonl file."""
    import datasets

    if not jsonl_file.is_file() or jsonl_file.stat().st_size == 0:
        return datasets.Dataset.from_dict({"input_ids": []})
    files = datasets.load_dataset("json", data_files=str(jsonl_file), split="train", cache_dir=str(cache_dir))
    blocks = files.map(
        _TokenizeAndPack(tokenizer, context_length),
        batched=True,
        batch_size=MAP_BATCH_FILES,
        remove_columns=files.column_names,
        num_proc=num_proc if num_proc and len(files) > MAP_BATCH_FILES * 2 else None,
        desc=f"tokenizing {jsonl_file.stem}",
    )
    return blocks.with_format("torch")
