"""Random-weight models as GGUF files, for the llama.cpp engine's tests without downloads.

The same tiny models as random_model.py (a Llama and a Qwen2 with its fill-in-the-middle
tokens), written the way llama.cpp's own converter writes them: its tensor names (the gguf
package's map), q/k rows permuted for Llama's RoPE layout, the BPE vocabulary with its merges.
Weights stay float32, so llama.cpp and torch run the same numbers.
"""

from __future__ import annotations

from pathlib import Path

from ghostframe.server.testing.random_model import QWEN2_SHAPES, build_random_model


def build_random_gguf(path: str | Path, shape: str = "tiny", seed: int = 0) -> tuple[Path, Path]:
    """Write `shape` (tiny or tiny-qwen2) as a GGUF file; returns (the .gguf file, its Hugging Face folder)."""
    import json

    import gguf
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ghostframe.server.inference.gguf_adapter import _permute_rows

    path = Path(path)
    folder = build_random_model(path / "hf", shape=shape, seed=seed)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    config = model.config
    qwen2 = shape in QWEN2_SHAPES
    arch = gguf.MODEL_ARCH.QWEN2 if qwen2 else gguf.MODEL_ARCH.LLAMA
    out = path / f"{shape}.gguf"
    writer = gguf.GGUFWriter(out, gguf.MODEL_ARCH_NAMES[arch])
    writer.add_name(f"random {shape}")
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_rope_freq_base(config.rope_theta if hasattr(config, "rope_theta") else config.rope_parameters["rope_theta"])
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_rope_dimension_count(config.hidden_size // config.num_attention_heads)
    writer.add_vocab_size(config.vocab_size)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)

    vocab = tokenizer.get_vocab()
    tokens = [""] * config.vocab_size
    for token, index in vocab.items():
        tokens[index] = token
    special = set(tokenizer.all_special_ids)
    tokens = [token or f"[PAD{i}]" for i, token in enumerate(tokens)]
    types = [gguf.TokenType.CONTROL if i in special else gguf.TokenType.NORMAL if i < len(vocab)
             else gguf.TokenType.UNUSED for i in range(config.vocab_size)]
    merges = [" ".join(pair) if isinstance(pair, (list, tuple)) else pair
              for pair in json.loads(tokenizer.backend_tokenizer.to_str())["model"]["merges"]]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("qwen2" if qwen2 else "gpt-2")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    writer.add_bos_token_id(tokenizer.bos_token_id)
    writer.add_eos_token_id(tokenizer.eos_token_id)
    writer.add_add_bos_token(False)

    names = gguf.get_tensor_name_map(arch, config.num_hidden_layers)
    heads, kv_heads = config.num_attention_heads, config.num_key_value_heads
    for name, tensor in model.state_dict().items():
        if name == "lm_head.weight" and config.tie_word_embeddings:
            continue
        data = tensor.detach().float().numpy()
        if not qwen2 and name.endswith("q_proj.weight"):
            data = _permute_rows(data, heads)
        elif not qwen2 and name.endswith("k_proj.weight"):
            data = _permute_rows(data, kv_heads)
        base, _, suffix = name.rpartition(".")
        mapped = names.get_name(base)
        if mapped is None:
            raise ValueError(f"no GGUF name for {name}")
        writer.add_tensor(f"{mapped}.{suffix}", data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out, folder
