"""The base model's answers are kept between gate runs: reused only for the same model, prompt and
settings, never for an adapter, and a damaged store costs nothing but the time to answer again."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conftest import OTHER_TINY_MODEL, TINY_MODEL
from ghostframe.server.inference.engine import CompletionEngine
from ghostframe.trainer.evaluation import answer_cache
from ghostframe.trainer.evaluation.answer_cache import AnswerCache
from ghostframe.trainer.evaluation.cases import file_cases
from ghostframe.trainer.evaluation.predict import Generation, System, predict_in_process
from trainer_fixtures import data_science_file

GEN = Generation(max_new_tokens=8, device="cpu", precision="float32")


@pytest.fixture(scope="module")
def cases():
    return file_cases("analysis.py", data_science_file(7), per_file=5, seed=0)


@pytest.fixture
def completions(monkeypatch) -> list:
    """Every completion the engine computes (the cache's point is to compute fewer)."""
    calls = []
    real = CompletionEngine.complete

    def counted(self, context, *args, **kwargs):
        calls.append(context)
        return real(self, context, *args, **kwargs)

    monkeypatch.setattr(CompletionEngine, "complete", counted)
    return calls


def test_a_second_run_reuses_every_base_answer_and_computes_none(tmp_path, cases, completions):
    cache = AnswerCache(tmp_path)
    first, info = predict_in_process(System("base", str(TINY_MODEL)), cases, GEN, cache=cache)
    assert info["cached"] == 0 and len(completions) == len(cases) + 1  # + the warm-up
    assert (tmp_path / f"{info['answer_key']}.json").is_file()
    completions.clear()
    again, info_again = predict_in_process(System("base", str(TINY_MODEL)), cases, GEN, cache=cache)
    assert completions == [] and info_again["cached"] == len(cases)
    assert [p.text for p in again] == [p.text for p in first]
    assert info_again["answer_key"] == info["answer_key"]


def test_a_new_prompt_is_answered_and_added(tmp_path, cases, completions):
    cache = AnswerCache(tmp_path)
    _, info = predict_in_process(System("base", str(TINY_MODEL)), cases[:2], GEN, cache=cache)
    completions.clear()
    _, info = predict_in_process(System("base", str(TINY_MODEL)), cases, GEN, cache=cache)
    assert info["cached"] == 2 and len(completions) == len(cases) - 2 + 1
    assert len(cache.load(info["answer_key"])) == len(cases)


def test_another_model_or_other_settings_do_not_share_answers(tmp_path, cases):
    cache = AnswerCache(tmp_path)
    _, base = predict_in_process(System("base", str(TINY_MODEL)), cases, GEN, cache=cache)
    _, other = predict_in_process(System("other", str(OTHER_TINY_MODEL)), cases, GEN, cache=cache)
    longer = Generation(max_new_tokens=9, device="cpu", precision="float32")
    _, settings = predict_in_process(System("base", str(TINY_MODEL)), cases, longer, cache=cache)
    assert other["cached"] == 0 and settings["cached"] == 0
    assert len({base["answer_key"], other["answer_key"], settings["answer_key"]}) == 3
    # The thread count decides no answer: it is not part of the key.
    threads = Generation(max_new_tokens=8, device="cpu", precision="float32", threads=1)
    _, one_thread = predict_in_process(System("base", str(TINY_MODEL)), cases, threads, cache=cache)
    assert one_thread["cached"] == len(cases)


def test_an_adapter_never_reads_or_writes_the_cache(tmp_path, cases, completions):
    from conftest import make_adapter

    adapter = make_adapter(TINY_MODEL, tmp_path / "adapter", with_metadata=True)
    cache = AnswerCache(tmp_path / "answers")
    _, info = predict_in_process(System("tuned", str(TINY_MODEL), str(adapter)), cases, GEN, cache=cache)
    assert "answer_key" not in info and info["cached"] == 0 and len(completions) == len(cases) + 1
    assert not (tmp_path / "answers").exists()


def test_the_weights_digest_tells_apart_models_with_the_same_embeddings(tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(TINY_MODEL)
    before = answer_cache.weights_digest(model)
    with torch.no_grad():
        model.model.layers[-1].mlp.down_proj.weight.mul_(1.01)  # a fine-tune that left the embeddings alone
    assert answer_cache.weights_digest(model) != before


def test_a_damaged_store_is_answered_again_and_repaired(tmp_path, cases, completions):
    cache = AnswerCache(tmp_path)
    _, info = predict_in_process(System("base", str(TINY_MODEL)), cases, GEN, cache=cache)
    stored = tmp_path / f"{info['answer_key']}.json"
    stored.write_text('{"truncated": ')
    completions.clear()
    again, info = predict_in_process(System("base", str(TINY_MODEL)), cases, GEN, cache=cache)
    assert info["cached"] == 0 and len(completions) == len(cases) + 1
    assert len(json.loads(stored.read_text())) == len(cases)


def test_the_store_keeps_the_most_recently_used_systems(tmp_path, monkeypatch):
    monkeypatch.setattr(answer_cache, "KEEP_SYSTEMS", 3)
    cache = AnswerCache(tmp_path)
    for index in range(4):
        cache.save(f"system{index}", {"case": ["x", 0.1]})
        os.utime(tmp_path / f"system{index}.json", (index, index))  # distinct ages on any file system
    assert not (tmp_path / "system0.json").exists()  # the oldest went when the fourth came
    assert cache.load("system1") == {"case": ["x", 0.1]}  # the oldest left, used: the newest now
    cache.save("system5", {"case": ["y", 0.1]})
    assert sorted(p.stem for p in Path(tmp_path).glob("*.json")) == ["system1", "system3", "system5"]
