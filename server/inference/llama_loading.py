"""Load a GGUF model (pinned, or a file) into the llama.cpp engine, with its adapter and draft model.

The counterpart of model_loading's torch path, and called from it (`load_model(engine=...)`):
the same model names, the same adapter checks (the gate's verdict, the base fingerprint), the
same `LoadedModel` for the server and the evaluation. `auto` is resolved by the caller
(tiers.auto_model), which passes the model it means and the TierChoice behind it.
"""

from __future__ import annotations

from pathlib import Path

from ghostframe.server.inference.adapter_checks import checked_adapter
from ghostframe.server.inference.default_model import PINNED_MODELS, ModelLoadError, gguf_of, pinned_gguf_path
from ghostframe.server.inference.gguf_adapter import gguf_lora_path
from ghostframe.server.inference.gguf_files import gguf_tokenizer_and_facts
from ghostframe.server.inference.llama_runtime import MAX_SUGGESTION_TOKENS, LlamaError, LlamaRuntime, RuntimeConfig
from ghostframe.server.inference.loaded_model import LoadedModel, stop_token_ids
from ghostframe.server.inference.progress import Reporter
from ghostframe.server.inference.tiers import TierChoice

# Speculative decoding with a draft model needs the same vocabulary: Qwen2.5-Coder's 0.5B drafts
# for its 1.5B (llama-server's own FIM presets pair them so).
DRAFT_MODELS = {"qwen2.5-coder-1.5b": "qwen2.5-coder-0.5b"}
# What `--speculation auto` means per model: the kind `ghostframe bench typing` measured faster than
# none. Empty while no kind pays on the CPUs measured (BENCHMARKS.md, "Typing in a large file").
SPECULATION_BY_MODEL: dict[str, str] = {}


def gguf_file(model: str, report: Reporter) -> tuple[Path, str]:
    """The GGUF file and display name for a pinned model's name (fetched and verified the first time)
    or a .gguf path."""
    found = gguf_of(model)
    if found is None:
        raise ModelLoadError(f"{model!r} is not a GGUF file or a pinned model; the llama.cpp engine reads GGUF only.")
    if model in PINNED_MODELS:
        return pinned_gguf_path(PINNED_MODELS[model], report), found[1]
    if not found[0].is_file():
        raise ModelLoadError(f"Model file {found[0]} does not exist.")
    return found


def adapter_gguf(adapter: str, base: Path, fingerprint: str, model_name: str, force: bool) -> Path:
    """The adapter's GGUF LoRA, after the checks the torch path makes (gate verdict, base fingerprint)."""
    return gguf_lora_path(checked_adapter(adapter, fingerprint, model_name, force), base)


def load_llama(model: str, adapter: str | None, report: Reporter = lambda _: None,
               force_adapter: bool = False, speculation: str = "none", why: str = "",
               prompt_tokens: int = 1024, tier: TierChoice | None = None) -> LoadedModel:
    """A LoadedModel whose `model` is a running llama_runtime.LlamaRuntime, each slot sized for
    `prompt_tokens` plus the longest suggestion. `model` is a pinned name or a .gguf path (`auto`
    resolved: `tier` says how)."""
    if speculation == "auto":
        speculation = SPECULATION_BY_MODEL.get(model, "none")
    gguf, name = gguf_file(model, report)
    tokenizer, facts = gguf_tokenizer_and_facts(gguf, report)
    lora = ()
    if adapter:
        report(f"loading adapter {adapter}")
        lora = ((adapter_gguf(adapter, gguf, facts.fingerprint, name, force_adapter), 1.0),)
    draft = None
    if speculation == "draft":
        if model not in DRAFT_MODELS:
            raise ModelLoadError(f"No draft model is known for {name}: speculation 'draft' pairs "
                                 + ", ".join(f"{d} with {m}" for m, d in DRAFT_MODELS.items()) + ".")
        draft = pinned_gguf_path(PINNED_MODELS[DRAFT_MODELS[model]], report)
    report(f"loading {name} in llama.cpp on cpu")
    try:
        slot_tokens = max(2048, -(-(prompt_tokens + MAX_SUGGESTION_TOKENS) // 256) * 256)
        runtime = LlamaRuntime(RuntimeConfig(gguf, slot_tokens=slot_tokens, speculation=speculation, draft=draft,
                                             lora=lora))
    except LlamaError as exc:
        raise ModelLoadError(str(exc)) from exc
    return LoadedModel(
        model=runtime, tokenizer=tokenizer, device="cpu", dtype=None, model_name=name,
        adapter=str(Path(adapter).expanduser().resolve()) if adapter else None, fingerprint=facts.fingerprint,
        stop_token_ids=stop_token_ids(tokenizer, facts.eos_token_id), precision=facts.weights,
        engine="llama.cpp", engine_reason=why, tier=tier)
