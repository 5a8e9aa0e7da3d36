"""Replace secrets in source text with placeholders before anything is tokenized.

A model trained on a token memorises it and can complete it for anyone who uses the
adapter, so each recognisable secret becomes a fixed placeholder such as `<API_KEY>`.
Two passes, and a rule that follows from them:

1. formats (`secret_formats`): private keys, issuer tokens, JWTs, URL passwords and
   Authorization values, wherever they appear;
2. names, on Python's tokens: a string literal is a secret when it is given to a name
   that holds secrets (`secret_names`) — assigned, annotated, compared, passed as a
   keyword, stored under a key (`os.environ["PASSWORD"] = …`, `{"api_key": …}`), or
   passed after a key (`os.environ.setdefault("TOKEN", …)`) — whatever its quotes
   (f-strings and triple quotes included). Comments (where notebook magics and shell
   lines end up) and string contents are read as free text: `%env NAME=value`,
   `export NAME=value`, `password: hunter2`. A 40-character AWS secret key is
   recognised in any string literal, even passed positionally.
3. beside a credential: in a statement where either pass found one, a string literal
   given to no name (a positional argument, a tuple or list item) that is shaped like a
   key (`looks_like_token`) is one too: `boto3.client("s3", "AKIA…", "<secret>")`,
   `KEY_ID, SECRET = "AKIA…", "<secret>"`. Secrets do not always sit next to a telling
   name, but a random-looking string next to a recognised key almost surely is its pair.
   A literal given to a name is left to the name's rule (`revision="<sha>"` is kept).

Text that Python cannot tokenize (Python 2, a broken notebook cell) gets the same rules
through regular expressions on its lines.
"""

from __future__ import annotations

import io
import keyword
import re
import tokenize
from collections import Counter
from dataclasses import dataclass

from ghostframe.trainer.data.secret_formats import (
    AWS_SECRET_CANDIDATE,
    PLACEHOLDERS,
    looks_like_aws_secret,
    looks_like_token,
    scrub_formats,
)
from ghostframe.trainer.data.secret_names import (
    WEAK,
    could_be_secret,
    is_code_word,
    looks_secret_in_prose,
    secret_name_strength,
    strongest,
    value_is_secret,
)

__all__ = ["PLACEHOLDERS", "key_shaped_literals", "scrub_secrets"]

_STRING_PREFIX = re.compile(r"(?P<prefix>[A-Za-z]*)(?P<quote>'''|\"\"\"|'|\")")
_FSTRING_FIELD = re.compile(r"\{\{|\}\}|\{[^{}]*\}")
# NAME=value, NAME: value, "NAME": "value" inside comments and strings; shell forms too.
_VALUE = r"""(?P<value>"[^"\n]*"|'[^'\n]*'|[^\s'",;(){}\[\]<>`]+)"""
_FREE_ASSIGNMENT = re.compile(
    r"""(?P<name>(?<![\w$])['"]?[A-Za-z_][\w.-]*['"]?)(?P<sep>=|[ \t]*(?:=|:)\s*)""" + _VALUE
)
# %env NAME value, export NAME value (the shell forms without "=")
_SHELL_START = r"^[ \t]*(?:#[ \t]*)?(?:[%!]|export\s|setenv\s)"
_ENV_COMMAND = re.compile(
    r"(?m)^[ \t]*(?:#[ \t]*)?!?[ \t]*(?:%env|%set_env|export|setenv)[ \t]+(?P<name>[A-Za-z_]\w*)(?P<sep> )[ \t]*"
    + _VALUE
)
_SHELL_LINE = re.compile(_SHELL_START)
# For the fallback: a quoted literal without spaces, quotes or escapes.
_QUOTED_WORD = re.compile(r"""(?P<quote>["'])(?P<value>[^"'\s\\]+)(?P=quote)""")
# For the fallback: name [annotation] = / : / == followed by a string literal of any quoting.
_CODE_ASSIGNMENT = re.compile(
    r"""(?P<name>['"]?[A-Za-z_][\w.-]*['"]?)\]?"""
    r"""(?:[ \t]*:[ \t]*[A-Za-z_][\w\[\]., |]*?)?[ \t]*(?:==|!=|=|:)[ \t]*\(?[ \t]*"""
    r"""(?P<literal>[rRbBuUfF]{0,2}(?:\"\"\"[\s\S]*?\"\"\"|'''[\s\S]*?'''|"[^"\n]*"|'[^'\n]*'))"""
)


def scrub_secrets(text: str) -> tuple[str, Counter]:
    """Return `text` with secrets replaced by placeholders, and how many of each kind were found."""
    counts: Counter = Counter()
    text = scrub_formats(text, counts)
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError, ValueError):
        return _scrub_untokenizable(text, counts), counts
    return _apply(text, _token_edits(text, tokens, counts)), counts


def key_shaped_literals(text: str) -> list[tuple[int, str]]:
    """(line, value) of each literal that the third rule would hide if a credential sat in its
    statement: the rule's worst case on code without secrets, which `scrub_check` counts.
    Read after the formats pass, as the rule reads it (a private key becomes one line)."""
    text = scrub_formats(text, Counter())
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError, ValueError):
        return []
    code, _comments = _significant(text, tokens)
    names = _Names(code)
    found = []
    for index, token in enumerate(code):
        if token.kind == "string" and not names.names_for(index):
            value = _literal_value(list(token.parts))
            if looks_like_token(value):
                found.append((text.count("\n", 0, token.start) + 1, value))
    return found


# --------------------------------------------------------------------------- literals and values


def _split_literal(source: str) -> tuple[str, str, str]:
    """'rb"abc"' -> ("rb", '"', "abc")."""
    match = _STRING_PREFIX.match(source)
    if match is None:
        return "", "", source
    prefix, quote = match.group("prefix"), match.group("quote")
    return prefix, quote, source[len(prefix) + len(quote) : len(source) - len(quote)]


def _literal_value(parts: list[str]) -> str:
    """The constant text of adjacent string literals; f-string fields are left out."""
    values = []
    for source in parts:
        prefix, _quote, body = _split_literal(source)
        if "f" in prefix.lower():
            body = _FSTRING_FIELD.sub(lambda m: m.group(0)[0] if m.group(0) in ("{{", "}}") else "", body)
        values.append(body)
    return "".join(values)


def _placeholder_literal(first_part: str, kind: str) -> str:
    prefix, quote, _body = _split_literal(first_part)
    return f"{prefix}{quote}{PLACEHOLDERS[kind]}{quote}"


def _free_text_secret(match: re.Match, shell: bool) -> bool:
    strength = secret_name_strength(match.group("name"))
    if strength is None:
        return False
    raw, sep = match.group("value"), match.group("sep")
    quoted = len(raw) >= 2 and raw[0] in "'\"" and raw[-1] == raw[0]
    value = raw[1:-1] if quoted else raw
    if strength == WEAK:
        return value_is_secret(strength, value)
    if quoted or shell:  # "NAME": "value", %env NAME=value, !export NAME=value
        return could_be_secret(value, strength)
    if sep == "=":  # NAME=value in a docstring or string: not `token=True`, `token=token`
        return could_be_secret(value, strength) and not is_code_word(value)
    return looks_secret_in_prose(value)  # password: hunter2 (but not password : str)


def _scrub_free_text(text: str, counts: Counter) -> str:
    """NAME=value pairs and AWS secret keys in a comment, a string's contents, or a shell line."""
    shell = bool(_SHELL_LINE.match(text))
    edits, position = [], 0
    found = {pattern: pattern.search(text) for pattern in (_ENV_COMMAND, _FREE_ASSIGNMENT)}
    while True:
        for pattern, match in found.items():
            if match is not None and match.start() < position:
                found[pattern] = pattern.search(text, position)
        match = min((m for m in found.values() if m), key=lambda m: m.start("name"), default=None)
        if match is None:
            break
        if _free_text_secret(match, shell):
            raw = match.group("value")
            quote = raw[0] if len(raw) >= 2 and raw[0] in "'\"" and raw[-1] == raw[0] else ""
            counts["assigned_secret"] += 1
            edits.append((match.start("value"), match.end("value"), f"{quote}{PLACEHOLDERS['assigned_secret']}{quote}"))
            position = match.end()
        else:
            position = match.end("name")  # a later pair may start inside this match
    text = _apply(text, edits)

    def aws(match: re.Match) -> str:
        if not looks_like_aws_secret(match.group(0)):
            return match.group(0)
        counts["aws_secret_access_key"] += 1
        return PLACEHOLDERS["aws_secret_access_key"]

    return AWS_SECRET_CANDIDATE.sub(aws, text)


# --------------------------------------------------------------------------- tokens


@dataclass
class _Token:
    kind: str  # "string" (adjacent literals, f-strings merged), "name", "op", "newline", "other"
    text: str
    start: int  # offsets into the text
    end: int
    parts: tuple[str, ...] = ()


def _offsets(text: str):
    starts = [0]
    for line in io.StringIO(text):
        starts.append(starts[-1] + len(line))
    return lambda position: starts[position[0] - 1] + position[1]


def _significant(text: str, tokens: list[tokenize.TokenInfo]) -> tuple[list[_Token], list[_Token]]:
    """Code tokens (adjacent string literals merged into one) and comment tokens, with offsets."""
    offset = _offsets(text)
    code: list[_Token] = []
    comments: list[_Token] = []
    fstring_start = getattr(tokenize, "FSTRING_START", None)  # Python 3.12+ splits f-strings
    fstring_end = getattr(tokenize, "FSTRING_END", None)
    depth, opened = 0, 0
    for token in tokens:
        start, end = offset(token.start), offset(token.end)
        if fstring_start is not None and token.type == fstring_start:
            depth += 1
            if depth == 1:
                opened = start
            continue
        if depth:
            if token.type == fstring_end:
                depth -= 1
                if depth == 0:
                    token = tokenize.TokenInfo(tokenize.STRING, text[opened:end], token.start, token.end, "")
                    start = opened
                else:
                    continue
            else:
                continue
        if token.type == tokenize.COMMENT:
            comments.append(_Token("comment", token.string, start, end))
        elif token.type == tokenize.STRING:
            if code and code[-1].kind == "string":
                last = code[-1]
                code[-1] = _Token("string", text[last.start:end], last.start, end, last.parts + (token.string,))
            else:
                code.append(_Token("string", token.string, start, end, (token.string,)))
        elif token.type == tokenize.NAME:
            code.append(_Token("name", token.string, start, end))
        elif token.type == tokenize.OP:
            code.append(_Token("op", token.string, start, end))
        elif token.type in (tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER):
            code.append(_Token("newline", token.string, start, end))
        # NL (blank lines, line continuations inside brackets) carries no meaning here
    return code, comments


def _brackets(code: list[_Token]) -> tuple[list[int], dict[int, int]]:
    """For each token the index of its innermost open bracket (-1 at top level); closer -> opener."""
    enclosing, partner, stack = [], {}, []
    for index, token in enumerate(code):
        if token.kind == "op" and token.text in ")]}" and stack:
            partner[index] = stack.pop()
        enclosing.append(stack[-1] if stack else -1)
        if token.kind == "op" and token.text in "([{":
            stack.append(index)
        elif token.kind == "newline" and token.text != "" and stack:
            stack.clear()  # unbalanced brackets: start again at the next statement
    return enclosing, partner


class _Names:
    """The name (or key) a string literal at a given index is given to."""

    def __init__(self, code: list[_Token]):
        self.code = code
        self.enclosing, self.partner = _brackets(code)

    def is_call(self, opener: int) -> bool:
        before = self.code[opener - 1] if opener > 0 else None
        if before is None or (before.kind == "name" and keyword.iskeyword(before.text)):
            return False  # `in (`, `return (`: a tuple, not a call
        return before.kind == "name" or before.text in (")", "]")

    def reference_name(self, end: int) -> str | None:
        """`password`, `self.password`, `os.environ["PASSWORD"]`, `cfg["db"]["pwd"]` ending at `end`."""
        token = self.code[end]
        if token.kind == "name":
            return token.text
        if token.kind == "string":
            return _literal_value(list(token.parts))
        if token.text == "]" and end in self.partner:
            opener = self.partner[end]
            inside = self.code[opener + 1 : end]
            if len(inside) == 1 and inside[0].kind == "string":
                return _literal_value(list(inside[0].parts))
            if opener > 0 and self.code[opener - 1].kind == "name":
                return self.code[opener - 1].text
        return None

    def targets(self, op: int) -> list[str]:
        """Names before an `=`/`==` at `op`: the target, and an annotated target (`pw: str = …`)."""
        names, index, boundary = [], op - 1, self.enclosing[op]
        in_dict = boundary >= 0 and self.code[boundary].text == "{"
        colons = []
        while index >= 0 and index != boundary:
            token = self.code[index]
            if token.kind == "newline" or token.text in (",", ";", "=", "lambda") or (in_dict and token.text == ":"):
                break  # in a dict, `{"pass": x == "yes"}`, the colon ends a key, not an annotation
            if token.text == ":":
                colons.append(index)
            if index in self.partner:  # skip a bracketed group
                index = self.partner[index]
            index -= 1
        for end in [op - 1] + [c - 1 for c in colons]:
            if end > index:
                name = self.reference_name(end)
                if name:
                    names.append(name)
        return names

    def names_for(self, index: int) -> list[str]:
        code, before = self.code, index - 1
        while before >= 0 and code[before].text == "(" and not self.is_call(before):
            before -= 1  # password = ("hunter2")
        if before < 0:
            return []
        previous = code[before]
        if previous.kind != "op":
            return []
        if previous.text in ("=", ":=", "==", "!=", "+="):
            return self.targets(before)
        opener = self.enclosing[before] if previous.text != "(" else before
        if previous.text == ":" and opener >= 0 and code[opener].text == "{" and before > 0:
            name = self.reference_name(before - 1)  # {"api_key": "…"}
            return [name] if name else []
        if previous.text == "," and opener >= 0 and code[opener].text == "(" and self.is_call(opener):
            key = code[before - 1]  # f("PASSWORD", "…"): the value after a key
            starts_argument = before - 2 == opener or code[before - 2].text == ","
            if key.kind == "string" and starts_argument:
                name = _literal_value(list(key.parts))
                value = _literal_value(list(code[index].parts))
                if re.fullmatch(r"[A-Za-z_][\w.-]*", name) and not is_code_word(value):
                    return [name]
        return []


def _statements(code: list[_Token]) -> list[int]:
    """The number of the statement (logical line, or part of one between `;`) of each token."""
    numbers, number = [], 0
    for token in code:
        numbers.append(number)
        if token.kind == "newline" or (token.kind == "op" and token.text == ";"):
            number += 1
    return numbers


def _holds_credential(value: str) -> bool:
    """A literal that the formats pass scrubbed (or whose author left a placeholder in)."""
    return any(placeholder in value for placeholder in PLACEHOLDERS.values())


def _token_edits(text: str, tokens: list[tokenize.TokenInfo], counts: Counter) -> list[tuple[int, int, str]]:
    code, comments = _significant(text, tokens)
    names = _Names(code)
    statements = _statements(code)
    with_credential: set[int] = set()
    unnamed: list[int] = []  # literals given to no name and left as they were
    edits = []
    for index, token in enumerate(code):
        if token.kind != "string":
            continue
        value = _literal_value(list(token.parts))
        given_to = names.names_for(index)
        strengths = [secret_name_strength(name) for name in given_to]
        strength = strongest(strengths)
        if value_is_secret(strength, value):
            counts["assigned_secret"] += 1
            edits.append((token.start, token.end, _placeholder_literal(token.parts[0], "assigned_secret")))
        elif looks_like_aws_secret(value):
            counts["aws_secret_access_key"] += 1
            edits.append((token.start, token.end, _placeholder_literal(token.parts[0], "aws_secret_access_key")))
        else:
            scrubbed = _scrub_free_text(token.text, counts)
            if scrubbed != token.text:
                edits.append((token.start, token.end, scrubbed))
            elif not _holds_credential(value):
                if not given_to:
                    unnamed.append(index)
                continue
        with_credential.add(statements[index])
    for index in unnamed:
        token = code[index]
        if statements[index] in with_credential and looks_like_token(_literal_value(list(token.parts))):
            counts["beside_credential"] += 1
            edits.append((token.start, token.end, _placeholder_literal(token.parts[0], "beside_credential")))
    for comment in comments:
        scrubbed = _scrub_free_text(comment.text, counts)
        if scrubbed != comment.text:
            edits.append((comment.start, comment.end, scrubbed))
    return edits


def _apply(text: str, edits: list[tuple[int, int, str]]) -> str:
    for start, end, replacement in sorted(edits, reverse=True):
        text = text[:start] + replacement + text[end:]
    return text


# --------------------------------------------------------------------------- fallback


def _scrub_untokenizable(text: str, counts: Counter) -> str:
    """The same rules on text Python cannot tokenize: code assignments by regex, then free text by line."""

    def assignment(match: re.Match) -> str:
        literal = match.group("literal")
        if not value_is_secret(secret_name_strength(match.group("name")), _literal_value([literal])):
            return match.group(0)
        counts["assigned_secret"] += 1
        start = match.start("literal") - match.start()
        return match.group(0)[:start] + _placeholder_literal(literal, "assigned_secret")

    text = _CODE_ASSIGNMENT.sub(assignment, text)
    return "".join(_scrub_beside_credential(_scrub_free_text(line, counts), counts) for line in io.StringIO(text))


def _scrub_beside_credential(line: str, counts: Counter) -> str:
    """The third rule with a line for the statement: key-shaped literals not given to a name."""
    if not _holds_credential(line):
        return line

    def literal(match: re.Match) -> str:
        named = line[: match.start()].rstrip().endswith(("=", ":"))
        if named or not looks_like_token(match.group("value")):
            return match.group(0)
        counts["beside_credential"] += 1
        return f"{match.group('quote')}{PLACEHOLDERS['beside_credential']}{match.group('quote')}"

    return _QUOTED_WORD.sub(literal, line)
