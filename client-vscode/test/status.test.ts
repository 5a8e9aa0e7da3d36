import assert from 'node:assert/strict';
import { test } from 'node:test';
import { refusedAdapter, ServerStatus, shortName, statusView } from '../src/status';
import { waitUnlessCancelled } from '../src/debounce';

test('ready shows model · device · adapter', () => {
  const v = statusView({ kind: 'server', status: { state: 'ready', model: 'HuggingFaceTB/SmolLM2-135M', device: 'cpu', adapter: '/x/adapters/pandas-lora/' } });
  assert.equal(v.text, '$(sparkle) SmolLM2-135M · cpu · pandas-lora');
  assert.equal(v.error, false);
});

test('ready tooltip reports the last completion time', () => {
  const v = statusView({ kind: 'server', status: { state: 'ready', model: 'm', device: 'cpu', lastLatencyMs: 412.6 } });
  assert.match(v.tooltip, /^Last completion: 413 ms$/m);
});

test('ready without adapter omits it', () => {
  const v = statusView({ kind: 'server', status: { state: 'ready', model: 'tiny', device: 'cuda', adapter: null } });
  assert.equal(v.text, '$(sparkle) tiny · cuda');
});

const CHOICE =
  'smollm2-135m (measured: expected to write ~7 % of characters (right 16 % of the time with the 757 tokens it has read, answering in time for 99 % of a line); saves the most typing here; qwen2.5-coder-0.5b not timed: at best ~5 % here; smollm2-135m: prefill 3.3 ms/token, decode 13.5 ms/token, typing p50 ~427 / p95 ~770 ms, ~7 % saved)';

const llamaReady: ServerStatus = {
  state: 'ready',
  model: 'smollm2-135m',
  device: 'cpu',
  engine: 'llama.cpp',
  engineReason: 'a GGUF model on a CPU',
  modelChoice: CHOICE,
  cpu: 'AMD EPYC (AVX2, AVX-512)',
  precision: 'Q4_K_M',
  adapter: null,
  lastLatencyMs: 187.6,
  lastPrefillTokens: 12,
};

test('ready shows the model and the engine; the device only when it is not the CPU', () => {
  assert.equal(statusView({ kind: 'server', status: llamaReady }).text, '$(sparkle) smollm2-135m · llama.cpp');
  const gpu = statusView({ kind: 'server', status: { state: 'ready', model: 'Qwen/Qwen2.5-Coder-0.5B', device: 'cuda', engine: 'torch', adapter: '/a/pandas-lora' } });
  assert.equal(gpu.text, '$(sparkle) Qwen2.5-Coder-0.5B · torch · cuda · pandas-lora');
});

test('ready tooltip says why this model and engine, and the CPU, precision and last latency', () => {
  const lines = statusView({ kind: 'server', status: { ...llamaReady, precisionChoice: 'int8 timed fastest' } }).tooltip.split('\n');
  assert.equal(lines[0], 'ghostframe ready: smollm2-135m · llama.cpp');
  assert.ok(lines.includes(`Model: ${CHOICE}`), lines.join('\n'));
  assert.ok(lines.includes('Engine: llama.cpp (a GGUF model on a CPU)'));
  assert.ok(lines.includes('CPU: AMD EPYC (AVX2, AVX-512)'));
  assert.ok(lines.includes('Precision: Q4_K_M (int8 timed fastest)'));
  assert.ok(lines.includes('Adapter: none'));
  assert.ok(lines.includes('Last completion: 188 ms, 12 prompt tokens computed'));
});

test('without a model choice the tooltip names the model; without a latency it says none', () => {
  const v = statusView({ kind: 'server', status: { state: 'ready', model: '/models/mine.gguf', device: 'cpu', engine: 'llama.cpp' } });
  assert.match(v.tooltip, /^Model: \/models\/mine\.gguf$/m);
  assert.doesNotMatch(v.tooltip, /Last completion|Precision|CPU:/);
});

test('a refused adapter shows as a warning: base model in the item, the reason in the tooltip', () => {
  const reason = "Adapter /a/pandas-lora was not loaded: its training run's evaluation found it 'no better' compared with the base model.";
  const v = statusView({ kind: 'server', status: { ...llamaReady, adapterRefused: reason } });
  assert.equal(v.text, '$(warning) smollm2-135m · llama.cpp · base model');
  assert.equal(v.warning, true);
  assert.equal(v.error, false);
  assert.match(v.tooltip, /^ghostframe ready without your adapter/);
  assert.ok(v.tooltip.split('\n').includes(`Adapter not served: ${reason}`));
  assert.match(v.tooltip, /use the adapter anyway, or serve without it/);
  assert.equal(statusView({ kind: 'server', status: llamaReady }).warning, false);
});

test('refusedAdapter: only a ready server with a reason has one', () => {
  assert.equal(refusedAdapter({ kind: 'server', status: { ...llamaReady, adapterRefused: 'no better' } }), 'no better');
  assert.equal(refusedAdapter({ kind: 'server', status: { ...llamaReady, adapterRefused: null } }), undefined);
  assert.equal(refusedAdapter({ kind: 'server', status: { ...llamaReady, adapterRefused: '' } }), undefined);
  assert.equal(refusedAdapter({ kind: 'server', status: { state: 'loading', adapterRefused: 'stale' } }), undefined);
  assert.equal(refusedAdapter({ kind: 'starting' }), undefined);
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
  assert.equal(statusView({ kind: 'server', status: { state: 'error', message: 'x' } }).warning, false);
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

test('a team server that failed the last request makes the item a warning; the tooltip says the prompt leaves', () => {
  const ok = statusView({ kind: 'server', status: { state: 'ready', model: 'qwen', device: 'remote gpu-box', engine: 'remote', remote: 'remote: ok' } });
  assert.equal(ok.warning, false);
  assert.match(ok.tooltip, /Team server: remote: ok/);
  assert.match(ok.tooltip, /sent to ghostframe\.endpoint/);
  const down = statusView({ kind: 'server', status: { state: 'ready', model: 'qwen', device: 'remote gpu-box', engine: 'remote', remote: 'remote: unreachable; gpu-box: ConnectionRefusedError' } });
  assert.equal(down.warning, true);
  assert.match(down.text, /^\$\(warning\) .*remote: unreachable$/);
  const local = statusView({ kind: 'server', status: { state: 'ready', model: 'qwen', device: 'cpu', engine: 'llama.cpp' } });
  assert.doesNotMatch(local.tooltip, /Team server/);
});
