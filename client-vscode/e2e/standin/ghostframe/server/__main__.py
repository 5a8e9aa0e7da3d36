"""Stand-in LSP server: answers textDocument/inlineCompletion with a fixed pandas snippet."""
import sys

from lsprotocol import types
from pygls.lsp.server import LanguageServer

server = LanguageServer("ghostframe-standin", "0.0.1")


@server.feature(types.INITIALIZED)
def initialized(ls: LanguageServer, params):
    print("capabilities:", ls.server_capabilities.inline_completion_provider, file=sys.stderr, flush=True)
    ls.protocol.notify("ghostframe/status", {"state": "ready", "model": "standin", "device": "cpu", "adapter": None, "message": ""})


# pygls only advertises inlineCompletionProvider when options are given.
@server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
def inline(ls: LanguageServer, params: types.InlineCompletionParams):
    print("inlineCompletion", params.position, file=sys.stderr, flush=True)
    doc = ls.workspace.get_text_document(params.text_document.uri)
    line = doc.lines[params.position.line][: params.position.character] if params.position.line < len(doc.lines) else ""
    text = 'groupby("city")["price"].mean()' if line.endswith(".") else "  # stand-in"
    return [types.InlineCompletionItem(insert_text=text, range=types.Range(params.position, params.position))]


@server.feature("ghostframe/didMoveCursor")
def moved(ls: LanguageServer, params):
    """Logged (the extension's log shows server stderr) so the cursor hint can be seen arriving."""
    print("didMoveCursor", params.textDocument.uri, params.position.line, params.position.character, file=sys.stderr, flush=True)


server.start_io()
