"""End-to-end tests of ghostframe-train on a tiny random model: loss, output, resume, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ghostframe.server.inference.model_loading import ADAPTER_METADATA, ModelLoadError, load_model
from ghostframe.trainer.training.checkpoints import checkpoint_dirs
from ghostframe.trainer.cli import main
from ghostframe.trainer.training.loss import CausalLMLoss, keytoken_ids
from ghostframe.trainer.training.metrics import read_metrics
from ghostframe.trainer.training.loop import batch_indices
from trainer_fixtures import (
    KILL_AFTER_SAVE,
    build_tiny_model,
    disk_full_at_save,
    free_port,
    interrupt_at_step,
    make_repo,
    train_args,
)

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    return make_repo(tmp_path_factory.mktemp("repos") / "repo")


def run_cli(args: list[str], timeout: int = 180, kill_after_save: int | None = None) -> subprocess.CompletedProcess:
    """ghostframe-train in a child process (SIGKILLed after saving checkpoint `kill_after_save`, if given)."""
    start = ["-m", "ghostframe.trainer"] if kill_after_save is None else ["-c", KILL_AFTER_SAVE, str(kill_after_save)]
    return subprocess.run([sys.executable, *start, *args], capture_output=True, text=True,
                          env=dict(os.environ), timeout=timeout, cwd=REPO_ROOT)


def trained_weights(output: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(output / "adapter_model.safetensors"))


# --------------------------------------------------------------------------- the main path


@pytest.mark.slow
def test_training_lowers_the_loss_and_writes_an_adapter_the_server_loads(tmp_path, tiny, repo, capsys):
    out = tmp_path / "adapter"
    assert main(train_args(repo, tiny, out, 24)) == 0
    err = capsys.readouterr().err
    assert "files seen 42, kept 41" in err and "valid perplexity" in err and "--adapter" in err

    history = read_metrics(out / "metrics.jsonl")
    train = [r["loss"] for r in history if r["split"] == "train"]
    valid = [r["loss"] for r in history if r["split"] == "valid"]
    assert train[-1] < train[0] - 0.1
    assert valid[-1] < valid[0] - 0.1
    assert all(r["tokens_per_second"] > 0 for r in history if r["split"] == "train")

    files = {p.name for p in out.iterdir()}
    assert {"adapter_model.safetensors", "adapter_config.json", "tokenizer.json", ADAPTER_METADATA,
            "metrics.jsonl", "loss.png"} <= files
    assert not [name for name in files if name.endswith((".bin", ".pt", ".pth"))]
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    assert (out / "loss.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "work" / "config.json").is_file()

    meta = json.loads((out / ADAPTER_METADATA).read_text())
    assert meta["kind"] == "lora" and meta["base_model"]["name"] == "tiny"
    assert meta["data"]["files_seen"] == 42 and meta["data"]["files_kept"] == 41
    assert meta["data"]["skipped"]["skipped_no_keyword"] == 1
    assert meta["config"]["lora_r"] == 16 and meta["config"]["lora_targets"] == "all-linear"
    assert meta["metrics"]["valid_perplexity_after"] < meta["metrics"]["valid_perplexity_before"]
    assert {"torch", "transformers", "peft"} <= set(meta["versions"])

    adapter_config = json.loads((out / "adapter_config.json").read_text())
    assert adapter_config["task_type"] == "CAUSAL_LM" and adapter_config["r"] == 16
    targeted = {name.rsplit(".", 1)[-1] for name in adapter_config["target_modules"]}
    assert targeted == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}

    loaded = load_model(model=str(tiny), adapter=str(out), device="cpu")
    assert loaded.fingerprint == meta["base_model"]["fingerprint"]
    prompt = loaded.tokenizer("df = pd.read_csv(", return_tensors="pt")
    generated = loaded.model.generate(**prompt, max_new_tokens=5, do_sample=False)
    assert generated.shape[1] > prompt["input_ids"].shape[1]

    other = build_tiny_model(tmp_path / "other", seed=1)
    with pytest.raises(ModelLoadError, match="was trained for base model"):
        load_model(model=str(other), adapter=str(out), device="cpu")


@pytest.mark.slow
def test_kill_and_resume_ends_like_an_uninterrupted_run(tmp_path, tiny, repo):
    straight = tmp_path / "straight"
    assert main(train_args(repo, tiny, straight, 12)) == 0

    killed = tmp_path / "killed"
    done = run_cli(train_args(repo, tiny, killed, 12), kill_after_save=4)
    assert done.returncode == -9, done.stderr[-2000:]
    assert [p.name for p in checkpoint_dirs(killed / "work" / "checkpoints")] == ["step-00000004"]
    assert not (killed / "adapter_model.safetensors").exists()

    assert main(train_args(repo, tiny, killed, 12, "--resume")) == 0
    a, b = trained_weights(straight), trained_weights(killed)
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-4, atol=1e-5)
    strip = lambda rows: [(r["step"], r["split"], round(r["loss"], 4)) if "loss" in r else r for r in rows]  # noqa: E731
    assert strip(read_metrics(straight / "metrics.jsonl")) == strip(read_metrics(killed / "metrics.jsonl"))


def test_data_order_is_a_pure_function_of_the_step():
    seen = [i for step in range(5) for i in batch_indices(step, 0, 0, 1, 4, 1, 20, seed=3)]
    assert sorted(seen) == list(range(20))  # one epoch visits every block once
    assert batch_indices(7, 0, 0, 1, 4, 1, 20, 3) == batch_indices(7, 0, 0, 1, 4, 1, 20, 3)
    ranks = [set(batch_indices(2, m, r, 2, 2, 2, 100, 3)) for m in range(2) for r in range(2)]
    assert len(set().union(*ranks)) == 8  # ranks and micro-batches never share a block


# --------------------------------------------------------------------------- bad input and faults


@pytest.mark.slow
def test_ctrl_c_saves_a_checkpoint_and_says_how_to_resume(tmp_path, tiny, repo, capsys, monkeypatch):
    out = tmp_path / "run"
    with monkeypatch.context() as patch:
        interrupt_at_step(patch, 6)
        assert main(train_args(repo, tiny, out, 12)) == 130
    err = capsys.readouterr().err
    assert "Stopped at step 6 of 12" in err and "--resume" in err
    assert checkpoint_dirs(out / "work" / "checkpoints")[-1].name == "step-00000006"
    assert main(["--output", str(out), "--resume", "--quiet"]) == 0  # the command it printed
    assert "resumed from" in capsys.readouterr().err
    meta = json.loads((out / ADAPTER_METADATA).read_text())
    assert meta["metrics"]["steps"] == 12 and meta["config"]["context_length"] == 64
    assert (out / "adapter_model.safetensors").is_file()


def test_out_of_disk_space_while_checkpointing_keeps_the_previous_checkpoint(tmp_path, tiny, repo, capsys, monkeypatch):
    out = tmp_path / "run"
    disk_full_at_save(monkeypatch, 8)
    assert main(train_args(repo, tiny, out, 12)) == 1
    err = capsys.readouterr().err
    assert "out of disk space" in err and "step-00000004 is intact" in err and "--resume" in err
    assert [p.name for p in (out / "work" / "checkpoints").iterdir()] == ["step-00000004"]


def test_a_corrupt_checkpoint_is_reported_and_the_previous_one_used(tmp_path, tiny, repo, capsys, monkeypatch):
    out = tmp_path / "run"
    with monkeypatch.context() as patch:
        interrupt_at_step(patch, 9)
        assert main(train_args(repo, tiny, out, 12)) == 130
    latest = checkpoint_dirs(out / "work" / "checkpoints")[-1]
    (latest / "trainable.safetensors").write_bytes(b"garbage")
    capsys.readouterr()
    assert main(train_args(repo, tiny, out, 12, "--resume")) == 0
    err = capsys.readouterr().err
    assert f"Checkpoint {latest} is damaged" in err and "step-00000008" in err


def test_an_existing_run_is_never_overwritten_by_accident(tmp_path, tiny, repo, capsys):
    out = tmp_path / "run"
    assert main(train_args(repo, tiny, out, 4)) == 0
    assert main(train_args(repo, tiny, out, 4)) == 1
    assert "--resume to continue it, or --overwrite" in capsys.readouterr().err
    assert main(train_args(repo, tiny, out, 4, "--resume", "--lora-r", "8")) == 1
    assert "lora_r: saved 16, now 8" in capsys.readouterr().err
    assert main(train_args(repo, tiny, out, 4, "--overwrite")) == 0


@pytest.mark.parametrize(
    "make_source, message",
    [
        (lambda tmp: tmp / "missing", "does not exist"),
        (lambda tmp: (tmp / "empty").mkdir() or tmp / "empty", "no .py or .ipynb files"),
        (lambda tmp: (tmp / "np").mkdir() or (tmp / "np" / "a.py").write_text("import numpy\n") and tmp / "np",
         "No file passed the data-science filter"),
    ],
)
def test_bad_sources_give_a_clear_message(tmp_path, tiny, capsys, make_source, message):
    assert main(train_args(make_source(tmp_path), tiny, tmp_path / "out", 2)) == 1
    assert message in capsys.readouterr().err


def test_too_little_text_for_one_block(tmp_path, tiny, capsys):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.py").write_text("import pandas\n")
    assert main(train_args(tmp_path / "src", tiny, tmp_path / "out", 2, "--context-length", "512")) == 1
    assert "lower --context-length" in capsys.readouterr().err


# --------------------------------------------------------------------------- loss and benchmark


def test_chunked_loss_equals_the_models_own_loss_and_keytokens_weigh_more(tiny):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny)
    model = AutoModelForCausalLM.from_pretrained(tiny, dtype=torch.float32)
    ids = torch.randint(0, model.config.vocab_size, (3, 40), generator=torch.Generator().manual_seed(0))
    reference = model(input_ids=ids, labels=ids).loss
    chunked = CausalLMLoss(model, chunk_tokens=7)
    assert chunked.chunked
    loss = chunked(ids)
    torch.testing.assert_close(loss, reference, rtol=1e-5, atol=1e-5)
    loss.backward()
    grad_chunked = model.model.layers[0].mlp.up_proj.weight.grad.clone()
    model.zero_grad()
    reference = model(input_ids=ids, labels=ids).loss
    reference.backward()
    torch.testing.assert_close(grad_chunked, model.model.layers[0].mlp.up_proj.weight.grad, rtol=1e-4, atol=1e-6)

    keys = keytoken_ids(tokenizer)
    assert keys and len(keys) >= 4  # plt, pd, fit, predict... are single tokens in the test tokenizer
    weighted = CausalLMLoss(model, keytoken_ids=keys, keytoken_weight=1.0)
    batch = ids.clone()
    batch[0, :10] = keys[0]  # the first sample starts with key tokens
    tokens = weighted.token_losses(batch)
    w = 1 + torch.isin(batch[:, 1:], torch.tensor(keys)).float()  # the predicted token decides
    torch.testing.assert_close(weighted(batch), (tokens * w).sum() / w.sum())
    torch.testing.assert_close(weighted(batch, weighted=False), tokens.mean())
    # It weighs within one sample too: at batch size 1 (the CPU default) it is not the plain loss.
    one = batch[:1]
    assert not torch.allclose(weighted(one), weighted(one, weighted=False))


def test_keytoken_weighted_training_runs(tmp_path, tiny, repo):
    out = tmp_path / "run"
    assert main(train_args(repo, tiny, out, 4, "--keytoken-weight", "1.0")) == 0
    assert json.loads((out / ADAPTER_METADATA).read_text())["config"]["keytoken_weight"] == 1.0


def test_lora_on_the_top_layers_only_trains_and_saves_just_those(tmp_path, tiny, repo, capsys):
    from safetensors.torch import load_file

    out = tmp_path / "run"
    assert main(train_args(repo, tiny, out, 4, "--lora-layers", "1")) == 0
    assert json.loads((out / "adapter_config.json").read_text())["layers_to_transform"] == [1]  # of layers 0, 1
    names = list(load_file(str(out / "adapter_model.safetensors")))
    assert names and all(".layers.1." in name for name in names)
    assert {name.split(".layers.1.")[1].split(".")[1] for name in names} >= {"q_proj", "down_proj"}  # all linear
    assert main(train_args(repo, tiny, tmp_path / "bad", 4, "--lora-layers", "3")) == 1
    assert "--lora-layers 3: " in capsys.readouterr().err


def test_benchmark_prints_tokens_per_second(tiny, capsys):
    assert main(["--benchmark", "--model", str(tiny), "--batch-size", "2", "--context-length", "32",
                 "--benchmark-steps", "2"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["tokens_per_second"] > 0 and result["device"] == "cpu" and "mfu" not in result


def test_python_dash_m_and_console_script_show_help():
    done = run_cli(["--help"], timeout=60)
    assert done.returncode == 0 and "--keytoken-weight" in done.stdout and "accelerate launch" in done.stdout


@pytest.mark.slow
def test_two_processes_with_distributed_data_parallel_on_cpu(tmp_path, tiny, repo):
    """What `accelerate launch --num_processes 2` does on GPUs, with torchrun and gloo on the CPU."""
    out = tmp_path / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()),
               "-m", "ghostframe.trainer", *train_args(repo, tiny, out, 4, "--batch-size", "2", "--device", "cpu")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    meta = json.loads((out / ADAPTER_METADATA).read_text())
    assert meta["resolved"]["num_processes"] == 2
    assert (out / "adapter_model.safetensors").is_file()


def test_first_ctrl_c_asks_to_stop_and_the_second_aborts():
    import signal

    from ghostframe.trainer.training.loop import StopRequest

    messages = []
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when pytest runs in a background job
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with StopRequest(messages.append) as stop:
            os.kill(os.getpid(), signal.SIGINT)
            assert stop.requested and "saving a checkpoint" in messages[0]
            with pytest.raises(KeyboardInterrupt):
                os.kill(os.getpid(), signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, before)
