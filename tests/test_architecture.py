"""The import rules of ARCHITECTURE.md, checked on the source: every `ghostframe.*` import,
at module level or inside a function, must go from a part to a part it may use."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"ghostframe.server": ROOT / "server", "ghostframe.trainer": ROOT / "trainer"}

# part -> the parts it may import (a part is the longest matching prefix below)
MAY_IMPORT = {
    "ghostframe.server.inference": {"ghostframe.server.inference"},
    "ghostframe.server.testing": {"ghostframe.server.inference"},
    "ghostframe.server.lsp": {"ghostframe.server", "ghostframe.server.inference"},
    "ghostframe.server.tools": {"ghostframe.server", "ghostframe.server.inference", "ghostframe.server.lsp",
                                "ghostframe.server.testing", "ghostframe.trainer.evaluation.cases"},
    "ghostframe.trainer.data": {"ghostframe.server.inference"},
    "ghostframe.trainer.training": {"ghostframe.server", "ghostframe.server.inference", "ghostframe.server.testing",
                                    "ghostframe.trainer.data", "ghostframe.trainer.config"},
    "ghostframe.trainer.config": {"ghostframe.server.inference", "ghostframe.trainer.data",
                                  "ghostframe.trainer.training"},
    "ghostframe.trainer.evaluation": {"ghostframe.server.inference", "ghostframe.server.lsp.settings",
                                      "ghostframe.server.tools.lsp_client", "ghostframe.trainer.data",
                                      "ghostframe.trainer.config"},
    # the commands at the trainer's root orchestrate: data, training, then evaluation
    "ghostframe.trainer.cli": {"ghostframe.server", "ghostframe.server.inference", "ghostframe.trainer.data",
                               "ghostframe.trainer.config", "ghostframe.trainer.training",
                               "ghostframe.trainer.evaluation"},
    "ghostframe.trainer.__main__": {"ghostframe.trainer.cli"},
    "ghostframe.server.__main__": {"ghostframe.server.lsp"},
    "ghostframe.server": set(),
    "ghostframe.trainer": set(),
}


def _modules():
    for package, folder in FOLDERS.items():
        for path in sorted(folder.rglob("*.py")):
            if "examples" in path.relative_to(folder).parts:  # sample files for users, not modules
                continue
            parts = path.relative_to(folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            yield ".".join((package, *parts)), path


def _part_of(module: str, parts) -> str:
    matches = [p for p in parts if module == p or module.startswith(p + ".")]
    return max(matches, key=len)


def _imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module
            yield from ((node.lineno, f"{node.module}.{a.name}") for a in node.names)
        elif isinstance(node, ast.Import):
            yield from ((node.lineno, a.name) for a in node.names)


def _allowed(target: str, allowed: set[str], own: str) -> bool:
    """A target is allowed when its part, or the module itself, is listed (parts are exact names)."""
    return target in allowed or _part_of(target, MAY_IMPORT) in allowed | {own}


def test_every_module_belongs_to_a_part():
    for module, _ in _modules():
        assert _part_of(module, MAY_IMPORT), module


def test_no_import_crosses_the_architecture_rules():
    known = {m for m, _ in _modules()}
    broken = []
    for module, path in _modules():
        own = _part_of(module, MAY_IMPORT)
        for line, target in _imports(path):
            if not target.startswith("ghostframe."):
                continue
            if target not in known and target.rsplit(".", 1)[0] in known:
                target = target.rsplit(".", 1)[0]  # `from pkg.mod import name`: the module is what counts
            if target in known and not _allowed(target, MAY_IMPORT[own], own):
                broken.append(f"{path.relative_to(ROOT)}:{line} {module} imports {target}")
    assert not broken, "\n".join(broken)


def test_the_rule_checker_catches_a_forbidden_import(tmp_path):
    """The checker itself: an LSP module importing the training loop or the trainer's data is reported."""
    own = _part_of("ghostframe.server.lsp.server", MAY_IMPORT)
    for target in ("ghostframe.trainer.training.loop", "ghostframe.trainer.data.sources"):
        assert not _allowed(target, MAY_IMPORT[own], own)
    assert _allowed("ghostframe.server.inference.engine", MAY_IMPORT[own], own)
    assert _allowed("ghostframe.server.inference.source_files.discovery", MAY_IMPORT[own], own)

