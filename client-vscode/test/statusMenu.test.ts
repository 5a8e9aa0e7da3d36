import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ClientState } from '../src/status';
import { forceAdapterLevel, levelsHolding, statusMenuItems } from '../src/statusMenu';

const ready: ClientState = { kind: 'server', status: { state: 'ready', model: 'm', device: 'cpu', engine: 'torch', adapter: null } };
const refused: ClientState = { kind: 'server', status: { state: 'ready', model: 'm', device: 'cpu', engine: 'torch', adapter: null, adapterRefused: "found it 'no better'" } };

test('a refused adapter puts its two ways out first in the menu', () => {
  const items = statusMenuItems(true, refused);
  assert.deepEqual(items.slice(0, 2).map((i) => i.action), [{ kind: 'forceAdapter' }, { kind: 'clearAdapter' }]);
  assert.match(items[0].label, /Use the adapter anyway/);
  assert.match(items[0].detail ?? '', /no better/);
  assert.match(items[1].label, /Serve without the adapter/);
});

test('without a refused adapter the menu has no adapter entries', () => {
  for (const state of [ready, { kind: 'starting' } as ClientState, { kind: 'server', status: { state: 'loading', adapterRefused: 'old' } } as ClientState]) {
    const kinds = statusMenuItems(true, state).map((i) => i.action.kind);
    assert.ok(!kinds.includes('forceAdapter') && !kinds.includes('clearAdapter'), JSON.stringify(state));
  }
});

test('the menu keeps toggle, restart, set up, log, settings and training; the toggle follows enable', () => {
  const commands = (enabled: boolean) =>
    statusMenuItems(enabled, ready).flatMap((i) => (i.action.kind === 'command' ? [i.action.command] : []));
  assert.deepEqual(commands(true), ['ghostframe.toggle', 'ghostframe.restartServer', 'ghostframe.setup', 'ghostframe.showLog', 'workbench.action.openSettings', 'ghostframe.trainOnWorkspace']);
  assert.match(statusMenuItems(true, ready)[0].label, /Turn inline completions off/);
  assert.match(statusMenuItems(false, ready)[0].label, /Turn inline completions on/);
  const settings = statusMenuItems(true, ready).find((i) => i.action.kind === 'command' && i.action.command === 'workbench.action.openSettings');
  assert.deepEqual(settings?.action, { kind: 'command', command: 'workbench.action.openSettings', args: ['@ext:ghostframe.ghostframe'] });
});

test('levelsHolding: the levels with a value, the winning one first; empty strings do not count', () => {
  assert.deepEqual(levelsHolding({ globalValue: '/a', workspaceValue: '/b' }), ['workspace', 'global']);
  assert.deepEqual(levelsHolding({ globalValue: '/a', workspaceValue: '' }), ['global']);
  assert.deepEqual(levelsHolding({ globalValue: false }), ['global']);
  assert.deepEqual(levelsHolding(undefined), []);
});

test('forceAdapter goes where it takes effect: beside a workspace adapter, over a workspace false', () => {
  assert.equal(forceAdapterLevel({ workspaceValue: '/b' }, undefined), 'workspace');
  assert.equal(forceAdapterLevel({ globalValue: '/a' }, undefined), 'global');
  assert.equal(forceAdapterLevel({ globalValue: '/a' }, { workspaceValue: false }), 'workspace');
  assert.equal(forceAdapterLevel(undefined, undefined), 'global');
});
