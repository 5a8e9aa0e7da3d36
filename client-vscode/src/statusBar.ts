/**
 * The status-bar item: starting/loading, ready (model · engine · adapter),
 * a warning when the asked-for adapter is not served, error. Clicking it
 * opens a quick menu (the ways out of a refused adapter, toggle, restart,
 * log, settings).
 */
import * as vscode from 'vscode';
import { ClientState, statusView } from './status';
import { forceAdapterLevel, Level, levelsHolding, MenuAction, statusMenuItems } from './statusMenu';

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

  /** What the item shows now (the menu offers actions that depend on it). */
  get state(): ClientState {
    return this.last;
  }

  set(state: ClientState): void {
    this.last = state;
    const view = statusView(state);
    this.item.text = view.text;
    this.item.tooltip = view.tooltip;
    this.item.backgroundColor = view.error
      ? new vscode.ThemeColor('statusBarItem.errorBackground')
      : view.warning
        ? new vscode.ThemeColor('statusBarItem.warningBackground')
        : undefined;
  }

  dispose(): void {
    this.item.dispose();
  }
}

/** The menu shown when the status-bar item is clicked. */
export async function showStatusMenu(enabled: boolean, state: ClientState): Promise<void> {
  const items = statusMenuItems(enabled, state);
  const picked = await vscode.window.showQuickPick(items, { title: 'ghostframe' });
  if (picked) await run(picked.action);
}

const TARGET: Record<Level, vscode.ConfigurationTarget> = {
  global: vscode.ConfigurationTarget.Global,
  workspace: vscode.ConfigurationTarget.Workspace,
};

async function run(action: MenuAction): Promise<void> {
  const cfg = vscode.workspace.getConfiguration('ghostframe');
  switch (action.kind) {
    case 'command':
      await vscode.commands.executeCommand(action.command, ...(action.args ?? []));
      return;
    case 'forceAdapter':
      await cfg.update('forceAdapter', true, TARGET[forceAdapterLevel(cfg.inspect('adapter'), cfg.inspect('forceAdapter'))]);
      return;
    case 'clearAdapter': {
      const levels = levelsHolding(cfg.inspect('adapter'));
      if (levels.length === 0) {
        // The adapter then comes from the server's command line (--adapter), not from a setting.
        void vscode.window.showInformationMessage('ghostframe: ghostframe.adapter is not set in your settings; the adapter comes from the server\'s command line.');
        return;
      }
      for (const level of levels) await cfg.update('adapter', undefined, TARGET[level]);
      return;
    }
  }
}
