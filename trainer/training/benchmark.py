"""Training throughput: tokens/s and, on CUDA, model FLOPs utilisation (MFU).

Runs the real training step (LoRA or full, chunked loss, AdamW) on random tokens, so
no data is needed. Model FLOPs per token are

    6·N_trainable + 4·N_frozen + 2·N_forward_only + (2·layers + 4·layers_backward)·hidden·context

A weight costs 2 FLOPs per token forward, 2 for the gradient of its input and 2 for its
own gradient; a frozen weight (the base model under LoRA) skips the last, so it counts
4, and full fine-tuning gives the usual 6N. Weights of the layers below the lowest
trainable one (`--lora-layers`) only run forward, 2. N covers
all parameters including the output head; attention counts 2 forward in every layer and
4 backward in the layers that backward reaches. Recomputation (the chunked loss recomputes the
head's logits) is not counted, as MFU conventionally counts model FLOPs only. The
GPU's peak bf16 dense FLOP/s comes from a small table or GHOSTFRAME_PEAK_TFLOPS.
"""

from __future__ import annotations

import os
import sys
import time

import torch

from ghostframe.trainer.config import TrainConfig

PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "H800": 989.0, "A100": 312.0, "A10G": 125.0, "L4": 121.0,
                    "L40S": 362.0, "RTX 4090": 165.0, "RTX 3090": 71.0, "B200": 2250.0}


def peak_flops(device: str) -> float | None:
    if os.environ.get("GHOSTFRAME_PEAK_TFLOPS"):
        return float(os.environ["GHOSTFRAME_PEAK_TFLOPS"]) * 1e12
    if device != "cuda":
        return None
    name = torch.cuda.get_device_name()
    for key, tflops in PEAK_BF16_TFLOPS.items():
        if key in name:
            return tflops * 1e12
    return None


FLOPS_FORMULA = "6*N_trainable + 4*N_frozen + 2*N_forward_only + (2*layers + 4*layers_backward)*hidden*context"


def decoder_layer_index(name: str) -> int | None:
    """The decoder layer a parameter or module belongs to, from its name (`model.layers.7.mlp...`: 7);
    None outside the layers (embeddings, final norm, LM head)."""
    parts = name.split(".")
    return int(parts[parts.index("layers") + 1]) if "layers" in parts else None


def flops_per_token(model, context_length: int) -> float:
    """Training FLOPs per token by FLOPS_FORMULA (see the module docstring)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    cfg = base.config
    params = [(decoder_layer_index(n), p) for n, p in model.named_parameters()]
    # backward reaches down to the lowest trainable layer; a trainable weight outside the layers
    # (an embedding) takes it to the bottom. The embedding itself stays at 4: it is (or is like) the head.
    trainable_layers = [index for index, p in params if p.requires_grad]
    lowest = 0 if None in trainable_layers else min(trainable_layers, default=0)
    trainable = sum(p.numel() for _, p in params if p.requires_grad)
    below = sum(p.numel() for index, p in params if not p.requires_grad and index is not None and index < lowest)
    frozen = sum(p.numel() for _, p in params if not p.requires_grad) - below
    layers = cfg.num_hidden_layers
    return (6 * trainable + 4 * frozen + 2 * below
            + (2 * layers + 4 * (layers - lowest)) * cfg.hidden_size * context_length)


def run_benchmark(cfg: TrainConfig, steps: int = 10, warmup_steps: int = 3, random_shape: str | None = None) -> dict:
    """Time `steps` optimizer steps after `warmup_steps` and print tokens/s (and MFU on CUDA)."""
    from ghostframe.server.inference.model_loading import pick_device
    from ghostframe.trainer.training.loss import CausalLMLoss
    from ghostframe.trainer.training.loop import build_model

    device, dtype = pick_device(cfg.device)
    cfg = cfg.for_device(device)
    report = lambda m: print(f"ghostframe-train: {m}", file=sys.stderr, flush=True)  # noqa: E731
    if random_shape:
        import tempfile

        from ghostframe.server.testing.random_model import build_random_model

        cfg.model = str(build_random_model(tempfile.mkdtemp(prefix="ghostframe-bench-"), shape=random_shape))
    tokenizer, model, name, _, _ = build_model(cfg, device, dtype, report)
    model.to(device)
    loss_module = CausalLMLoss(model, chunk_tokens=cfg.chunk_tokens).to(device)
    if cfg.compile:
        loss_module.compile_decoder()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-4, fused=device == "cuda")
    vocab = model.get_input_embeddings().weight.shape[0]
    batch = torch.randint(0, vocab, (cfg.batch_size, cfg.context_length), device=device)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device == "cuda" else torch.autocast("cpu", enabled=False)

    def one_step():
        for _ in range(cfg.grad_accum):
            with autocast:
                loss = loss_module(batch) / cfg.grad_accum
            loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss

    for _ in range(warmup_steps):
        one_step()
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    for _ in range(steps):
        loss = one_step()
    loss.item()
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    tokens = steps * cfg.grad_accum * cfg.batch_size * cfg.context_length
    result = {
        "model": name, "device": device if device == "cpu" else torch.cuda.get_device_name(),
        "mode": "full" if cfg.full else f"lora r={cfg.lora_r}", "batch_size": cfg.batch_size,
        "grad_accum": cfg.grad_accum, "context_length": cfg.context_length, "chunked_loss": loss_module.chunked,
        "compile": cfg.compile, "steps": steps, "seconds": round(seconds, 3),
        "tokens_per_second": round(tokens / seconds, 1),
    }
    peak = peak_flops(device)
    if peak:
        result["mfu"] = round(tokens / seconds * flops_per_token(model, cfg.context_length) / peak, 4)
        result["mfu_flops_per_token"] = FLOPS_FORMULA
    if device == "cuda":
        result["peak_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return result
