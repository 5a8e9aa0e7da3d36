"""One way to keep library progress bars and advice out of our output (server, trainer, bench, eval)."""

from __future__ import annotations

import os
import warnings


def quiet_transformers() -> None:
    """No weight-loading progress bars or advice from transformers."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def quiet_libraries(datasets: bool = False) -> None:
    """Keep stderr to our own messages and progress: the editor's log or the trainer's one bar."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    quiet_transformers()
    if datasets:
        import datasets as hf_datasets

        hf_datasets.disable_progress_bars()
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
