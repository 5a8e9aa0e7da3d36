"""pygls's workspace, with documents whose lines and positions follow LSP.

pygls 2 splits a document with `str.splitlines`, which also breaks lines at form feed,
`\\x1c`-`\\x1e`, NEL, U+2028 and U+2029, so an incremental edit after one of them lands on
the wrong line and corrupts the server's copy. These classes route every line split,
position->offset conversion and incremental edit through `inference.text`.
"""

from __future__ import annotations

from lsprotocol import types
from pygls.workspace import TextDocument, Workspace

from ghostframe.server.inference import text


class LspTextDocument(TextDocument):
    """A pygls TextDocument whose lines, offsets and incremental edits follow LSP."""

    def __init__(self, *args, encoding: str = "utf-16", **kwargs):
        super().__init__(*args, **kwargs)
        self.encoding = text.normalise_encoding(encoding)

    @property
    def lines(self) -> tuple[str, ...]:
        return tuple(text.lsp_lines(self.source))

    def offset_at_position(self, client_position: types.Position) -> int:
        return text.offset_at(self.source, client_position.line, client_position.character, self.encoding)

    def _apply_incremental_change(self, change: types.TextDocumentContentChangePartial) -> None:
        start, end = change.range.start, change.range.end
        self._source = text.apply_change(self.source, (start.line, start.character), (end.line, end.character),
                                         change.text, self.encoding)


class LspWorkspace(Workspace):
    """A pygls Workspace that creates LspTextDocuments."""

    @classmethod
    def like(cls, workspace: Workspace) -> LspWorkspace:
        """The same (still empty) workspace as pygls made it at initialize, with LSP documents."""
        return cls(workspace.root_uri, workspace._sync_kind, list(workspace.folders.values()),
                   workspace.position_encoding)

    def _create_text_document(self, doc_uri, source=None, version=None, language_id=None) -> LspTextDocument:
        return LspTextDocument(doc_uri, source=source, version=version, language_id=language_id,
                               sync_kind=self._sync_kind, position_codec=self._position_codec,
                               encoding=self.position_encoding)
