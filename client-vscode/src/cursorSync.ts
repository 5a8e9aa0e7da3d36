/**
 * Tells the server where the cursor rests (`ghostframe/didMoveCursor`), so it
 * can warm that document's prompt before the user types there. Feeds VS
 * Code's selection, edit and close events to `CursorMoves`, which decides;
 * the URI is converted by the language client itself, so it is the one its
 * didOpen (or notebookDocument/didOpen, for a cell) carried.
 */
import * as vscode from 'vscode';
import { LanguageClient, NotificationType } from 'vscode-languageclient/node';
import { CursorMoves, Position, SelectionChange } from './cursorMoves';

export interface DidMoveCursorParams {
  textDocument: { uri: string };
  position: Position;
}

export const DidMoveCursorNotification = new NotificationType<DidMoveCursorParams>('ghostframe/didMoveCursor');

/** Starts watching the active editor for `client`; dispose to stop. */
export function syncCursorMoves(client: LanguageClient, selector: vscode.DocumentSelector, enabled: () => boolean): vscode.Disposable {
  const moves = new CursorMoves<vscode.TextDocument>({
    enabled,
    send: (document, position) => {
      if (!client.isRunning()) return;
      const params = { textDocument: { uri: client.code2ProtocolConverter.asUri(document.uri) }, position };
      client.sendNotification(DidMoveCursorNotification, params).catch(() => undefined); // a lost hint costs only warmth
    },
  });
  const changeOf = (editor: vscode.TextEditor, selections: readonly vscode.Selection[]): SelectionChange<vscode.TextDocument> => ({
    document: editor.document,
    key: editor.document.uri.toString(),
    served: vscode.languages.match(selector, editor.document) > 0,
    active: editor === vscode.window.activeTextEditor,
    selections: selections.map((s) => ({ empty: s.isEmpty, active: { line: s.active.line, character: s.active.character } })),
  });
  const subscriptions = [
    vscode.window.onDidChangeTextEditorSelection((e) => moves.selectionChanged(changeOf(e.textEditor, e.selections))),
    // Another file or notebook cell comes to the front: the user is now at its cursor.
    vscode.window.onDidChangeActiveTextEditor((editor) => editor && moves.selectionChanged(changeOf(editor, editor.selections))),
    vscode.workspace.onDidChangeTextDocument((e) => e.contentChanges.length > 0 && moves.edited(e.document.uri.toString())),
    vscode.workspace.onDidCloseTextDocument((document) => moves.closed(document.uri.toString())),
  ];
  return new vscode.Disposable(() => {
    moves.dispose();
    subscriptions.forEach((s) => s.dispose());
  });
}
