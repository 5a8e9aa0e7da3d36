"""Which lines the secret scrubber would change in a folder: a check for false positives.

    python -m ghostframe.trainer.data.scrub_check [--key-shaped] FOLDER...

prints each changed line (file, line number, before and after), the secrets found by kind
and a total. Run it on code known to hold no secret (a published library) to see what the
scrubber would wrongly hide, or on your own folders to see what it hides before training
on them. `--key-shaped` also lists every string literal that the scrubber would hide if a
recognised credential sat in its statement (a positional argument shaped like a key): how
many false positives that rule could make at most. Nothing is written.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ghostframe.server.inference.source_files.hygiene import decode_source
from ghostframe.server.inference.source_files.notebooks import notebook_to_python
from ghostframe.trainer.data.scrubbing import key_shaped_literals, scrub_secrets


@dataclass(frozen=True)
class ChangedLine:
    path: str
    line: int  # 1-based, in the text as read (a notebook's code cells joined)
    before: str
    after: str


def changed_lines(text: str, path: str = "", counts: Counter | None = None) -> list[ChangedLine]:
    """The lines of `text` that scrubbing changes (and the secrets found, added to `counts`)."""
    scrubbed, found = scrub_secrets(text)
    if counts is not None:
        counts.update(found)
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


def check_folders(roots: list[Path], counts: Counter | None = None,
                  key_shaped: list[tuple[str, int, str]] | None = None) -> tuple[int, int, list[ChangedLine]]:
    """(files, lines, changed lines) over every source file of `roots`; the secrets found are
    added to `counts`, and (path, line, value) of each key-shaped literal to `key_shaped`."""
    files = lines = 0
    changed: list[ChangedLine] = []
    for root in roots:
        for relative, text in iter_source_texts(root):
            files += 1
            lines += text.count("\n") + 1
            changed += changed_lines(text, relative, counts)
            if key_shaped is not None:
                key_shaped += [(relative, line, value) for line, value in key_shaped_literals(text)]
    return files, lines, changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ghostframe.trainer.data.scrub_check", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--key-shaped", action="store_true",
                        help="also list the literals that would be hidden beside a credential")
    args = parser.parse_args(argv)
    missing = [str(folder) for folder in args.folders if not folder.is_dir()]
    if missing:
        parser.error(f"not a folder: {', '.join(missing)}")
    counts: Counter = Counter()
    key_shaped: list[tuple[str, int, str]] | None = [] if args.key_shaped else None
    files, lines, changed = check_folders(args.folders, counts, key_shaped)
    for line in changed:
        print(f"{line.path}:{line.line}\n  - {line.before.strip()}\n  + {line.after.strip()}")
    for path, number, value in key_shaped or []:
        print(f"{path}:{number}: key-shaped literal {value!r}")
    found = ", ".join(f"{kind} {n}" for kind, n in sorted(counts.items())) or "none"
    print(f"secrets found: {found}")
    if key_shaped is not None:
        print(f"{len(key_shaped)} key-shaped literals given to no name (hidden only beside a credential)")
    print(f"{files} files, {lines} lines, {len(changed)} lines changed by scrubbing")
    return 0


if __name__ == "__main__":
    sys.exit(main())
