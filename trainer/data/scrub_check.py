"""Which lines the secret scrubber would change in a folder: a check for false positives.

    python -m ghostframe.trainer.data.scrub_check FOLDER...

prints each changed line (file, line number, before and after) and a total. Run it on
code known to hold no secret (a published library) to see what the scrubber would
wrongly hide, or on your own folders to see what it hides before training on them.
Nothing is written.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ghostframe.trainer.data.hygiene import decode_source
from ghostframe.trainer.data.notebooks import notebook_to_python
from ghostframe.trainer.data.scrubbing import scrub_secrets


@dataclass(frozen=True)
class ChangedLine:
    path: str
    line: int  # 1-based, in the text as read (a notebook's code cells joined)
    before: str
    after: str


def changed_lines(text: str, path: str = "") -> list[ChangedLine]:
    """The lines of `text` that scrubbing changes."""
    scrubbed, _counts = scrub_secrets(text)
    before, after = text.splitlines(), scrubbed.splitlines()
    changed = []
    matcher = difflib.SequenceMatcher(a=before, b=after, autojunk=False)
    for tag, a0, a1, b0, b1 in matcher.get_opcodes():
        if tag == "equal":
            continue
        for offset in range(max(a1 - a0, b1 - b0)):
            old = before[a0 + offset] if a0 + offset < a1 else ""
            new = after[b0 + offset] if b0 + offset < b1 else ""
            changed.append(ChangedLine(path, a0 + offset + 1, old, new))
    return changed


def iter_source_texts(root: Path) -> Iterator[tuple[str, str]]:
    """(relative path, text) of each readable .py and .ipynb file under `root`, notebooks as Python."""
    for path in sorted(root.rglob("*")):
        if path.suffix not in (".py", ".ipynb") or not path.is_file():
            continue
        text = decode_source(path.read_bytes())
        if text is None:
            continue
        if path.suffix == ".ipynb":
            try:
                text = notebook_to_python(text)
            except Exception:  # noqa: BLE001 - an unreadable notebook has nothing to check
                continue
        yield path.relative_to(root).as_posix(), text


def check_folders(roots: list[Path]) -> tuple[int, int, list[ChangedLine]]:
    """(files, lines, changed lines) over every source file of `roots`."""
    files = lines = 0
    changed: list[ChangedLine] = []
    for root in roots:
        for relative, text in iter_source_texts(root):
            files += 1
            lines += text.count("\n") + 1
            changed += changed_lines(text, relative)
    return files, lines, changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ghostframe.trainer.data.scrub_check", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", type=Path)
    args = parser.parse_args(argv)
    files, lines, changed = check_folders(args.folders)
    for line in changed:
        print(f"{line.path}:{line.line}\n  - {line.before.strip()}\n  + {line.after.strip()}")
    print(f"{files} files, {lines} lines, {len(changed)} lines changed by scrubbing")
    return 0


if __name__ == "__main__":
    sys.exit(main())
