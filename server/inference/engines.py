"""Which engine runs a loaded model: the one module that knows every engine (so none imports another)."""

from __future__ import annotations

from ghostframe.server.inference.engine import (MAX_CACHED_DOCUMENTS, NO_SPEEDUPS, CompletionEngine, SpeedOptions,
                                                TorchEngine)
from ghostframe.server.inference.llama_engine import LlamaEngine
from ghostframe.server.inference.loaded_model import LoadedModel
from ghostframe.server.inference.reference_engine import ReferenceEngine
from ghostframe.server.inference.remote_engine import RemoteEngine


def make_engine(loaded: LoadedModel, options: SpeedOptions = SpeedOptions(),
                max_cached_documents: int = MAX_CACHED_DOCUMENTS) -> CompletionEngine:
    """The engine that runs `loaded` (model_loading decided which when it loaded it); with `options.plain`
    the reference: transformers' generate for a torch model, llama.cpp with every speed-up off."""
    if loaded.engine == "remote":
        return RemoteEngine(loaded, NO_SPEEDUPS if options.plain else options, max_cached_documents)
    if loaded.engine == "llama.cpp":
        return LlamaEngine(loaded, NO_SPEEDUPS if options.plain else options, max_cached_documents)
    if options.plain:
        return ReferenceEngine(loaded)
    return TorchEngine(loaded, options, max_cached_documents)
