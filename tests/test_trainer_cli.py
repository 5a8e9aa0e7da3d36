"""ghostframe-train's command line: every TrainConfig field has one option, declared with the field."""

from __future__ import annotations

import dataclasses
import json

from ghostframe.server.inference.model_options import ModelOptions
from ghostframe.trainer.cli import build_parser, config_from_args, merge_with_saved_run, typed_fields
from ghostframe.trainer.config import TrainConfig

EVERY_FLAG = [
    "src1", "src2", "-o", "out", "--model", "m", "--device", "cpu",
    "--dataset", "a", "--dataset", "b", "--dataset-split", "test", "--dataset-text-column", "code",
    "--dataset-streaming", "--dataset-limit", "7", "--keywords", "torch, numpy", "--no-filter",
    "--max-file-bytes", "123", "--near-dedup-threshold", "0", "--valid-fraction", "0.2", "--context-length", "64",
    "--max-steps", "5", "--batch-size", "2", "--grad-accum", "3", "--lr", "0.5", "--weight-decay", "0.1",
    "--warmup-steps", "1", "--seed", "3", "--full", "--lora-r", "4", "--lora-alpha", "8", "--lora-dropout", "0.0",
    "--lora-targets", "q_proj,v_proj", "--keytoken-weight", "1.5", "--chunk-tokens", "0", "--compile",
    "--eval-every", "9", "--eval-batches", "0", "--save-every", "11", "--log-every", "13", "--keep-checkpoints", "1",
    "--num-proc", "2", "--resume", "--overwrite", "--quiet", "--max-grad-norm", "0.5", "--keytokens", "pd,plt",
]


def test_every_option_spelling_reaches_its_field():
    cfg = config_from_args(build_parser().parse_args(EVERY_FLAG))
    assert cfg == TrainConfig(
        output="out", sources=["src1", "src2"], model="m", device="cpu",
        datasets=[{"name_or_path": name, "split": "test", "text_column": "code", "streaming": True, "limit": 7}
                  for name in ("a", "b")],
        keywords=["torch", "numpy"], filter_keywords=False, max_file_bytes=123, near_dedup_threshold=None,
        valid_fraction=0.2, context_length=64, max_steps=5, batch_size=2, grad_accum=3, learning_rate=0.5,
        weight_decay=0.1, warmup_steps=1, seed=3, full=True, lora_r=4, lora_alpha=8, lora_dropout=0.0,
        lora_targets="q_proj,v_proj", keytoken_weight=1.5, chunk_tokens=0, compile=True, eval_every=9,
        eval_batches=0, save_every=11, log_every=13, keep_checkpoints=1, num_proc=2, resume=True, overwrite=True,
        quiet=True, max_grad_norm=0.5, keytokens=["pd", "plt"],
    )
    assert config_from_args(build_parser().parse_args(["--learning-rate", "0.25"])).learning_rate == 0.25


def test_defaults_are_the_dataclass_defaults():
    assert config_from_args(build_parser().parse_args([])) == TrainConfig()


def test_every_field_but_datasets_has_an_option_and_model_help_comes_from_model_options():
    help_text = " ".join(build_parser().format_help().split())
    for f in dataclasses.fields(TrainConfig):
        if f.name in ("datasets", "sources"):
            continue
        flags = f.metadata["cli"]["flags"] or ("--" + f.name.replace("_", "-"),)
        assert all(flag in help_text for flag in flags), f.name
    model_help = next(f.metadata["help"] for f in dataclasses.fields(ModelOptions) if f.name == "model")
    assert " ".join(model_help.split()) in help_text


def test_resume_takes_untyped_options_from_the_saved_run(tmp_path):
    saved = TrainConfig(output=str(tmp_path), sources=["s"], lora_r=8, keywords=["torch"], log_every=3)
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "config.json").write_text(saved.to_json())
    argv = ["--output", str(tmp_path), "--resume", "--log-every", "5"]
    assert typed_fields(argv) >= {"output", "resume", "log_every"}
    assert "lora_r" not in typed_fields(argv)
    cfg = merge_with_saved_run(config_from_args(build_parser().parse_args(argv)), typed_fields(argv))
    assert (cfg.sources, cfg.lora_r, cfg.keywords, cfg.log_every, cfg.resume) == (["s"], 8, ["torch"], 5, True)
    assert json.loads(cfg.to_json())["lora_r"] == 8


def test_device_defaults_are_the_measured_recipe_unless_given():
    from ghostframe.trainer.config import DEFAULT_LORA_LR

    assert TrainConfig().for_device("cpu").batch_size == 1  # the CPU recipe: one 1,024-token block per step
    assert TrainConfig().for_device("cuda:0").batch_size == 8
    assert TrainConfig(batch_size=3).for_device("cpu").batch_size == 3
    assert TrainConfig().resolved_learning_rate() == DEFAULT_LORA_LR == 4e-4
    assert TrainConfig(full=True).resolved_learning_rate() == 5e-5
    assert TrainConfig(learning_rate=1e-3).resolved_learning_rate() == 1e-3
