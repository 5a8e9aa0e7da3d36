"""Adapters as llama.cpp GGUF LoRAs (server/inference/gguf_adapter.py): names, layouts, scale and the
base fingerprint as llama.cpp and the server read them, refusals with their reasons, and llama.cpp
running a pinned model with an exported adapter as torch runs it with the peft adapter."""

from __future__ import annotations

import json
import os
from pathlib import Path

import gguf
import numpy as np
import pytest
import torch

from ghostframe.server.inference.default_model import PINNED_MODELS, ModelLoadError, pinned_gguf_path
from ghostframe.server.inference.gguf_files import converted_gguf_dir
from ghostframe.server.inference.gguf_adapter import (
    check_gguf_lora_base,
    export_gguf_lora,
    gguf_base_fingerprint,
    gguf_lora_path,
)
from ghostframe.server.inference.model_loading import ADAPTER_METADATA, base_model_fingerprint
from ghostframe.server.testing.random_model import build_random_model

PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
MLP = {"gate_proj", "up_proj", "down_proj"}
# What llama.cpp calls each projection in a llama or qwen2 GGUF (llama-arch.cpp's LLM_TENSOR_NAMES).
LLAMA_CPP_NAMES = {"q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_output",
                   "gate_proj": "ffn_gate", "up_proj": "ffn_up", "down_proj": "ffn_down"}


def make_lora(base: Path, out: Path, sigma: float | None = None, metadata: bool = True, **lora):
    """A peft LoRA on `base` with random, non-zero A and B (B ~ N(0, sigma) when given), saved in
    `out` as ghostframe-train saves one (ghostframe.json with the base's name, fingerprint, source)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    fingerprint = base_model_fingerprint(model)
    torch.manual_seed(0)
    settings = dict(task_type="CAUSAL_LM", r=4, lora_alpha=8, target_modules=PROJECTIONS, init_lora_weights=False)
    peft_model = get_peft_model(model, LoraConfig(**{**settings, **lora}))
    if sigma is not None:
        with torch.no_grad():
            for name, weight in peft_model.named_parameters():
                if "lora_B" in name:
                    weight.normal_(0, sigma)
    peft_model.save_pretrained(out)
    if metadata:
        (out / ADAPTER_METADATA).write_text(json.dumps(
            {"base_model": {"name": Path(base).name, "fingerprint": fingerprint, "source": str(base)}}))
    return peft_model.eval()


def rope_pair_order(rows: int, n_head: int) -> list[int]:
    """Where each row of a llama GGUF's q/k comes from: in each head, Hugging Face keeps the two
    halves that RoPE rotates together apart (i, i + d/2); the GGUF keeps them adjacent (2i, 2i+1)."""
    d = rows // n_head
    return [h * d + half * (d // 2) + i for h in range(n_head) for i in range(d // 2) for half in (0, 1)]


def read_gguf(path: Path) -> tuple[dict, dict]:
    reader = gguf.GGUFReader(path)
    kv = {key: field.contents() for key, field in reader.fields.items() if not key.startswith("GGUF.")}
    return kv, {t.name: t for t in reader.tensors}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    """Random-weight bases of both architectures (4 heads, 2 key/value heads, 2 layers)."""
    root = tmp_path_factory.mktemp("bases")
    return {"llama": build_random_model(root / "tiny", "tiny"),
            "qwen2": build_random_model(root / "tiny-qwen2", "tiny-qwen2")}


def smollm2_gguf() -> Path:
    return pinned_gguf_path(PINNED_MODELS["smollm2-135m"])


# --------------------------------------------------------------------------- what is written


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_export_writes_llama_cpp_names_layouts_scale_and_base(tmp_path, tiny, arch):
    peft_model = make_lora(tiny[arch], tmp_path / "adapter")
    path = export_gguf_lora(tmp_path / "adapter")
    assert path == tmp_path / "adapter" / "adapter.gguf"
    kv, tensors = read_gguf(path)
    meta = json.loads((tmp_path / "adapter" / ADAPTER_METADATA).read_text())["base_model"]
    assert kv == {"general.architecture": arch, "general.type": "adapter", "adapter.type": "lora",
                  "adapter.lora.alpha": 8.0, "ghostframe.base_model.fingerprint": meta["fingerprint"],
                  "ghostframe.base_model.name": meta["name"]}
    assert set(tensors) == {f"blk.{i}.{LLAMA_CPP_NAMES[p]}.weight.lora_{x}"
                            for i in range(2) for p in PROJECTIONS for x in "ab"}

    config = peft_model.get_base_model().config
    modules = dict(peft_model.named_modules())
    for i in range(2):
        for proj in PROJECTIONS:
            module = modules[f"base_model.model.model.layers.{i}.{'mlp' if proj in MLP else 'self_attn'}.{proj}"]
            a_torch, b_torch = (module.lora_A["default"].weight.detach().numpy(),
                                module.lora_B["default"].weight.detach().numpy())
            a, b = (tensors[f"blk.{i}.{LLAMA_CPP_NAMES[proj]}.weight.lora_{x}"] for x in "ab")
            # ggml order, as llama-adapter.cpp checks it: a is [n_in, r], b is [r, n_out]
            assert list(a.shape) == [module.in_features, 4] and list(b.shape) == [4, module.out_features]
            assert a.tensor_type == b.tensor_type == gguf.GGMLQuantizationType.F32
            np.testing.assert_array_equal(a.data, a_torch)
            heads = {"q_proj": config.num_attention_heads, "k_proj": config.num_key_value_heads}.get(proj)
            if arch == "llama" and heads:
                np.testing.assert_array_equal(b.data, b_torch[rope_pair_order(b_torch.shape[0], heads)])
                assert not np.array_equal(b.data, b_torch)
            else:  # qwen2's conversion keeps Hugging Face's rows, and nothing else is permuted
                np.testing.assert_array_equal(b.data, b_torch)
            assert module.scaling["default"] == kv["adapter.lora.alpha"] / 4  # llama.cpp's alpha / r


def test_rslora_is_written_as_the_alpha_that_gives_its_scale(tmp_path, tiny):
    peft_model = make_lora(tiny["llama"], tmp_path / "adapter", use_rslora=True)
    kv, _ = read_gguf(export_gguf_lora(tmp_path / "adapter"))
    peft_scale = dict(peft_model.named_modules())["base_model.model.model.layers.0.self_attn.q_proj"].scaling["default"]
    assert peft_scale == 8 / 2  # alpha / sqrt(r)
    assert kv["adapter.lora.alpha"] / 4 == pytest.approx(peft_scale, rel=1e-7)


# --------------------------------------------------------------------------- what is refused


@pytest.mark.parametrize("lora, message", [
    (dict(target_modules=["q_proj", "lm_head"]), "'lm_head' .*the output head"),
    (dict(target_modules=["q_proj", "embed_tokens"]), "'model.embed_tokens' .*the token embeddings"),
    (dict(modules_to_save=["lm_head"]), r"saves whole modules \(lm_head\).*modules_to_save"),
    (dict(use_dora=True), "DoRA"),
    (dict(bias="lora_only"), "trains biases"),
    (dict(rank_pattern={"q_proj": 2}), "rank per module"),
])
def test_what_llama_cpp_cannot_apply_is_refused_with_the_reason(tmp_path, tiny, lora, message):
    make_lora(tiny["llama"], tmp_path / "adapter", **lora)
    with pytest.raises(ModelLoadError, match=f"cannot be exported for llama.cpp: .*{message}"):
        export_gguf_lora(tmp_path / "adapter")
    assert sorted(p.name for p in (tmp_path / "adapter").iterdir() if "gguf" in p.name) == []


def test_a_full_fine_tune_has_no_adapter_to_export(tiny):
    with pytest.raises(ModelLoadError, match="not a LoRA adapter folder .*full fine-tune"):
        export_gguf_lora(tiny["llama"])


def test_without_metadata_or_a_base_the_export_says_what_it_needs(tmp_path, tiny):
    make_lora(tiny["llama"], tmp_path / "adapter", metadata=False)
    config = tmp_path / "adapter" / "adapter_config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "base_model_name_or_path": None}))
    with pytest.raises(ModelLoadError, match="does not say which base model .*--model BASE.gguf"):
        export_gguf_lora(tmp_path / "adapter")


# --------------------------------------------------------------------------- beside the adapter


def test_an_adapter_without_an_up_to_date_gguf_is_exported_into_the_cache_not_beside_it(tmp_path, tiny, monkeypatch):
    from safetensors.torch import load_file, save_file

    monkeypatch.setenv("GHOSTFRAME_CACHE_DIR", str(tmp_path / "cache"))
    adapter = tmp_path / "adapter"
    make_lora(tiny["llama"], adapter)
    listed = sorted(p.name for p in adapter.iterdir())
    path = gguf_lora_path(adapter)
    assert path.is_file() and (tmp_path / "cache") in path.parents
    assert sorted(p.name for p in adapter.iterdir()) == listed  # the user's folder is left as it was
    written = path.stat().st_mtime_ns
    assert gguf_lora_path(adapter) == path and path.stat().st_mtime_ns == written  # up to date: kept

    weights = adapter / "adapter_model.safetensors"  # trained further: new weights, a newer file
    save_file({k: v * 2 if "lora_B" in k else v for k, v in load_file(weights).items()}, weights)
    later = path.stat().st_mtime + 5
    os.utime(weights, (later, later))
    before = read_gguf(path)[1]["blk.0.attn_v.weight.lora_b"].data.copy()
    after = read_gguf(gguf_lora_path(adapter))[1]["blk.0.attn_v.weight.lora_b"].data
    np.testing.assert_array_equal(after, 2 * before)

    beside = export_gguf_lora(adapter)  # what ghostframe-train writes: used as it is once up to date
    os.utime(beside, (later + 1, later + 1))  # written after the weights (whose time was set ahead above)
    assert beside == adapter / "adapter.gguf" and gguf_lora_path(adapter) == beside.resolve()


def test_a_failed_export_at_the_end_of_training_warns(tmp_path):
    from ghostframe.trainer.training.loop import write_gguf_lora

    messages = []
    write_gguf_lora(tmp_path, messages.append)
    assert len(messages) == 1 and messages[0].startswith("warning: no llama.cpp adapter (adapter.gguf) was written")
    assert "not a LoRA adapter folder" in messages[0]


def test_a_training_run_writes_the_gguf_beside_the_adapter(tmp_path, tiny):
    from trainer_fixtures import make_repo, train_args

    from ghostframe.trainer.cli import main

    out = tmp_path / "run"
    assert main(train_args(make_repo(tmp_path / "repo", files=12), tiny["llama"], out, 2)) == 0
    kv, tensors = read_gguf(out / "adapter.gguf")
    assert kv["ghostframe.base_model.fingerprint"] == json.loads((out / ADAPTER_METADATA).read_text())["base_model"]["fingerprint"]
    assert kv["adapter.lora.alpha"] == json.loads((out / "adapter_config.json").read_text())["lora_alpha"]
    assert {f"blk.1.{name}.weight.lora_b" for name in LLAMA_CPP_NAMES.values()} <= set(tensors)


def test_ghostframe_train_export_gguf(tmp_path, tiny, capsys):
    from ghostframe.trainer.cli import main

    make_lora(tiny["qwen2"], tmp_path / "adapter")
    assert main(["--export-gguf", str(tmp_path / "adapter")]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "adapter" / "adapter.gguf")
    assert read_gguf(tmp_path / "adapter" / "adapter.gguf")[0]["general.architecture"] == "qwen2"
    assert main(["--export-gguf", str(tiny["qwen2"])]) == 1
    assert "error: " in (err := capsys.readouterr().err) and "not a LoRA adapter folder" in err


# --------------------------------------------------------------------------- against the real base


@pytest.mark.default_model
def test_the_gguf_fingerprint_is_the_one_the_trainer_records():
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(converted_gguf_dir(smollm2_gguf()))
    assert gguf_base_fingerprint(smollm2_gguf()) == base_model_fingerprint(model)


@pytest.mark.slow
@pytest.mark.default_model
def test_an_adapter_for_another_base_is_refused_with_the_base_it_needs(tmp_path, tiny, capsys):
    from ghostframe.trainer.cli import main

    make_lora(tiny["llama"], tmp_path / "llama")
    with pytest.raises(ModelLoadError, match="was trained for base model 'tiny' .*Serve the adapter with its base"):
        export_gguf_lora(tmp_path / "llama", base_gguf=smollm2_gguf())
    assert main(["--export-gguf", str(tmp_path / "llama"), "--model", "smollm2-135m"]) == 1
    assert "was trained for base model 'tiny'" in capsys.readouterr().err
    gguf_lora_path(tmp_path / "llama")  # exported without a base: then refused when served on SmolLM2
    with pytest.raises(ModelLoadError, match="was trained for base model 'tiny'"):
        gguf_lora_path(tmp_path / "llama", base_gguf=smollm2_gguf())

    make_lora(tiny["llama"], tmp_path / "anonymous", metadata=False)  # no fingerprint: the shapes tell
    with pytest.raises(ModelLoadError, match=r"does not fit base model .*blk.0.attn_k LoRA maps 64 to 32 values, "
                                             r"the base's blk.0.attn_k.weight is \[576, 192\]"):
        export_gguf_lora(tmp_path / "anonymous", base_gguf=smollm2_gguf())

    make_lora(tiny["qwen2"], tmp_path / "qwen2")
    with pytest.raises(ModelLoadError, match="is for a qwen2 base model, but .* is a llama model"):
        check_gguf_lora_base(export_gguf_lora(tmp_path / "qwen2"), smollm2_gguf())


# --------------------------------------------------------------------------- llama.cpp agrees with torch

PROMPTS = [
    "import pandas as pd\n\ndf = pd.read_csv(",
    "import numpy as np\n\ndef normalize(x):\n    return",
    "from sklearn.model_selection import train_test_split\n\nX_train, X_test, y_train, y_test =",
    "import matplotlib.pyplot as plt\n\nfig, ax = plt.subplots(",
    "def load_data(path):\n    with open(path) as f:\n        return",
    "df = df.dropna()\ndf['total'] = df['price'] *",
    "for i, row in df.iterrows():\n    print(",
    "class Model:\n    def __init__(self, lr=0.01):\n        self.lr =",
]
NEW_TOKENS = 16
LOGPROB_TOLERANCE = 0.5  # see check_agreement


def torch_run(model, prompts: list[list[int]]) -> tuple[list[list[int]], list[torch.Tensor]]:
    """Greedy tokens (never stopped early: llama.cpp runs with ignore_eos) and the first token's log-probs."""
    tokens, first = [], []
    for ids in prompts:
        x = torch.tensor([ids])
        with torch.no_grad():
            first.append(torch.log_softmax(model(x).logits[0, -1], -1))
            out = model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=NEW_TOKENS, do_sample=False,
                                 eos_token_id=None, pad_token_id=0)
        tokens.append(out[0, len(ids):].tolist())
        assert len(tokens[-1]) == NEW_TOKENS
    return tokens, first


def llama_run(base_gguf: Path, lora: Path | None, prompts: list[list[int]]) -> tuple[list[list[int]], list[dict]]:
    """The same in llama.cpp (xllamacpp): greedy tokens and the first token's top-5 log-probs."""
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(base_gguf)
    params.n_ctx, params.n_parallel, params.warmup = 256, 1, False
    params.cpuparams.n_threads = params.cpuparams_batch.n_threads = 2
    if lora is not None:
        params.lora_adapters = [xllamacpp.CommonAdapterLoraInfo(str(lora), 1.0)]
    server = xllamacpp.Server(params)
    tokens, first = [], []
    for ids in prompts:
        chunks = []
        server.handle_completions({"prompt": ids, "max_tokens": NEW_TOKENS, "temperature": 0, "cache_prompt": False,
                                   "ignore_eos": True, "stream": True, "logprobs": 5}, chunks.append)
        steps = [step for chunk in chunks if chunk.get("choices")
                 for step in (chunk["choices"][0].get("logprobs") or {}).get("content") or []]
        assert len(steps) == NEW_TOKENS, chunks[-1]
        tokens.append([step["id"] for step in steps])
        first.append({top["id"]: top["logprob"] for top in steps[0]["top_logprobs"]})
    del server
    return tokens, first


def common_prefix(a: list[int], b: list[int]) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), len(a))


def compare(torch_result, llama_result) -> dict:
    """How many prompts agree on the first token and on all 16, each prompt's agreeing prefix, the
    largest gap between the first token's log-probs (over llama.cpp's top 5), and where the first
    tokens differ, how far below torch's best torch puts llama.cpp's choice."""
    (torch_tokens, torch_first), (llama_tokens, llama_first) = torch_result, llama_result
    return {"first": sum(t[0] == l[0] for t, l in zip(torch_tokens, llama_tokens)),
            "first_margin": [round((lp.max() - lp[l[0]]).item(), 3)
                             for t, l, lp in zip(torch_tokens, llama_tokens, torch_first) if t[0] != l[0]],
            "all": sum(t == l for t, l in zip(torch_tokens, llama_tokens)),
            "prefix": [common_prefix(t, l) for t, l in zip(torch_tokens, llama_tokens)],
            "logprob_gap": [round(max(abs(t[i].item() - lp) for i, lp in l.items()), 3)
                            for t, l in zip(torch_first, llama_first)]}


def changed(base_result, lora_result) -> tuple[int, int]:
    """On how many prompts the adapter changes the first token, and the 16 tokens."""
    pairs = list(zip(base_result[0], lora_result[0]))
    return sum(b[0] != a[0] for b, a in pairs), sum(b != a for b, a in pairs)


def agreement(pinned: str, tmp_path: Path, sigma: float) -> dict:
    """Torch on the dequantized Hugging Face folder (fp32) with the peft adapter vs llama.cpp on the
    pinned GGUF with the exported adapter; the same for the base alone. `sigma` (of B) is chosen so
    that the adapter moves the first token's log-probs by several units: enough to change greedy
    tokens, not so much that quantization noise is amplified with it (Qwen at sigma 0.08 moves
    them by ~22, and the two engines then differ by ~2 on every prompt)."""
    from transformers import AutoTokenizer

    base_gguf = pinned_gguf_path(PINNED_MODELS[pinned])
    folder = converted_gguf_dir(base_gguf)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    prompts = [tokenizer(p)["input_ids"] for p in PROMPTS]
    peft_model = make_lora(folder, tmp_path / "adapter", sigma=sigma, r=8, lora_alpha=16)
    lora = gguf_lora_path(tmp_path / "adapter", base_gguf)
    with peft_model.disable_adapter():
        torch_base = torch_run(peft_model, prompts)
    torch_lora = torch_run(peft_model, prompts)
    llama_base, llama_lora = llama_run(base_gguf, None, prompts), llama_run(base_gguf, lora, prompts)
    return {"adapter": compare(torch_lora, llama_lora), "base": compare(torch_base, llama_base),
            "ignored_gap": compare(torch_lora, llama_base)["logprob_gap"],  # if llama.cpp dropped the adapter
            "changed_torch": changed(torch_base, torch_lora), "changed_llama": changed(llama_base, llama_lora)}


def check_agreement(figures: dict) -> None:
    """The tolerance. llama.cpp runs the GGUF's quantized weights (and Q8 activations in its dot
    products), torch the same weights dequantized to fp32, so logits differ by quantization noise:
    on SmolLM2's base alone the first token's log-probs differ by up to ~0.35 and greedy sequences
    part after 2 to 16 tokens (the base's own figures are in the message). So: the first token's
    top-5 log-probs agree within 0.5 on every prompt, and the first token itself on all but one,
    that one a near tie (torch ranks llama.cpp's token within 0.5 of its best); whole sequences
    agree about as often as the base's do (3 of 8), and on average for half of the 16 tokens or
    more. SmolLM2's adapter written without the q/k permutation misses all of these (log-prob gaps
    0.5 to 2.3, a first token 1.1 below torch's best, no whole sequence, 2.8 tokens on average)."""
    n = len(PROMPTS)
    adapter = figures["adapter"]
    assert max(adapter["logprob_gap"]) < LOGPROB_TOLERANCE, figures
    assert adapter["first"] >= n - 1 and all(m < LOGPROB_TOLERANCE for m in adapter["first_margin"]), figures
    assert adapter["all"] >= 3 and sum(adapter["prefix"]) / n >= NEW_TOKENS / 2, figures
    # and the adapter matters: llama.cpp without it would be outside the tolerance on every prompt,
    # and it changes first tokens and most sequences, in torch and in llama.cpp alike
    assert min(figures["ignored_gap"]) > LOGPROB_TOLERANCE, figures
    for first, sequences in (figures["changed_torch"], figures["changed_llama"]):
        assert first >= 2 and sequences >= n - 2, figures


@pytest.mark.slow
@pytest.mark.default_model
@pytest.mark.timeout(1800)  # a real model dequantized and run on both engines: longer than the default limit
def test_llama_cpp_with_the_exported_adapter_agrees_with_torch_on_smollm2(tmp_path):
    """SmolLM2 is a llama GGUF: its q/k rows are permuted, so is the adapter's B."""
    check_agreement(agreement("smollm2-135m", tmp_path, sigma=0.15))


@pytest.mark.slow
@pytest.mark.default_model
@pytest.mark.timeout(1800)  # a real model dequantized and run on both engines: longer than the default limit
def test_llama_cpp_with_the_exported_adapter_agrees_with_torch_on_qwen2(tmp_path):
    """Qwen2.5-Coder-0.5B is a qwen2 GGUF: nothing is permuted."""
    check_agreement(agreement("qwen2.5-coder-0.5b", tmp_path, sigma=0.04))
