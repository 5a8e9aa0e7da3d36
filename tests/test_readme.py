"""README.md keeps its promises, and its figures stay one click away.

- every relative link in README.md, BENCHMARKS.md and client-vscode/README.md resolves to a file, and
  every `FILE.md#anchor` link to a heading of that file (GitHub's anchor rules);
- the "Two commands" block exists, `.ci/run` runs the same install and test commands, and every
  command it names is a `[project.scripts]` entry whose parser accepts the arguments given;
- every `ghostframe…` command in a code block of README.md or BENCHMARKS.md names an existing script
  and parses with that script's own argparse parser; inline `ghostframe…` commands name one and use
  only options it has;
- the settings table sits in its section between its markers with the server's settings;
- no "session" in the sense of a work sitting (the product's typing session stays).

Fast: it builds the command-line parsers, never a model.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import io
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BENCHMARKS = ROOT / "BENCHMARKS.md"
CLIENT_README = ROOT / "client-vscode" / "README.md"
CI = ROOT / ".ci" / "run"
PYPROJECT = ROOT / "pyproject.toml"
SHELL_LANGUAGES = {"bash", "sh", "shell", "console"}
QUIET_FLAGS = {"-q", "--quiet"}


# --- Markdown -------------------------------------------------------------------------------

@dataclass
class CodeBlock:
    language: str
    body: str


FENCE = re.compile(r"^(```+|~~~+)\s*([\w+-]*)[^\n]*\n(.*?)^\1\s*$", re.S | re.M)


def code_blocks(text: str) -> list[CodeBlock]:
    return [CodeBlock(m.group(2).lower(), m.group(3)) for m in FENCE.finditer(text)]


def prose(text: str) -> str:
    """The text without its fenced code blocks (links and headings there are not Markdown)."""
    return FENCE.sub("", text)


def github_anchor(heading: str) -> str:
    """GitHub's anchor for a heading: link text kept, lowercase, punctuation dropped, spaces to '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip())
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading's anchor; a repeated heading gets -1, -2, … as on GitHub."""
    seen: dict[str, int] = {}
    found = set()
    for line in prose(path.read_text()).splitlines():
        heading = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not heading:
            continue
        anchor = github_anchor(heading.group(1))
        count = seen.get(anchor, 0)
        seen[anchor] = count + 1
        found.add(anchor if count == 0 else f"{anchor}-{count}")
    return found


LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def links(path: Path) -> list[str]:
    return LINK.findall(prose(path.read_text()))


def section(path: Path, title: str) -> str:
    """The text of the level-2 section `## title`, up to the next level-2 heading."""
    text = path.read_text()
    found = re.search(rf"^## {re.escape(title)}\s*$(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert found, f"{path.name} has no '## {title}' section"
    return found.group(1)


# --- shell commands -------------------------------------------------------------------------

def shell_commands(script: str) -> list[list[str]]:
    """The simple commands of a shell text: continuations joined, comments and heredoc bodies
    dropped, split at `&&`, `||`, `;` and `|`; leading `VAR=value` assignments removed."""
    lines, heredoc_end = [], None
    for line in script.replace("\\\n", " ").splitlines():
        if heredoc_end is not None:
            if line.strip() == heredoc_end:
                heredoc_end = None
            continue
        opened = re.search(r"<<-?\s*['\"]?(\w+)['\"]?", line)
        if opened:
            heredoc_end = opened.group(1)
            line = line[: opened.start()]
        lines.append(line)
    commands = []
    for line in lines:
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|()")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        current: list[str] = []
        for token in [*lexer, ";"]:
            if token and set(token) <= set(";&|()"):
                while current and re.fullmatch(r"[A-Za-z_]\w*=.*", current[0]):
                    current.pop(0)
                if current:
                    commands.append(current)
                current = []
            else:
                current.append(token)
    return commands


def program(command: list[str]) -> str:
    return Path(command[0]).name


def normalised(command: list[str]) -> list[str]:
    return [token for token in command if token not in QUIET_FLAGS]


# --- pyproject and the command-line parsers ---------------------------------------------------

def toml_table(name: str) -> dict[str, str]:
    """`key = value` lines of one table of pyproject.toml (values unparsed); enough for our tables."""
    text = PYPROJECT.read_text()
    found = re.search(rf"^\[{re.escape(name)}\]\s*$(.*?)(?=^\[|\Z)", text, re.S | re.M)
    assert found, f"pyproject.toml has no [{name}] table"
    return dict(re.findall(r"^([\w.-]+)\s*=\s*(.*?)\s*$", found.group(1), re.M))


def scripts() -> dict[str, str]:
    return {name: value.strip("\"'") for name, value in toml_table("project.scripts").items()}


class _Parser(Exception):
    def __init__(self, parser: argparse.ArgumentParser):
        self.parser = parser


def _entry_module(script: str):
    return importlib.import_module(scripts()[script].partition(":")[0])


def parse(script: str, argv: list[str]) -> None:
    """Parse `argv` as `script` does; fails the test with argparse's own message."""
    module = _entry_module(script)
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            if hasattr(module, "build_parser"):
                module.build_parser().parse_args(argv)
            else:
                module.parse_args(argv)
    except SystemExit as exit_:
        if exit_.code:
            pytest.fail(f"`{script} {shlex.join(argv)}` does not parse: {err.getvalue().strip()}")


def parser_of(script: str) -> argparse.ArgumentParser:
    module = _entry_module(script)
    if hasattr(module, "build_parser"):
        return module.build_parser()

    def grab(self, *args, **kwargs):
        raise _Parser(self)

    original = argparse.ArgumentParser.parse_args
    argparse.ArgumentParser.parse_args = grab
    try:
        module.parse_args([])
    except _Parser as got:
        return got.parser
    finally:
        argparse.ArgumentParser.parse_args = original
    raise AssertionError(f"{script}: parse_args did not build a parser")


def options(parser: argparse.ArgumentParser, words: list[str]) -> set[str]:
    """The option strings valid after `words`: the parser's own and those of the subcommands named."""
    known = set(parser._option_string_actions)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for i, word in enumerate(words):
                if word in action.choices:
                    return known | options(action.choices[word], words[i + 1:])
    return known


def ghostframe_commands(path: Path) -> list[list[str]]:
    return [c for block in code_blocks(path.read_text()) if block.language in SHELL_LANGUAGES
            for c in shell_commands(block.body) if program(c).startswith("ghostframe")]


def inline_commands(path: Path) -> list[list[str]]:
    """Inline code spans that run a `ghostframe…` command with arguments."""
    found = []
    for span in re.findall(r"(?<!`)`([^`]+)`(?!`)", prose(path.read_text())):
        words = span.split()
        if "\n\n" in span:
            continue  # not a span: an unpaired backtick
        if len(words) > 1 and re.fullmatch(r"(\.venv/bin/)?ghostframe(-[a-z]+)?", words[0]):
            found.append(words)
    return found


# --- tests ----------------------------------------------------------------------------------

@pytest.mark.parametrize("heading, anchor", [
    ("Quality (model × context)", "quality-model--context"),
    ("The default `--budget 30m` run", "the-default---budget-30m-run"),
    ("Neovim (0.12+)", "neovim-012"),
    ("At a 256-token window", "at-a-256-token-window"),
    ("How to read [this](x.md) page", "how-to-read-this-page"),
])
def test_anchor_rules_are_githubs(heading, anchor):
    assert github_anchor(heading) == anchor


def test_shell_commands_are_split_as_a_shell_would():
    text = ('# a comment\nA=1 python3 -m venv .venv && .venv/bin/pip install -q "x[y]" # note\n'
            "python - a b <<'EOF'\nimport json; print(1)\nEOF\ncmd --flag \\\n  value | tail\n")
    assert shell_commands(text) == [["python3", "-m", "venv", ".venv"], [".venv/bin/pip", "install", "-q", "x[y]"],
                                    ["python", "-", "a", "b"], ["cmd", "--flag", "value"], ["tail"]]


@pytest.mark.parametrize("doc", [README, BENCHMARKS, CLIENT_README], ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(doc):
    found = links(doc)
    assert found, f"{doc.name}: no links found (is the link pattern still right?)"
    broken = []
    for target in found:
        if re.match(r"[a-z][a-z0-9+.-]*:", target, re.I):
            continue  # https:, mailto:
        path, _, anchor = target.partition("#")
        file = (doc.parent / path).resolve() if path else doc
        if not file.exists():
            broken.append(f"{target}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target}: no heading with that anchor in {file.name}")
    assert not broken, f"{doc.relative_to(ROOT)}: " + "; ".join(broken)


def test_readme_figures_link_to_benchmarks_sections():
    rows = [line for line in section(README, "Figures").splitlines() if line.startswith("|")][2:]
    assert rows, "README's Figures section has no table rows"
    for row in rows:
        assert re.search(r"\]\(BENCHMARKS\.md#[\w-]+\)", row), f"a headline figure without its BENCHMARKS.md link: {row}"
    linked = {t.partition("#")[2] for t in links(README) if t.startswith("BENCHMARKS.md#")}
    assert linked <= anchors(BENCHMARKS), f"README links to missing BENCHMARKS.md sections: {linked - anchors(BENCHMARKS)}"


def two_commands() -> list[list[str]]:
    blocks = [b for b in code_blocks(section(README, "Two commands")) if b.language in SHELL_LANGUAGES]
    assert blocks, "README's 'Two commands' section has no bash block"
    return shell_commands(blocks[0].body)


def test_two_commands_install_run_the_example_and_test():
    commands = [normalised(c) for c in two_commands()]
    assert any(program(c) == "pip" and "install" in c for c in commands), "no install in the two commands"
    assert ["-m", "pytest"] in [c[1:3] for c in commands], "no test run in the two commands"
    assert any(program(c) == "ghostframe" and c[1:] == ["complete", "--example"] for c in commands), (
        "the two commands no longer complete the bundled example")


def test_ci_runs_the_readme_commands():
    ci = [normalised(c) for c in shell_commands(CI.read_text())]
    for command in two_commands():
        assert normalised(command) in ci, f".ci/run does not run the README's `{shlex.join(command)}`"


def test_two_commands_name_real_scripts_extras_and_arguments():
    names = scripts()
    extras = set(toml_table("project.optional-dependencies"))
    for command in two_commands():
        if program(command).startswith("ghostframe"):
            assert program(command) in names, f"`{program(command)}` is not a [project.scripts] entry"
            parse(program(command), command[1:])
        if program(command) == "pip":
            for token in command:
                extra = re.fullmatch(r"\.\[([\w,-]+)\]", token)
                if extra:
                    missing = set(extra.group(1).split(",")) - extras
                    assert not missing, f"pip installs extras pyproject.toml does not define: {missing}"


def test_scripts_named_in_the_readme_exist():
    named = set(re.findall(r"`(ghostframe(?:-[a-z]+)?)`", prose(README.read_text())))
    assert {"ghostframe", "ghostframe-server", "ghostframe-train", "ghostframe-eval"} <= named
    distribution = toml_table("project")["name"].strip("\"'")
    unknown = named - set(scripts()) - {distribution}
    assert not unknown, f"README names commands that are not [project.scripts] entries: {unknown}"


@pytest.mark.parametrize("doc", [README, BENCHMARKS], ids=lambda p: p.name)
def test_code_block_commands_exist_and_parse(doc):
    commands = ghostframe_commands(doc)
    assert commands, f"{doc.name}: no ghostframe command in a code block"
    names = scripts()
    for command in commands:
        assert program(command) in names, f"{doc.name}: `{program(command)}` is not a [project.scripts] entry"
        parse(program(command), command[1:])


@pytest.mark.parametrize("doc", [README, BENCHMARKS], ids=lambda p: p.name)
def test_python_modules_run_in_code_blocks_exist(doc):
    for block in code_blocks(doc.read_text()):
        if block.language not in SHELL_LANGUAGES:
            continue
        for command in shell_commands(block.body):
            for flag, module in zip(command, command[1:]):
                if flag == "-m" and module.startswith("ghostframe."):
                    spec = importlib.util.find_spec(module)
                    assert spec, f"{doc.name}: `-m {module}`: no such module"
                    if spec.submodule_search_locations is not None:
                        assert importlib.util.find_spec(f"{module}.__main__"), f"{doc.name}: `-m {module}` has no __main__"


@pytest.mark.parametrize("doc", [README, BENCHMARKS], ids=lambda p: p.name)
def test_inline_commands_use_existing_options(doc):
    names = scripts()
    for words in inline_commands(doc):
        script = Path(words[0]).name
        assert script in names, f"{doc.name}: `{' '.join(words)}`: no script {script}"
        valid = options(parser_of(script), words[1:])
        for word in words[1:]:
            flag = word.strip("[]").partition("=")[0]
            if flag.startswith("--"):
                assert flag in valid, f"{doc.name}: `{' '.join(words)}`: {script} has no option {flag}"


def test_option_lookup_follows_subcommands():
    valid = options(parser_of("ghostframe"), ["bench", "latency"])
    assert "--keystrokes" in valid and "--example" not in valid
    assert "--example" in options(parser_of("ghostframe"), ["complete"])


def test_settings_table_is_in_its_section():
    from ghostframe.server.lsp.settings import schema

    text = README.read_text()
    for marker in ("<!-- settings:start -->", "<!-- settings:end -->"):
        assert text.count(marker) == 1, f"README.md must hold {marker} exactly once"
    settings = section(README, "Settings")
    table = re.search(r"<!-- settings:start -->\n(.*?)<!-- settings:end -->", settings, re.S)
    assert table, "the settings markers are not inside README's '## Settings' section"
    keys = re.findall(r"^\| `([\w.]+)` \|", table.group(1), re.M)
    assert keys == list(schema()), "README's settings table lists other settings than the server's Settings"


@pytest.mark.parametrize("doc", [README, BENCHMARKS], ids=lambda p: p.name)
def test_no_work_sittings(doc):
    text = re.sub(r"\b(typing|editing)[ -]sessions?\b", "", doc.read_text(), flags=re.I)
    left = re.findall(r"[^\n]{0,40}\b(?:sessions?|sitting)\b[^\n]{0,40}", text, re.I)
    assert not left, f"{doc.name} tells when or in which sitting something was done: {left}"


def test_benchmarks_cite_commits_that_exist():
    cited = sorted(set(re.findall(r"`([0-9a-f]{7,40})\^?`", BENCHMARKS.read_text())))
    assert cited, "BENCHMARKS.md names no commit"
    git = ["git", "-C", str(ROOT)]
    try:
        shallow = subprocess.run([*git, "rev-parse", "--is-shallow-repository"], capture_output=True,
                                 text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        pytest.skip("no git")
    if shallow.returncode or shallow.stdout.strip() != "false":
        pytest.skip("not a full git checkout")
    answer = subprocess.run([*git, "cat-file", "--batch-check"], input="\n".join(f"{c}^{{commit}}" for c in cited) + "\n",
                            capture_output=True, text=True, timeout=30).stdout.splitlines()
    missing = [c for c, line in zip(cited, answer) if line.endswith("missing")]
    assert not missing, f"BENCHMARKS.md cites commits this repository does not have: {missing}"
