"""Turn a Jupyter notebook into the Python a person reads in it: code cells, in order.

Markdown cells are dropped (prose and embedded images teach a completion model little
about the user's code, and a notebook's code reads fine without them). IPython magics
and shell escapes (`%matplotlib inline`, `!pip install x`) are kept as comments, so the
result is valid Python while the model still sees what the user typed.
"""

from __future__ import annotations

import json

from ghostframe.server.inference.text import CELL_SEPARATOR


class NotebookError(ValueError):
    """The file is not a readable notebook (bad JSON or no cells)."""


def _cell_source(cell: dict) -> str:
    source = cell.get("source", cell.get("input", ""))  # nbformat 4 uses source, 3 used input
    if isinstance(source, str):
        return source
    if isinstance(source, list) and all(isinstance(line, str) for line in source):
        return "".join(source)
    if not source:
        return ""
    raise NotebookError("a cell's source is neither text nor a list of lines")


def _comment_out_magics(code: str) -> str:
    lines = []
    for line in code.splitlines():
        stripped = line.lstrip()
        if stripped.startswith(("%", "!")):
            indent = line[: len(line) - len(stripped)]
            line = f"{indent}# {stripped}"
        lines.append(line)
    return "\n".join(lines)


def notebook_cells(text: str) -> list[dict]:
    """The cells of a notebook (nbformat 4, or 3's worksheets), raising NotebookError if none."""
    try:
        notebook = json.loads(text)
    except ValueError as exc:
        raise NotebookError(f"not valid JSON: {exc}") from exc
    except RecursionError as exc:  # [[[[...]]]] deeper than the JSON decoder recurses
        raise NotebookError("JSON nested too deeply") from exc
    if not isinstance(notebook, dict):
        raise NotebookError("not a notebook object")
    cells = notebook.get("cells")
    if cells is None:
        sheets = notebook.get("worksheets", [])
        if not isinstance(sheets, list) or not all(isinstance(s, dict) and isinstance(s.get("cells", []), list)
                                                   for s in sheets):
            raise NotebookError("worksheets is not a list of sheets with cell lists")
        cells = [cell for sheet in sheets for cell in sheet.get("cells", [])]
    if not isinstance(cells, list):
        raise NotebookError("cells is not a list")
    return [cell for cell in cells if isinstance(cell, dict)]


def notebook_to_python(text: str) -> str:
    """Code cells of the notebook `text`, joined in order by a blank line; markdown dropped."""
    code_cells = []
    for cell in notebook_cells(text):
        if cell.get("cell_type") != "code":
            continue
        code = _comment_out_magics(_cell_source(cell)).strip("\n")
        if code.strip():
            code_cells.append(code)
    return CELL_SEPARATOR.join(code_cells) + ("\n" if code_cells else "")
