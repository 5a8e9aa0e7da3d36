"""Reads through the file's own loader function.

Scripts often wrap the reader: `def load(name): return pd.read_csv(DATA / name, sep=";")`,
then `sales = load("sales.csv")`. The read's path depends on a parameter, unknown where the
read is; each call of that function above the cursor says what it is. Such a call is a read
of that file at the call's line, which is where the user goes on to type the columns.

Only functions called by their bare name (not methods), one level deep (a loader that calls
another loader gives no note), and only arguments read_paths can work out at the call (or
the parameter's default, for calls that leave it out).
"""

from __future__ import annotations

import ast
import bisect
import re

from . import read_paths
from .calls import scan_call

_DEF = re.compile(r"^([ \t]*)(?:async[ \t]+)?def[ \t]+(\w+)[ \t]*\(", re.MULTILINE)
_INDENT = re.compile(r"[ \t]*")


class _Loader:
    """A function around a read whose path uses some of its parameters."""

    def __init__(self, name: str, start: int, arguments: ast.arguments, parameters: set[str]):
        self.name, self.start, self.parameters = name, start, parameters
        self.positional = positional = [a.arg for a in (*arguments.posonlyargs, *arguments.args)]
        self.positional_only = {a.arg for a in arguments.posonlyargs}
        self.defaults = dict(zip(positional[len(positional) - len(arguments.defaults):], arguments.defaults))
        self.defaults.update((a.arg, d) for a, d in zip(arguments.kwonlyargs, arguments.kw_defaults) if d is not None)

    def argument(self, call: ast.Call, parameter: str) -> tuple[ast.expr, bool] | None:
        """(the expression a call gives `parameter`, whether it is the default), or None when
        it cannot be told (`*args`, `**kwargs`, or nothing given and no default)."""
        if any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg is None for k in call.keywords):
            return None
        position = self.positional.index(parameter) if parameter in self.positional else len(call.args)
        if position < len(call.args):
            return call.args[position], False
        given = [k.value for k in call.keywords if k.arg == parameter and parameter not in self.positional_only]
        if given:
            return given[0], False
        return (self.defaults[parameter], True) if parameter in self.defaults else None


class Loaders:
    """The loader functions of one text, found once however many reads go through them."""

    def __init__(self, text: str, names: read_paths.Assignments):
        self.text, self.names = text, names
        self._defs: list[re.Match] | None = None
        self._def_starts: list[int] = []
        self._calls: dict[str, list[tuple[int, ast.Call]]] = {}

    def _enclosing(self, offset: int, expression: ast.expr) -> _Loader | None:
        """The function around `offset`, when `expression` uses its parameters (not a method's)."""
        text = self.text
        line_start = text.rfind("\n", 0, offset) + 1
        indent = _INDENT.match(text, line_start).end() - line_start
        if not indent:
            return None  # a read at the top level is in no function
        if self._defs is None:
            self._defs = list(_DEF.finditer(text))
            self._def_starts = [found.start() for found in self._defs]
        above = bisect.bisect_left(self._def_starts, line_start)
        enclosing = next((found for found in reversed(self._defs[:above]) if len(found.group(1)) < indent), None)
        if enclosing is None:
            return None
        _, close = scan_call(text, enclosing.end())
        if close < 0:
            return None
        body = text[text.find("\n", close) + 1:line_start]
        if re.search(rf"^[ \t]{{0,{len(enclosing.group(1))}}}[^\s#)]", body, re.MULTILINE):
            return None  # the function ended above the read: the read is outside it
        try:
            arguments = ast.parse(f"def _({text[enclosing.end():close]}): pass").body[0].args
        except SyntaxError:
            return None
        first = (*arguments.posonlyargs, *arguments.args)[:1]
        if first and first[0].arg in ("self", "cls"):
            return None
        declared = {a.arg for a in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs)}
        used = {node.id for node in ast.walk(expression) if isinstance(node, ast.Name)} & declared
        return _Loader(enclosing.group(2), enclosing.start(), arguments, used) if used else None

    def _calls_of(self, name: str) -> list[tuple[int, ast.Call]]:
        """(offset, call) for each complete call of `name` by its bare name."""
        if name not in self._calls:
            calls = []
            # (A literal first makes the scan fast; a look-behind would make it 200 times slower.)
            for found in re.finditer(rf"{re.escape(name)}[ \t]*\(", self.text):
                preceding = self.text[max(0, found.start() - 4):found.start()]
                if preceding[-1:].isalnum() or preceding[-1:] in ("_", ".") or preceding == "def ":
                    continue
                _, close = scan_call(self.text, found.end())
                try:
                    call = ast.parse(self.text[found.start():close + 1], mode="eval").body if close >= 0 else None
                except SyntaxError:
                    continue
                if isinstance(call, ast.Call):
                    calls.append((found.start(), call))
            self._calls[name] = calls
        return self._calls[name]

    def reads(self, offset: int, expression: ast.expr) -> list[tuple[int, str, bool]]:
        """(offset of the call, path, relative_to_file) for each call of the function around the
        read at `offset` whose arguments make its path `expression` known."""
        loader = self._enclosing(offset, expression)
        if loader is None:
            return []
        found = []
        for where, call in self._calls_of(loader.name):
            bound = {}
            for parameter in loader.parameters:
                given = loader.argument(call, parameter)
                if given is None:
                    break
                argument, is_default = given
                # A default is worked out where the function is defined, as Python does.
                value = read_paths.value_of(argument, self.names, loader.start if is_default else where)
                if value is None:
                    break
                bound[parameter] = value
            else:
                path = read_paths.path_of(expression, self.names, offset, bound)
                if path is not None:
                    found.append((where, *path))
        return found
