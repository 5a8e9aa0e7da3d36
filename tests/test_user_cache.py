"""The cache's two ways of keeping things: made once and moved into place, or measured and merged."""

from __future__ import annotations

import pytest

from ghostframe.server.inference import machine
from ghostframe.server.inference.user_cache import MeasurementCache, build_once, cache_dir


def test_a_file_or_folder_is_made_once_and_appears_only_when_complete(tmp_path):
    made = []

    def make_folder(path):
        assert not (tmp_path / "model").exists()  # nobody sees it while it is being made
        path.mkdir()
        (path / "config.json").write_text("{}")
        made.append(path)

    assert build_once(tmp_path / "model", make_folder) == tmp_path / "model"
    assert build_once(tmp_path / "model", make_folder) == tmp_path / "model"
    assert len(made) == 1 and (tmp_path / "model" / "config.json").is_file()
    build_once(tmp_path / "facts.json", lambda path: path.write_text("1"))
    assert (tmp_path / "facts.json").read_text() == "1"
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == ["facts.json", "model"]


def test_a_failed_build_leaves_nothing_behind(tmp_path):
    def fail(path):
        path.write_text("half")
        raise RuntimeError("the download broke")

    with pytest.raises(RuntimeError):
        build_once(tmp_path / "model.gguf", fail)
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []


def test_measurements_of_other_processes_are_kept_and_name_the_cpu(monkeypatch, tmp_path):
    monkeypatch.setenv("GHOSTFRAME_CACHE_DIR", str(tmp_path))
    cache = MeasurementCache("rates.json")
    key = cache.key(["model a", 2])
    assert cache.get(key) is None and key != cache.key(["model a", 4])
    cache.put(key, {"rate": 1.5})
    MeasurementCache("rates.json").put(cache.key(["model b", 2]), {"rate": 3.0})  # another process's
    assert cache.get(key)["rate"] == 1.5 and len(cache.entries()) == 2
    assert cache.get(key)["cpu"] == machine.cpu_name() and cache.path == cache_dir() / "rates.json"
    cache.path.write_text("{not json")  # a damaged file means measuring again, not failing
    assert cache.entries() == {}
