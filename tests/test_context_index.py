"""The workspace index: what it takes, what it forgets, and that nothing outside the workspace gets in."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ghostframe.server.inference.context.workspace_index import IndexLimits, WorkspaceIndex
from ghostframe.server.inference.source_files.discovery import admissible
from ghostframe.server.lsp.workspace_context import WorkspaceContext

UTILS = "def clean(df, columns):\n    return df.dropna(subset=columns)\n\nTARGET = 'churned'\n"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_update_replace_and_forget(tmp_path):
    index = WorkspaceIndex((tmp_path,))
    assert index.update(tmp_path / "pkg" / "utils.py", UTILS)
    snapshot = index.refresh()
    assert snapshot.find_module(("pkg", "utils")).definitions["clean"].startswith("def clean(df, columns):")
    index.update(tmp_path / "pkg" / "utils.py", "def tidy(df):\n    return df\n")
    snapshot = index.refresh()
    assert set(snapshot.find_module(("utils",)).definitions) == {"tidy"}
    assert index.forget(tmp_path / "pkg" / "utils.py")
    assert index.refresh().chunks == [] and index.paths == [] and index.total_chars == 0
    assert not index.forget(tmp_path / "pkg" / "utils.py")


def test_paths_outside_the_workspace_are_refused(tmp_path):
    workspace, elsewhere = tmp_path / "ws", tmp_path / "elsewhere"
    secret = write(elsewhere / "secret.py", "API_KEY = 'x'\n")
    write(workspace / "ok.py", UTILS)
    (workspace / "link.py").symlink_to(secret)
    (workspace / "linked_dir").symlink_to(elsewhere, target_is_directory=True)
    index = WorkspaceIndex((workspace,))
    assert not index.update(secret, "API_KEY = 'x'\n")
    assert not index.update(workspace / "link.py", "API_KEY = 'x'\n")                  # a link out
    assert not index.update(workspace / "linked_dir" / "secret.py", "API_KEY = 'x'\n")  # through a linked folder
    assert not index.update(workspace / ".." / "elsewhere" / "secret.py", "API_KEY = 'x'\n")
    assert index.refused["outside_workspace"] == 4 and index.paths == []


def test_background_build_uses_the_trainers_discovery_rules(tmp_path):
    workspace = tmp_path / "ws"
    write(workspace / "analysis" / "utils.py", UTILS)
    write(workspace / ".gitignore", "scratch/\n")
    write(workspace / "scratch" / "ignored.py", "x = 1\n")
    write(workspace / ".venv" / "lib" / "dep.py", "y = 2\n")
    write(workspace / "big.py", "z = 1\n" * 300_000)  # over the trainer's size limit
    (workspace / "binary.py").write_bytes(b"\x00\x01 not text")
    outside = write(tmp_path / "outside.py", "SECRET = 1\n")
    (workspace / "link.py").symlink_to(outside)
    context = WorkspaceContext(debounce_seconds=0.01, edit_debounce_seconds=0.01)
    context.open_folders([workspace])
    assert context.wait_idle(30)
    assert context.index.paths == ["analysis/utils.py"]
    snapshot = context.index.current()
    assert all("SECRET" not in chunk.text for chunk in snapshot.chunks)

    # edits, saves, deletions and files that are not admissible
    context.changed(workspace / "analysis" / "utils.py", "def tidy(df):\n    return df\n")
    write(workspace / "new.py", "def fresh():\n    pass\n")
    context.changed(workspace / "new.py")
    context.changed(workspace / "scratch" / "ignored.py")
    context.changed(outside)
    context.changed(workspace / "link.py")
    assert context.wait_idle(30)
    assert context.index.paths == ["analysis/utils.py", "new.py"]
    assert set(context.index.current().find_module(("utils",)).definitions) == {"tidy"}
    os.remove(workspace / "new.py")
    context.deleted(workspace / "new.py")
    assert context.wait_idle(30)
    assert context.index.current().files.keys() == {"analysis/utils.py"}


def test_admissible_follows_gitignore_and_skipped_folders(tmp_path):
    write(tmp_path / ".gitignore", "*.gen.py\nout/\n")
    assert admissible(write(tmp_path / "a.py", ""), [tmp_path])
    assert not admissible(write(tmp_path / "b.gen.py", ""), [tmp_path])
    assert not admissible(write(tmp_path / "out" / "c.py", ""), [tmp_path])
    assert not admissible(write(tmp_path / "node_modules" / "d.py", ""), [tmp_path])
    assert not admissible(write(tmp_path / "notes.txt", ""), [tmp_path])
    assert not admissible(tmp_path.parent / "e.py", [tmp_path])


def test_memory_is_bounded(tmp_path):
    index = WorkspaceIndex((tmp_path,), IndexLimits(max_files=2, max_file_chars=100, max_total_chars=130))
    assert index.update(tmp_path / "a.py", "a = 1\n" * 10)          # 60 chars
    assert not index.update(tmp_path / "huge.py", "b = 1\n" * 50)   # over max_file_chars
    assert index.update(tmp_path / "b.py", "b = 1\n" * 10)          # 120 chars in all
    assert not index.update(tmp_path / "c.py", "c = 1\n")           # a third file
    assert index.update(tmp_path / "a.py", "a = 2\n" * 6)           # replacing one is fine: 96 in all
    assert not index.update(tmp_path / "b.py", "b = 1\n" * 16)      # 132 would pass the total
    assert index.paths == ["a.py", "b.py"] and index.total_chars == 96
    assert index.refused == {"too_large": 1, "too_many_files": 1, "total_size": 1}


def test_a_file_that_does_not_parse_still_gives_chunks(tmp_path):
    index = WorkspaceIndex((tmp_path,))
    index.update(tmp_path / "half.py", "def broken(:\n    revenue_by_region = df.groupby('region')\n")
    snapshot = index.refresh()
    assert snapshot.files["half.py"].definitions == {}
    assert [c.path for c in snapshot.similar_chunks(["revenue_by_region"], 3, None)] == ["half.py"]


@pytest.mark.parametrize("roots", [1, 2])
def test_relative_paths_name_the_folder_when_there_are_several(tmp_path, roots):
    folders = [tmp_path / f"project{i}" for i in range(roots)]
    for folder in folders:
        folder.mkdir()
    index = WorkspaceIndex(tuple(folders))
    expected = "project0/src/m.py" if roots == 2 else "src/m.py"
    assert index.relative_path(folders[0] / "src" / "m.py") == expected


def test_a_close_after_unsaved_edits_indexes_the_file_on_disk(tmp_path):
    write(tmp_path / "m.py", "def on_disk():\n    pass\n")
    context = WorkspaceContext(debounce_seconds=0.05, edit_debounce_seconds=0.05)
    context.open_folders([tmp_path])
    for typed in ("def un", "def unsaved", "def unsaved():\n    pass\n"):
        context.changed(tmp_path / "m.py", typed)
    context.changed(tmp_path / "m.py")  # closed without saving: the disk's text counts
    assert context.wait_idle(30)
    assert set(context.index.current().files["m.py"].definitions) == {"on_disk"}
    context.changed(tmp_path / "m.py", "def typed_later():\n    pass\n")
    assert context.wait_idle(30)
    assert set(context.index.current().files["m.py"].definitions) == {"typed_later"}
