import assert from 'node:assert/strict';
import { test } from 'node:test';
import { shortName, statusView } from '../src/status';
import { waitUnlessCancelled } from '../src/debounce';

test('ready shows model · device · adapter', () => {
  const v = statusView({ kind: 'server', status: { state: 'ready', model: 'HuggingFaceTB/SmolLM2-135M', device: 'cpu', adapter: '/x/adapters/pandas-lora/' } });
  assert.equal(v.text, '$(sparkle) SmolLM2-135M · cpu · pandas-lora');
  assert.equal(v.error, false);
});

test('ready tooltip reports the last completion time', () => {
  const v = statusView({ kind: 'server', status: { state: 'ready', model: 'm', device: 'cpu', lastLatencyMs: 412.6 } });
  assert.match(v.tooltip, /last completion 413 ms/);
});

test('ready without adapter omits it', () => {
  const v = statusView({ kind: 'server', status: { state: 'ready', model: 'tiny', device: 'cuda', adapter: null } });
  assert.equal(v.text, '$(sparkle) tiny · cuda');
});

test('loading shows the server progress message', () => {
  const v = statusView({ kind: 'server', status: { state: 'loading', model: 'm', message: '40%' } });
  assert.match(v.text, /loading~spin.*40%/);
});

test('a server that reports itself disabled shows as off', () => {
  assert.deepEqual(statusView({ kind: 'server', status: { state: 'disabled', model: 'm', device: 'cpu' } }), statusView({ kind: 'disabled' }));
});

test("the server's own state drives the item: idle is starting, set up has its own text", () => {
  assert.deepEqual(statusView({ kind: 'server', status: { state: 'idle' } }), statusView({ kind: 'starting' }));
  assert.match(statusView({ kind: 'setup' }).text, /loading~spin.*set up/);
  assert.match(statusView({ kind: 'setup' }).tooltip, /installing/);
});

test('errors are flagged', () => {
  assert.equal(statusView({ kind: 'server', status: { state: 'error', message: 'CUDA OOM' } }).error, true);
  assert.match(statusView({ kind: 'server', status: { state: 'error', message: 'CUDA OOM' } }).tooltip, /CUDA OOM/);
  assert.equal(statusView({ kind: 'stopped', message: 'crashed' }).error, true);
  assert.equal(statusView({ kind: 'disabled' }).error, false);
});

test('shortName handles both separators', () => {
  assert.equal(shortName('C:\\a\\b'), 'b');
  assert.equal(shortName('plain'), 'plain');
});

function token() {
  const listeners: (() => void)[] = [];
  return {
    isCancellationRequested: false,
    onCancellationRequested(l: () => void) {
      listeners.push(l);
      return { dispose() {} };
    },
    cancel() {
      this.isCancellationRequested = true;
      listeners.forEach((l) => l());
    },
  };
}

test('debounce waits, then proceeds', async () => {
  const start = Date.now();
  assert.equal(await waitUnlessCancelled(30, token()), true);
  assert.ok(Date.now() - start >= 25);
});

test('debounce gives up at once on cancellation', async () => {
  const t = token();
  const p = waitUnlessCancelled(10000, t);
  t.cancel();
  assert.equal(await p, false);
  const t2 = token();
  t2.cancel();
  assert.equal(await waitUnlessCancelled(10, t2), false);
});
