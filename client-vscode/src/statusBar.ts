/**
 * The status-bar item: starting/loading, ready (model · device · adapter),
 * error. Clicking it opens a quick menu (toggle, restart, log, settings).
 */
import * as vscode from 'vscode';
import { ClientState, statusView } from './status';

export class StatusBar implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;
  private last: ClientState = { kind: 'starting' };

  constructor() {
    this.item = vscode.window.createStatusBarItem('ghostframe.status', vscode.StatusBarAlignment.Right, 100);
    this.item.name = 'ghostframe';
    this.item.command = 'ghostframe.statusMenu';
    this.set(this.last);
    this.item.show();
  }

  set(state: ClientState): void {
    this.last = state;
    const view = statusView(state);
    this.item.text = view.text;
    this.item.tooltip = view.tooltip;
    this.item.backgroundColor = view.error ? new vscode.ThemeColor('statusBarItem.errorBackground') : undefined;
  }

  dispose(): void {
    this.item.dispose();
  }
}

/** The menu shown when the status-bar item is clicked. */
export async function showStatusMenu(enabled: boolean): Promise<void> {
  const items: (vscode.QuickPickItem & { command: string })[] = [
    { label: enabled ? '$(circle-slash) Turn inline completions off' : '$(check) Turn inline completions on', command: 'ghostframe.toggle' },
    { label: '$(debug-restart) Restart server', command: 'ghostframe.restartServer' },
    { label: '$(package) Set up the local server again', command: 'ghostframe.setup' },
    { label: '$(output) Show log', command: 'ghostframe.showLog' },
    { label: '$(settings-gear) Open settings', command: 'workbench.action.openSettings' },
    { label: '$(mortar-board) Train an adapter on this workspace', command: 'ghostframe.trainOnWorkspace' },
  ];
  const picked = await vscode.window.showQuickPick(items, { title: 'ghostframe' });
  if (!picked) return;
  if (picked.command === 'workbench.action.openSettings') {
    await vscode.commands.executeCommand(picked.command, '@ext:ghostframe.ghostframe');
  } else {
    await vscode.commands.executeCommand(picked.command);
  }
}
