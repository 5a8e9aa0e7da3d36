"""A hostile repository or run folder: malformed notebooks, tampered checkpoints, damaged progress.

Nothing here may abort the run with a traceback, run code from the run folder, or log a
wrong number after a resume.
"""

from __future__ import annotations

import json
import pathlib
from pathlib import Path

import pytest
import torch

from ghostframe.trainer.cli import main
from ghostframe.trainer.data import corpus
from ghostframe.trainer.data.corpus import build_corpus
from ghostframe.server.inference.source_files.notebooks import NotebookError, notebook_to_python
from ghostframe.trainer.training.checkpoints import checkpoint_dirs
from ghostframe.trainer.training.metrics import read_metrics
from trainer_fixtures import data_science_file, interrupt_at_step, module_model_and_repo, train_args


tiny, repo = module_model_and_repo(files=16)


# --------------------------------------------------------------------------- malformed notebooks

MALFORMED_NOTEBOOKS = {
    "deep.ipynb": "[" * 100_000 + "]" * 100_000,  # RecursionError in json
    "deep_object.ipynb": '{"cells": ' + "[" * 100_000 + "]" * 100_000 + "}",
    "source_numbers.ipynb": json.dumps({"cells": [{"cell_type": "code", "source": [1, 2, "import pandas"]}]}),
    "source_dict.ipynb": json.dumps({"cells": [{"cell_type": "code", "source": {"a": "import pandas"}}]}),
    "worksheets_dict.ipynb": json.dumps({"worksheets": {"cells": []}}),
    "worksheets_strings.ipynb": json.dumps({"worksheets": ["import pandas"]}),
    "worksheet_cells_int.ipynb": json.dumps({"worksheets": [{"cells": 3}]}),
    "cells_string.ipynb": json.dumps({"cells": "import pandas"}),
}


@pytest.mark.parametrize("name", sorted(MALFORMED_NOTEBOOKS))
def test_malformed_notebook_is_a_notebook_error(name):
    with pytest.raises(NotebookError):
        notebook_to_python(MALFORMED_NOTEBOOKS[name])


def test_malformed_notebooks_are_skipped_and_counted_and_the_rest_kept(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    for name, text in MALFORMED_NOTEBOOKS.items():
        (repo / name).write_text(text)
    (repo / "good.py").write_text(data_science_file(1))
    report = build_corpus(tmp_path / "data", [repo], options=corpus.CorpusOptions(valid_fraction=0.0)).to_dict()
    assert report["files_kept"] == 1
    assert report["skipped"] == {"skipped_bad_notebook": len(MALFORMED_NOTEBOOKS)}


def test_any_exception_while_reading_a_file_skips_it_under_its_reason(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "a.py").write_text(data_science_file(1))
    (repo / "b.py").write_text(data_science_file(2) + "\n# boom\n")
    real = corpus.scrub_secrets

    def scrub(text):
        if "# boom" in text:
            raise MemoryError("hostile file")
        return real(text)

    monkeypatch.setattr(corpus, "scrub_secrets", scrub)
    report = build_corpus(tmp_path / "data", [repo], options=corpus.CorpusOptions(valid_fraction=0.0)).to_dict()
    assert report["files_kept"] == 1
    assert report["skipped"] == {"skipped_unreadable_MemoryError": 1}


def test_ghostframe_train_survives_a_repository_of_malformed_notebooks(tmp_path, tiny, repo, capsys):
    hostile = tmp_path / "hostile"
    hostile.mkdir()
    for name, text in MALFORMED_NOTEBOOKS.items():
        (hostile / name).write_text(text)
    assert main([str(repo), str(hostile), *train_args(repo, tiny, tmp_path / "out", 2)[1:]]) == 0
    assert f"bad_notebook {len(MALFORMED_NOTEBOOKS)}" in capsys.readouterr().err


# --------------------------------------------------------------------------- resume never runs code


class _Payload:
    """Unpickling this writes a file: what a tampered checkpoint would do with os.system."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.write_text, (pathlib.Path(self.marker), "code ran"))


def test_a_pickle_payload_in_the_training_state_is_refused_not_run(tmp_path, tiny, repo, capsys, monkeypatch):
    out = tmp_path / "run"
    with monkeypatch.context() as patch:
        interrupt_at_step(patch, 5)
        assert main(train_args(repo, tiny, out, 8)) == 130
    marker = tmp_path / "pwned"
    latest = checkpoint_dirs(out / "work" / "checkpoints")[-1]
    assert latest.name == "step-00000005"
    state = torch.load(latest / "training_state.pt", weights_only=True)
    state["optimizer"]["payload"] = _Payload(marker)
    torch.save(state, latest / "training_state.pt")
    torch.load(latest / "training_state.pt", weights_only=False)  # the payload is live...
    assert marker.read_text() == "code ran"
    marker.unlink()
    capsys.readouterr()

    assert main(train_args(repo, tiny, out, 8, "--resume")) == 0
    err = capsys.readouterr().err
    assert not marker.exists()  # ...but --resume never ran it
    assert f"Checkpoint {latest} is damaged" in err and "resumed from" in err and "step-00000004" in err


def test_checkpoint_state_holds_only_tensors_and_plain_types(tmp_path, tiny, repo):
    out = tmp_path / "run"
    assert main(train_args(repo, tiny, out, 4, "--save-every", "2")) == 0
    for checkpoint in checkpoint_dirs(out / "work" / "checkpoints"):
        state = torch.load(checkpoint / "training_state.pt", weights_only=True)  # raises on anything else
        assert {"optimizer", "scheduler", "rng"} <= set(state)


# --------------------------------------------------------------------------- honest numbers after resume


@pytest.mark.slow
def test_train_loss_after_resume_is_the_mean_of_the_steps_summed(tmp_path, tiny, repo, monkeypatch):
    every_step = tmp_path / "every-step"
    assert main(train_args(repo, tiny, every_step, 12, "--log-every", "1")) == 0
    step_loss = {r["step"]: r["loss"] for r in read_metrics(every_step / "metrics.jsonl") if r["split"] == "train"}

    out = tmp_path / "resumed"
    with monkeypatch.context() as patch:
        interrupt_at_step(patch, 8)
        assert main(train_args(repo, tiny, out, 12, "--log-every", "5")) == 130
    assert main(train_args(repo, tiny, out, 12, "--log-every", "5", "--resume")) == 0
    logged = {r["step"]: r["loss"] for r in read_metrics(out / "metrics.jsonl") if r["split"] == "train"}
    assert sorted(logged) == [5, 10, 12]
    mean = lambda steps: sum(step_loss[s] for s in steps) / len(steps)  # noqa: E731
    assert logged[5] == pytest.approx(mean(range(1, 6)), rel=1e-4)
    assert logged[10] == pytest.approx(mean([9, 10]), rel=1e-4)  # 2 steps summed after resuming at 8
    assert logged[12] == pytest.approx(mean([11, 12]), rel=1e-4)


@pytest.mark.parametrize(
    "damage",
    [{"step": "x"}, {"step": 9}, {"step": 7, "tokens_seen": 0, "elapsed_seconds": 1.0},
     {"step": 9, "tokens_seen": "many", "elapsed_seconds": 1.0}, [1, 2, 3]],
    ids=["step-not-a-number", "fields-missing", "step-of-another-folder", "tokens-not-a-number", "not-an-object"],
)
@pytest.mark.slow
def test_a_damaged_progress_file_falls_back_to_the_previous_checkpoint(tmp_path, tiny, repo, capsys, monkeypatch,
                                                                       damage):
    out = tmp_path / "run"
    with monkeypatch.context() as patch:
        interrupt_at_step(patch, 9)
        assert main(train_args(repo, tiny, out, 10)) == 130
    latest = checkpoint_dirs(out / "work" / "checkpoints")[-1]
    (latest / "progress.json").write_text(json.dumps(damage))
    capsys.readouterr()
    assert main(train_args(repo, tiny, out, 10, "--resume")) == 0
    err = capsys.readouterr().err
    assert f"Checkpoint {latest} is damaged" in err and "resumed from" in err and "step-00000008" in err


# --------------------------------------------------------------------------- MFU


def test_lora_flops_count_frozen_weights_at_four_and_trainable_at_six(tiny):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from ghostframe.trainer.training.benchmark import flops_per_token

    base = AutoModelForCausalLM.from_pretrained(tiny)
    cfg = base.config
    attention = 6 * cfg.num_hidden_layers * cfg.hidden_size * 64
    total = sum(p.numel() for p in base.parameters())
    assert flops_per_token(base, 64) == 6 * total + attention  # full fine-tuning: the usual 6N
    lora = get_peft_model(base, LoraConfig(task_type="CAUSAL_LM", r=4, target_modules="all-linear"))
    trainable = sum(p.numel() for p in lora.parameters() if p.requires_grad)
    assert 0 < trainable < total
    assert flops_per_token(lora, 64) == 6 * trainable + 4 * total + attention


def test_flops_count_layers_below_the_adapted_ones_as_forward_only(tiny):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from ghostframe.trainer.training.benchmark import flops_per_token

    base = AutoModelForCausalLM.from_pretrained(tiny)
    cfg = base.config  # 2 layers: adapt layer 1 only, so layer 0 runs forward and nothing more
    below = sum(p.numel() for n, p in base.named_parameters() if ".layers.0." in n)
    total = sum(p.numel() for p in base.parameters())
    top = get_peft_model(base, LoraConfig(task_type="CAUSAL_LM", r=4, target_modules=["q_proj", "down_proj"],
                                          layers_to_transform=[1]))
    trainable = sum(p.numel() for p in top.parameters() if p.requires_grad)
    attention = (2 * 2 + 4 * 1) * cfg.hidden_size * 64
    assert flops_per_token(top, 64) == 6 * trainable + 4 * (total - below) + 2 * below + attention
