"""`ghostframe-eval` end to end on the tiny random model: an adapter that memorised a held-out
file beats the base on it, the reports are written, and the real server over LSP agrees."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import TINY_MODEL
from ghostframe.trainer.evaluation.cli import base_model_of, build_parser, main
from ghostframe.trainer.data.split import VALID, split_of

MEMORISED = '''import pandas as pd
import matplotlib.pyplot as plt
from sklearn.model_selection import train_test_split


def load_sales(path):
    """Read the sales table and drop broken rows."""
    frame = pd.read_csv(path)
    frame = frame.dropna(subset=["price", "quantity"])
    frame["total"] = frame["price"] * frame["quantity"]
    return frame


sales = load_sales("sales.csv")
# monthly revenue
monthly = sales.groupby("month")["total"].sum()
fig, ax = plt.subplots(figsize=(8, 4))
monthly.plot(ax=ax, kind="bar")
ax.set_title("Revenue per month")
train, test = train_test_split(sales, test_size=0.25, random_state=7)
print(train.shape, test.shape)
'''
TRAIN_ONLY = "import pandas as pd\n\nweather = pd.read_json('weather.json')\nweather['rain_mm'].hist(bins=30)\n"


def valid_name(prefix: str) -> str:
    """A file name that the shared split (default fraction) puts in valid."""
    return next(f"{prefix}_{i}.py" for i in range(1000) if split_of(f"{prefix}_{i}.py") == VALID)


def train_name(prefix: str) -> str:
    return next(f"{prefix}_{i}.py" for i in range(1000) if split_of(f"{prefix}_{i}.py") != VALID)


def memorising_adapter(base: Path, text: str, out: Path, steps: int = 200) -> Path:
    """A LoRA adapter over-trained on `text`, saved with the metadata the server checks."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ghostframe.server.inference.model_loading import ADAPTER_METADATA, base_model_fingerprint

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a 64-wide model: one thread is fastest, and the machine is shared
    try:
        torch.manual_seed(0)
        tokenizer = AutoTokenizer.from_pretrained(base)
        model = AutoModelForCausalLM.from_pretrained(base)
        fingerprint = base_model_fingerprint(model)
        model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", r=16, lora_alpha=32, lora_dropout=0.0,
                                                 target_modules="all-linear"))
        ids = torch.tensor([tokenizer(text)["input_ids"]])
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
        model.train()
        for _ in range(steps):
            model(input_ids=ids, labels=ids).loss.backward()
            optimizer.step()
            optimizer.zero_grad()
    finally:
        torch.set_num_threads(threads)
    model.save_pretrained(out)
    (out / ADAPTER_METADATA).write_text(json.dumps({"kind": "lora", "base_model": {"name": "tiny", "fingerprint": fingerprint}}))
    return out


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    repo = root / "repo"
    repo.mkdir()
    memorised = valid_name("sales_report")
    (repo / memorised).write_text(MEMORISED)
    (repo / train_name("weather")).write_text(TRAIN_ONLY)
    adapter = memorising_adapter(TINY_MODEL, MEMORISED, root / "memorised")
    out = root / "out"
    code = main([str(repo), "--model", str(TINY_MODEL), "--adapter", str(adapter), "--output", str(out),
                 "--device", "cpu", "--per-file", "6", "--max-new-tokens", "32", "--threads", "1", "--quiet"])
    assert code == 0
    return repo, adapter, out, memorised, json.loads((out / "results.json").read_text())


def test_an_adapter_that_memorised_the_file_scores_higher(evaluated):
    repo, adapter, out, memorised, results = evaluated
    base, tuned = results["systems"]
    assert base["adapter"] == "" and tuned["adapter"] == str(adapter)
    assert {c["file"] for c in results["cases"]} == {memorised}  # the train-split file gave none
    assert len(results["cases"]) == 6
    assert tuned["overall"]["exact_match"] >= base["overall"]["exact_match"] + 30
    assert tuned["overall"]["edit_sim"] > base["overall"]["edit_sim"]
    assert set(tuned["per_file"]) == {memorised}
    assert all(s["overall"]["p95_ms"] >= s["overall"]["p50_ms"] > 0 for s in results["systems"])


def test_reports_are_written_for_people(evaluated):
    _, _, out, memorised, results = evaluated
    report = (out / "report.md").read_text()
    assert "| system |" in report and "exact match" in report and memorised in report
    assert "**memorised** vs tiny" in report and "![chart](chart.png)" in report
    assert (out / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_the_real_server_over_lsp_gives_the_same_suggestions(evaluated):
    """--via-lsp asks a real server process; its answers equal the in-process ones."""
    from ghostframe.trainer.evaluation.cases import load_cases
    from ghostframe.trainer.evaluation.run import EvalConfig, Generation, System, evaluate

    repo, adapter, _, _, results = evaluated
    cases = load_cases([repo], per_file=6)
    cases.cases = cases.cases[:3]
    cfg = EvalConfig(folders=[str(repo)], systems=[System("memorised", str(TINY_MODEL), str(adapter))],
                     generation=Generation(max_new_tokens=32, device="cpu"), via_lsp=True)
    via_lsp = evaluate(cfg, case_set=cases)
    assert via_lsp["generation"]["via"] == "lsp"
    lsp_answers = [p["prediction"] for p in via_lsp["systems"][0]["predictions"]]
    in_process = [p["prediction"] for p in results["systems"][1]["predictions"][:3]]
    assert lsp_answers == in_process and any(lsp_answers)


def test_errors_are_explained(tmp_path, capsys):
    (tmp_path / "plain.py").write_text("x = 1\n")
    assert main([str(tmp_path), "--output", str(tmp_path / "o"), "--model", str(TINY_MODEL), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "No case to evaluate" in err and "no_keyword 1" in err
    assert main(["--output", str(tmp_path / "o"), "--quiet"]) == 1
    assert "give source FOLDERS" in capsys.readouterr().err


def test_results_made_separately_on_the_same_cases_merge(evaluated, tmp_path):
    _, _, out, _, results = evaluated
    assert main(["--merge", str(out / "results.json"), "--merge", str(out / "results.json"),
                 "--output", str(tmp_path / "merged")]) == 0
    merged = json.loads((tmp_path / "merged" / "results.json").read_text())
    assert [s["label"] for s in merged["systems"]] == ["tiny", "memorised", "tiny'", "memorised'"]
    other = dict(results, cases=results["cases"][:2])
    (tmp_path / "other.json").write_text(json.dumps(other))
    assert main(["--merge", str(out / "results.json"), "--merge", str(tmp_path / "other.json"),
                 "--output", str(tmp_path / "bad")]) == 1


@pytest.mark.parametrize("precision", ["float32", "int8"])
def test_the_precision_asked_for_is_the_one_evaluated(evaluated, tmp_path, precision):
    repo, _, _, _, _ = evaluated
    out = tmp_path / precision
    assert main([str(repo), "--model", str(TINY_MODEL), "--output", str(out), "--device", "cpu", "--per-file", "2",
                 "--max-new-tokens", "4", "--precision", precision, "--quiet"]) == 0
    assert json.loads((out / "results.json").read_text())["systems"][0]["precision"] == precision


def test_reuse_answers_gives_the_base_its_stored_answers_and_the_adapter_new_ones(evaluated, tmp_path, capsys):
    repo, adapter, _, _, results = evaluated
    args = [str(repo), "--model", str(TINY_MODEL), "--device", "cpu", "--per-file", "6", "--max-new-tokens", "32",
            "--threads", "1", "--quiet", "--reuse-answers"]
    assert main([*args, "--output", str(tmp_path / "first")]) == 0
    assert "answers reused" not in capsys.readouterr().err
    assert main([*args, "--adapter", str(adapter), "--output", str(tmp_path / "second")]) == 0
    assert "tiny: 6 of 6 answers reused from earlier runs" in capsys.readouterr().err
    second = json.loads((tmp_path / "second" / "results.json").read_text())
    base, tuned = second["systems"]
    assert base["cached"] == 6 and not tuned.get("cached")
    # The same answers as computing them: the first fixture run computed them without the store.
    assert [p["prediction"] for p in base["predictions"]] == [p["prediction"] for p in results["systems"][0]["predictions"]]
    assert main([*args, "--via-lsp", "--output", str(tmp_path / "x")]) == 1
    assert "--reuse-answers works in process only" in capsys.readouterr().err


def test_an_adapter_is_scored_on_the_pinned_model_it_was_trained_on(tmp_path):
    """`ghostframe-eval --adapter RUN` on a machine whose `auto` is another model: the run's base is used."""
    run = tmp_path / "run"

    def parsed(*words):
        return build_parser().parse_args([*words, "--output", str(tmp_path / "out")])

    run.mkdir()
    (run / "ghostframe.json").write_text(json.dumps({"base_model": {"name": "Qwen2.5-Coder-0.5B-Instruct"}}))
    assert base_model_of(parsed("--adapter", str(run))) == "qwen2.5-coder-0.5b"
    assert base_model_of(parsed("--adapter", str(run), "--model", "smollm2-135m")) == "smollm2-135m"
    (run / "ghostframe.json").write_text(json.dumps({"base_model": {"name": "my-own-model"}}))
    assert base_model_of(parsed("--adapter", str(run))) == ""  # not pinned: auto, then the fingerprint check
    assert base_model_of(parsed()) == ""
