/**
 * Entry point. Wires the log, the status bar, the server manager and the
 * commands together; everything clever happens in the server.
 */
import * as vscode from 'vscode';
import { onActiveInterpreterChanged } from './python';
import { openSampleNotebook } from './sample';
import { API_KEY_SECRET, config, expand, ServerManager } from './server';
import { showStatusMenu, StatusBar } from './statusBar';
import { trainOnWorkspace } from './train';

let manager: ServerManager | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const log = vscode.window.createOutputChannel('ghostframe', { log: true });
  const status = new StatusBar();
  manager = new ServerManager(context, log, status);
  const m = manager;
  context.subscriptions.push(log, status, m);

  context.subscriptions.push(
    vscode.commands.registerCommand('ghostframe.setup', () => m.setup()),
    vscode.commands.registerCommand('ghostframe.suggestNow', () => vscode.commands.executeCommand('editor.action.inlineSuggest.trigger')),
    vscode.commands.registerCommand('ghostframe.restartServer', () => m.restart()),
    vscode.commands.registerCommand('ghostframe.showLog', () => log.show()),
    vscode.commands.registerCommand('ghostframe.toggle', async () => {
      const enabled = config().get<boolean>('enable', true);
      await config().update('enable', !enabled, vscode.ConfigurationTarget.Global);
      void vscode.window.setStatusBarMessage(`ghostframe: inline completions ${enabled ? 'off' : 'on'}`, 3000);
    }),
    vscode.commands.registerCommand('ghostframe.trainOnWorkspace', () =>
      trainOnWorkspace({ context, log, python: () => m.serverPython(), expand }),
    ),
    vscode.commands.registerCommand('ghostframe.openSampleNotebook', () => openSampleNotebook()),
    vscode.commands.registerCommand('ghostframe.setApiKey', async () => {
      const key = await vscode.window.showInputBox({
        title: 'ghostframe: API key of the team server (ghostframe.endpoint)',
        prompt: 'Kept in VS Code\'s secret storage and sent only to the endpoint. Empty: remove it.',
        password: true,
        ignoreFocusOut: true,
      });
      if (key === undefined) return;
      if (key) await context.secrets.store(API_KEY_SECRET, key);
      else await context.secrets.delete(API_KEY_SECRET);
      await m.restart(); // the server reads it from GHOSTFRAME_API_KEY when it starts
    }),
    vscode.commands.registerCommand('ghostframe.statusMenu', () => showStatusMenu(config().get<boolean>('enable', true), status.state)),
  );

  // A new interpreter picked in the Python extension may have (or lack) the server.
  void onActiveInterpreterChanged(() => {
    if (!config().get<string>('server.pythonPath')) void m.restart();
  }).then((d) => d && context.subscriptions.push(d));

  await m.start();
}

export async function deactivate(): Promise<void> {
  await manager?.stop();
}
