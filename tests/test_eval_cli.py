"""`ghostframe-eval` options: sources and data options come from the training run unless typed,
so by default an adapter is scored on exactly the files its training held out."""

from __future__ import annotations

import json

from ghostframe.trainer.evaluation.cli import build_parser, corpus_setup
from ghostframe.trainer.evaluation.run import EvalConfig, split_warnings, systems_for


def fake_run(path, sources, **config):
    path.mkdir(parents=True)
    (path / "adapter_config.json").write_text("{}")
    (path / "ghostframe.json").write_text(json.dumps({
        "kind": "lora", "base_model": {"name": "m", "fingerprint": "x"},
        "data": {"sources": [str(s) for s in sources]},
        "config": {"sources": [str(s) for s in sources], "datasets": [], "keywords": ["pandas"],
                   "filter_keywords": True, "valid_fraction": 0.25, **config},
    }))
    return path


def test_sources_and_options_come_from_the_adapter_unless_typed(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    run = fake_run(tmp_path / "run", [repo])
    folders, datasets, options = corpus_setup(build_parser().parse_args(["--adapter", str(run), "-o", "x"]))
    assert folders == [str(repo)] and datasets == []
    assert options.valid_fraction == 0.25 and options.keywords == ("pandas",)
    typed = build_parser().parse_args([str(tmp_path), "--adapter", str(run), "-o", "x", "--valid-fraction", "0.5"])
    folders, _, options = corpus_setup(typed)
    assert folders == [str(tmp_path)] and options.valid_fraction == 0.5 and options.keywords == ("pandas",)


def test_a_split_that_differs_from_training_is_warned_about(tmp_path):
    repo = tmp_path / "repo"
    (repo / "sub").mkdir(parents=True)
    run = fake_run(tmp_path / "run", [repo])
    systems = systems_for("", [str(run), str(run)])
    assert [s.label for s in systems] == ["base", "run", "run'"]
    folders, _, options = corpus_setup(build_parser().parse_args(["--adapter", str(run), "-o", "x"]))
    assert split_warnings(EvalConfig(folders=folders, systems=systems, options=options)) == []
    options.valid_fraction = 0.1
    warnings = split_warnings(EvalConfig(folders=[str(repo / "sub")], systems=systems[:2], options=options))
    assert any("valid_fraction" in w for w in warnings) and any("nested" in w for w in warnings)
