/**
 * The entries of the menu the status-bar item opens. Pure so that which
 * entries appear (the two ways out of a refused adapter among them) is
 * unit-tested; `statusBar.ts` shows them and runs the picked one.
 */
import { ClientState, refusedAdapter } from './status';

export type MenuAction =
  | { kind: 'command'; command: string; args?: unknown[] }
  /** Set `ghostframe.forceAdapter` to true where the adapter is set: the server then loads it. */
  | { kind: 'forceAdapter' }
  /** Clear `ghostframe.adapter` wherever it is set: the server stops asking for it. */
  | { kind: 'clearAdapter' };

export interface MenuItem {
  label: string;
  detail?: string;
  action: MenuAction;
}

export function statusMenuItems(enabled: boolean, state: ClientState): MenuItem[] {
  const items: MenuItem[] = [];
  const refused = refusedAdapter(state);
  if (refused) {
    items.push(
      { label: '$(warning) Use the adapter anyway', detail: `Sets ghostframe.forceAdapter. Not served because: ${refused}`, action: { kind: 'forceAdapter' } },
      { label: '$(close) Serve without the adapter', detail: 'Clears ghostframe.adapter; the base model keeps serving.', action: { kind: 'clearAdapter' } },
    );
  }
  items.push(
    { label: enabled ? '$(circle-slash) Turn inline completions off' : '$(check) Turn inline completions on', action: { kind: 'command', command: 'ghostframe.toggle' } },
    { label: '$(debug-restart) Restart server', action: { kind: 'command', command: 'ghostframe.restartServer' } },
    { label: '$(package) Set up the local server again', action: { kind: 'command', command: 'ghostframe.setup' } },
    { label: '$(output) Show log', action: { kind: 'command', command: 'ghostframe.showLog' } },
    { label: '$(settings-gear) Open settings', action: { kind: 'command', command: 'workbench.action.openSettings', args: ['@ext:ghostframe.ghostframe'] } },
    { label: '$(mortar-board) Train an adapter on this workspace', action: { kind: 'command', command: 'ghostframe.trainOnWorkspace' } },
  );
  return items;
}

/** Where a setting has a value, as `WorkspaceConfiguration.inspect` reports it (the window's view, as the server reads it). */
export interface SettingLevels {
  globalValue?: unknown;
  workspaceValue?: unknown;
}

export type Level = 'global' | 'workspace';

/** The levels that hold a non-empty value, the one that wins first. */
export function levelsHolding(levels: SettingLevels | undefined): Level[] {
  const has = (v: unknown) => v !== undefined && v !== null && v !== '';
  const out: Level[] = [];
  if (has(levels?.workspaceValue)) out.push('workspace');
  if (has(levels?.globalValue)) out.push('global');
  return out;
}

/**
 * Where to write `forceAdapter: true` so that it takes effect: at the level
 * whose adapter value wins (so it goes with that adapter), or above a
 * `forceAdapter: false` written there; the user settings when neither is set.
 */
export function forceAdapterLevel(adapter: SettingLevels | undefined, force: SettingLevels | undefined): Level {
  const held = [...levelsHolding(adapter), ...levelsHolding(force)];
  return held.includes('workspace') ? 'workspace' : 'global';
}
