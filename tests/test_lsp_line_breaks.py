"""LSP counts only \\n, \\r\\n and \\r as line breaks; Python's str.splitlines also breaks at form
feed, \\x1c-\\x1e, NEL, U+2028 and U+2029. Documents, incremental edits and completion contexts
must follow LSP, with UTF-16 columns for characters outside the Basic Multilingual Plane."""

from __future__ import annotations

import re

import pytest
from lsprotocol import types

from conftest import deliver, in_process_server, inline, open_document
from ghostframe.server.inference import text
from ghostframe.server.inference.engine import Limits
from ghostframe.server.inference.prompt import CompletionContext
from ghostframe.server.lsp.documents import context_at

NOT_LSP_BREAKS = ["\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]


def reference_offset(source: str, line: int, character: int) -> int:
    """An independent LSP position -> offset: split on \\r\\n|\\r|\\n only, count UTF-16 units."""
    pieces = re.split(r"(\r\n|\r|\n)", source)
    lines = pieces[0::2]
    offset = sum(len(piece) for piece in pieces[:2 * line])
    units = 0
    for index, char in enumerate(lines[line]):
        if units >= character:
            return offset + index
        units += 2 if ord(char) > 0xFFFF else 1
    return offset + len(lines[line])


def reference_edit(source: str, start: tuple[int, int], end: tuple[int, int], new: str) -> str:
    return source[:reference_offset(source, *start)] + new + source[reference_offset(source, *end):]


def document_with(brk: str) -> str:
    """CRLF and LF lines, astral characters before the cursor column, and `brk` inside lines."""
    return (f"import pandas as pd\r\n# page one{brk}page two\r\n"
            f"label = '😀𝔘'{brk}; df = pd.read_csv('a.csv')\n"
            f"x = 1{brk}{brk}y = 2\rz = df.\n")


def edits_after(source: str) -> list[tuple[tuple[int, int], tuple[int, int], str]]:
    """Typing and deleting on the lines after the odd characters, as an editor sends them."""
    astral_end = text.utf16_column("label = '😀𝔘'", len("label = '😀𝔘'"))
    return [
        ((2, astral_end), (2, astral_end), " + 'x'"),          # insert after two surrogate pairs
        ((3, 0), (3, 0), "# note\n"),                          # a new line before "x = 1<brk>..."
        ((5, len("z = df.")), (5, len("z = df.")), "groupby("),  # type at the end of the "\r" line
        ((1, 2), (2, 5), ""),                                  # delete across a CRLF
        ((4, 1), (4, 3), "="),                                 # replace two characters
    ]


def did_change(ls, uri, version, start, end, new):
    deliver(ls, {"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {
        "textDocument": {"uri": uri, "version": version},
        "contentChanges": [{"range": {"start": {"line": start[0], "character": start[1]},
                                      "end": {"line": end[0], "character": end[1]}}, "text": new}]}})


@pytest.mark.parametrize("brk", NOT_LSP_BREAKS, ids=[f"U+{ord(c):04X}" for c in NOT_LSP_BREAKS])
def test_incremental_edits_and_contexts_follow_lsp_lines(brk):
    ls = in_process_server()
    uri = "file:///work/breaks.py"
    expected = document_with(brk)
    deliver(ls, {"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {
        "textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": expected}}})
    for version, (start, end, new) in enumerate(edits_after(expected), start=2):
        did_change(ls, uri, version, start, end, new)
        expected = reference_edit(expected, start, end, new)
        assert ls.workspace.get_text_document(uri).source == expected
        lines = re.split(r"\r\n|\r|\n", expected)
        for line in range(len(lines)):  # the end of every line is a valid cursor, with the right context
            character = text.utf16_column(lines[line], len(lines[line]))
            offset = reference_offset(expected, line, character)
            ctx = context_at(ls.workspace, uri, types.Position(line=line, character=character))
            assert (ctx.before, ctx.after) == (expected[:offset], expected[offset:])


@pytest.mark.parametrize("brk", NOT_LSP_BREAKS, ids=[f"U+{ord(c):04X}" for c in NOT_LSP_BREAKS])
def test_text_offsets_match_the_reference(brk):
    source = document_with(brk)
    lines = re.split(r"\r\n|\r|\n", source)
    assert len(text.lsp_lines(source)) == len(lines) - (lines[-1] == "")
    for line, content in enumerate(lines):
        for column in range(len(content) + 1):
            character = text.utf16_column(content, column)
            assert text.offset_at(source, line, character) == reference_offset(source, line, character)
    with pytest.raises(text.PositionOutside, match="outside"):
        text.offset_at(source, len(lines), 0, strict=True)
    with pytest.raises(text.PositionOutside, match="past the end"):
        text.offset_at(source, 0, 500, strict=True)
    assert text.offset_at(source, len(lines) + 3, 0) == len(source)  # edits: past the end is the end


def test_utf8_and_utf32_position_encodings():
    source = "a😀b\nc"
    assert text.offset_at(source, 0, 5, "utf-8") == 2   # 'a' is 1 byte, the emoji 4
    assert text.offset_at(source, 0, 2, "utf-32") == 2
    assert text.offset_at(source, 0, 3, "utf-16") == 2


async def test_completion_after_a_form_feed_uses_the_lsp_line(client, tiny_engine):
    """Over the wire: an edit after \\x0c lands on the right line and the suggestion is the one
    for the right context (before the fix the edit went one line too far down)."""
    uri = "file:///work/formfeed.py"
    source = "import pandas as pd\x0c\ndf = pd.read_csv('a.csv')\r\nlabel = '😀'\x0c total = df.\n"
    open_document(client, uri, source)
    start = (2, text.utf16_column("label = '😀'\x0c total = df.", len("label = '😀'\x0c total = df.")))
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(start=types.Position(*start), end=types.Position(*start)), text="sum(")]))
    expected_source = reference_edit(source, start, start, "sum(")
    cursor = (2, start[1] + 4)
    offset = reference_offset(expected_source, *cursor)
    expected = tiny_engine.complete(CompletionContext(expected_source[:offset], expected_source[offset:]),
                                    Limits(max_new_tokens=8, max_prompt_tokens=1024, multiline=True)).text
    assert expected
    assert [item.insert_text for item in await inline(client, uri, *cursor)] == [expected]


ASTRAL_LINE = 'label = "😀'  # 😀 is two UTF-16 code units (a surrogate pair), four UTF-8 bytes


@pytest.mark.parametrize("encoding, inside, start", [("utf-16", [10], 9), ("utf-8", [10, 11, 12], 9)])
def test_a_column_inside_a_character_means_its_start(encoding, inside, start):
    """Before the fix such a column moved past the character (the prompt held the character the
    cursor had not reached)."""
    source = ASTRAL_LINE + "\nx = 1"
    for character in inside:
        assert text.offset_at(source, 0, character, encoding, strict=True) == start
        assert text.apply_change(source, (0, character), (0, character), "#", encoding) == \
            source[:start] + "#" + source[start:]
    end_of_pair = start + (2 if encoding == "utf-16" else 4)
    assert text.offset_at(source, 0, end_of_pair, encoding) == start + 1  # just after the character


def test_context_inside_a_surrogate_pair_in_a_document_and_a_notebook_cell():
    """Every place a request's position is converted (a plain document, a notebook cell after
    the cells above) splits at the character's start: no half character, no U+FFFD."""
    ls = in_process_server()
    uri, notebook, cells = "file:///work/astral.py", "file:///work/astral.ipynb", ["a = 1", ASTRAL_LINE]
    cell_uris = [f"vscode-notebook-cell:/work/astral.ipynb#W{i}" for i in range(len(cells))]
    deliver(ls, {"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {
        "textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": ASTRAL_LINE}}})
    deliver(ls, {"jsonrpc": "2.0", "method": "notebookDocument/didOpen", "params": {
        "notebookDocument": {"uri": notebook, "notebookType": "jupyter-notebook", "version": 1,
                             "cells": [{"kind": 2, "document": cell} for cell in cell_uris]},
        "cellTextDocuments": [{"uri": cell, "languageId": "python", "version": 1, "text": source}
                              for cell, source in zip(cell_uris, cells)]}})
    for where, above in ((uri, ""), (cell_uris[1], "a = 1\n\n")):
        inside = context_at(ls.workspace, where, types.Position(line=0, character=10))
        assert (inside.before, inside.after) == (above + 'label = "', "😀")
        assert "\ufffd" not in inside.before + inside.after
        assert not any(0xD800 <= ord(c) <= 0xDFFF for c in inside.before + inside.after)
    # an edit there lands at the character's start too, in a cell as in a file
    inside_pair = {"start": {"line": 0, "character": 10}, "end": {"line": 0, "character": 10}}
    deliver(ls, {"jsonrpc": "2.0", "method": "notebookDocument/didChange", "params": {
        "notebookDocument": {"uri": notebook, "version": 2},
        "change": {"cells": {"textContent": [{"document": {"uri": cell_uris[1], "version": 2},
                                              "changes": [{"range": inside_pair, "text": "x"}]}]}}}})
    assert ls.workspace.get_text_document(cell_uris[1]).source == 'label = "x😀'
