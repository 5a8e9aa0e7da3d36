"""The path a data-read call names, when the file's own text says what it is.

Analysis code writes `pd.read_csv("data/sales.csv")`, but about as often it names the path
through a constant (`DATA = Path(__file__).parent / "data"`), `os.path.join`, pathlib's `/`,
an f-string or `+`. This works such an expression out without running anything: string
literals; names bound by a simple assignment earlier in the text (the latest one wins, as in a
script or a notebook run top to bottom); `__file__`; and the pure path functions below.
Anything else (a function's parameter, an attribute, a subscript, another call) is unknown,
and an unknown read gets no note.
"""

from __future__ import annotations

import ast
import bisect
import posixpath
import re

MAX_DEPTH = 8             # names that refer to names that refer to ...
MAX_ASSIGNMENT_CHARS = 600
HERE = "\0here"           # stands for the folder of the file being read (from `__file__`)

_JOIN = {"os.path.join", "path.join", "osp.join", "op.join", "posixpath.join", "join"}
_DIRNAME = {"os.path.dirname", "path.dirname", "osp.dirname", "op.dirname", "dirname"}
_SAME = {"str", "os.fspath", "fspath", "os.path.abspath", "os.path.realpath", "os.path.normpath",
         "abspath", "realpath", "normpath", "osp.abspath", "op.abspath", "osp.realpath"}
_PATH = {"Path", "pathlib.Path", "PurePath", "PurePosixPath", "pathlib.PurePath", "pathlib.PurePosixPath"}
_SAME_METHODS = {"resolve", "absolute", "as_posix"}
_WORKING_DIRECTORY = {"os.getcwd", "getcwd", "Path.cwd", "pathlib.Path.cwd"}


class _Unknown(Exception):
    pass


def _parent(path: str) -> str:
    """The folder above `path`; above the file's folder, or above `..`, is one more `..`."""
    if path == "/":
        return path
    if path == HERE or path in ("", ".", "..") or path.endswith("/.."):
        return posixpath.join(path, "..") if path not in ("", ".") else ".."
    return posixpath.dirname(path.rstrip("/")) or "."


class Assignments:
    """Where a text assigns each name (`X = ...`, `X: T = ...`), found once per name and kept."""

    def __init__(self, text: str):
        self.text = text
        self._starts: dict[str, list[int]] = {}

    def _starts_its_line(self, offset: int) -> bool:
        line_start = self.text.rfind("\n", 0, offset) + 1
        return not self.text[line_start:offset].strip(" \t")

    def latest(self, name: str, before: int) -> str | None:
        """The source of the expression last assigned to `name` in `text[:before]`."""
        starts = self._starts.get(name)
        if starts is None:
            # The name first, then a check that only indentation precedes it on its line: a
            # pattern that starts with the name is a fast literal search (`^[ \t]*name` was
            # 10 ms per name on a 1 MB file).
            pattern = re.compile(rf"{re.escape(name)}[ \t]*(?::[^=\n]+)?=(?!=)[ \t]*(?=\S)")
            starts = self._starts[name] = [m.end() for m in pattern.finditer(self.text)
                                           if self._starts_its_line(m.start())]
        index = bisect.bisect_left(starts, before) - 1
        if index < 0:
            return None
        start = starts[index]
        source = self.text[start:min(before, start + MAX_ASSIGNMENT_CHARS)]
        # The value may continue over lines inside brackets: take the shortest prefix that parses.
        end = source.find("\n")
        while True:
            candidate = (source if end < 0 else source[:end]).strip()
            try:
                ast.parse(candidate, mode="eval")
                return candidate
            except SyntaxError:
                if end < 0:
                    return None
                end = source.find("\n", end + 1)


class _Evaluator:
    def __init__(self, names: Assignments, before: int, bound: dict[str, str] | None = None):
        self.names, self.before, self.bound = names, before, bound or {}
        self.depth = 0

    def name(self, name: str) -> str:
        if name == "__file__":
            return posixpath.join(HERE, "\0file")
        if name in self.bound:
            return self.bound[name]
        if self.depth >= MAX_DEPTH:
            raise _Unknown
        source = self.names.latest(name, self.before)
        if source is None:
            raise _Unknown
        self.depth += 1
        try:
            return self.value(ast.parse(source, mode="eval").body)
        finally:
            self.depth -= 1

    def join(self, parts: list[ast.expr]) -> str:
        if not parts:
            return ""
        return posixpath.join(*(self.value(p) for p in parts))

    def value(self, node: ast.expr) -> str:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.Name):
            return self.name(node.id)
        if isinstance(node, ast.JoinedStr):
            return "".join(self.value(v.value) if isinstance(v, ast.FormattedValue) else self.value(v)
                           for v in node.values if not (isinstance(v, ast.FormattedValue) and v.format_spec))
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            return self.join([node.left, node.right])
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            return self.value(node.left) + self.value(node.right)
        if isinstance(node, ast.Attribute) and node.attr == "parent":
            return _parent(self.value(node.value))
        if isinstance(node, ast.Call) and not node.keywords:
            return self.call(node)
        raise _Unknown

    def call(self, node: ast.Call) -> str:
        function = ast.unparse(node.func)
        if function in _WORKING_DIRECTORY and not node.args:
            return ""
        if function in _JOIN or function in _PATH:
            return self.join(node.args)
        if function in _DIRNAME and len(node.args) == 1:
            return _parent(self.value(node.args[0]))
        if function in _SAME and len(node.args) == 1:
            return self.value(node.args[0])
        if isinstance(node.func, ast.Attribute):
            owner = node.func.value
            if node.func.attr in _SAME_METHODS and not node.args:
                return self.value(owner)
            if node.func.attr == "joinpath":
                return self.join([owner, *node.args])
        raise _Unknown


def value_of(expression: ast.expr, names: Assignments, before: int) -> str | None:
    """The string an expression stands for, as path_of works it out but not yet a path (it
    may be part of one: a function's argument that its body joins to a folder)."""
    try:
        return _Evaluator(names, before).value(expression)
    except (_Unknown, RecursionError, SyntaxError, ValueError, TypeError):
        return None


def path_of(expression: ast.expr, names: Assignments, before: int,
            bound: dict[str, str] | None = None) -> tuple[str, bool] | None:
    """(path, relative_to_file) for a read's path argument, or None when the text does not say.

    `before` is where the call starts in the text of `names`: only assignments above it count. `relative_to_file`
    is True when the path was built from `__file__`, so it is relative to the file's folder
    and to nothing else. `bound` gives names their values (value_of's) ahead of assignments:
    a function's parameters, for one call of it.
    """
    try:
        path = _Evaluator(names, before, bound).value(expression)
    except (_Unknown, RecursionError, SyntaxError, ValueError, TypeError):
        return None
    if "\0file" in path or not path.strip():
        return None  # the script itself, or nothing
    if path == HERE or path.startswith(HERE + "/"):
        return posixpath.normpath(path[len(HERE) + 1:] or "."), True
    if "\0" in path:
        return None
    return path, False
