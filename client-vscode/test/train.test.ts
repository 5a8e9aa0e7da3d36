import assert from 'node:assert/strict';
import { test } from 'node:test';
import { adapterFolderName, trainerArgs } from '../src/trainArgs';
import { fallbackReport, forecastOf, forecastWarning, formatDuration, outcomeOf, parseMetrics, progressMessage, progressOf } from '../src/trainReport';

test('adapter folder names are unique per run and filesystem-safe', () => {
  const name = adapterFolderName('My Project (pandas)', new Date(2026, 10, 24, 9, 5, 7));
  assert.equal(name, 'My-Project-pandas-20261124-090507');
  assert.equal(adapterFolderName('///', new Date(2026, 0, 1)), 'workspace-20260101-000000');
});

test('trainer gets every workspace folder, the output and the server base model', () => {
  assert.deepEqual(trainerArgs(['/a', '/b c'], '/out'), ['-m', 'ghostframe.trainer', '/a', '/b c', '--output', '/out', '--device', 'auto', '--quiet']);
  assert.deepEqual(trainerArgs(['/a'], '/out', '/models/tiny', 'cpu').slice(5), ['--model', '/models/tiny', '--device', 'cpu', '--quiet']);
});

test('the time budget setting bounds the run; empty leaves the step count to the trainer', () => {
  assert.deepEqual(trainerArgs(['/a'], '/out', '', 'auto', ' 20m ').slice(5), ['--device', 'auto', '--budget', '20m', '--quiet']);
  assert.ok(!trainerArgs(['/a'], '/out', '', 'auto', '  ').includes('--budget'));
});

// Lines as ghostframe-train's MetricsLog writes them (trainer/training/metrics.py).
const METRICS = [
  '{"step": 0, "split": "valid", "loss": 3.2, "perplexity": 24.5}',
  '{"step": 10, "split": "train", "loss": 2.9, "lr": 0.0002, "tokens_per_second": 900.0, "tokens_seen": 81920}',
  '{"step": 20, "split": "train", "loss": 2.5, "lr": 0.0002, "tokens_per_second": 910.0, "tokens_seen": 163840}',
  '{"step": 20, "split": "va',
].join('\n');

test('metrics: records are read, a half-written line is skipped', () => {
  const records = parseMetrics(METRICS);
  assert.equal(records.length, 3);
  assert.deepEqual(records.map((r) => r.step), [0, 10, 20]);
});

test('progress: steps, loss and time left from the records', () => {
  const p = progressOf(parseMetrics(METRICS), 30, 40);
  assert.equal(p.step, 20);
  assert.equal(p.percent, 50);
  assert.equal(p.trainLoss, 2.5);
  assert.equal(p.validLoss, 3.2);
  assert.equal(p.secondsLeft, 60); // 10 steps took 30 s, 20 to go
  assert.equal(progressMessage(p), 'step 20/40 · loss 2.500 · about 1 min left');
});

test('progress: a total in the records wins; without any total there is no time left', () => {
  const withTotal = parseMetrics('{"step": 5, "split": "train", "loss": 1.0, "max_steps": 10}');
  assert.equal(progressOf(withTotal, 5, 99).totalSteps, 10);
  const p = progressOf(parseMetrics(METRICS), 30);
  assert.equal(p.secondsLeft, undefined);
  assert.equal(progressMessage(p), 'step 20 · loss 2.500');
  assert.match(progressMessage(progressOf([], undefined)), /preparing/);
});

test('durations read naturally', () => {
  assert.equal(formatDuration(0.2), '1 s');
  assert.equal(formatDuration(125), '2 min');
  assert.equal(formatDuration(3 * 3600 + 600), '3 h 10 min');
});

test('verdict: the trainer gate decides, as a string or an object', () => {
  assert.equal(outcomeOf({ gate: 'use it' })?.verdict, 'use it');
  assert.equal(outcomeOf({ gate: { verdict: 'no_better', reason: 'exact match 41% → 40%' } })?.detail, 'exact match 41% → 40%');
  assert.equal(outcomeOf({ gate: 'Worse', metrics: { valid_loss_before: 3, valid_loss_after: 1 } })?.verdict, 'worse');
});

test('verdict: without a gate, held-out loss before/after decides; without either, none', () => {
  const better = outcomeOf({ metrics: { valid_loss_before: 3.2, valid_loss_after: 2.1 } });
  assert.deepEqual(better, { verdict: 'use it', source: 'valid loss', detail: 'held-out loss 3.200 → 2.100' });
  assert.equal(outcomeOf({ metrics: { valid_loss_before: 2.0, valid_loss_after: 2.4 } })?.verdict, 'worse');
  assert.equal(outcomeOf({ metrics: { valid_loss_before: null, valid_loss_after: null } }), undefined);
  assert.equal(outcomeOf(undefined), undefined);
});

test('the fallback report has the verdict, the before/after table and the plot', () => {
  const meta = { metrics: { valid_loss_before: 3.2, valid_loss_after: 3.5, valid_perplexity_before: 24.5, valid_perplexity_after: 33.1, steps: 12, train_seconds: 8.4 } };
  const md = fallbackReport(meta, outcomeOf(meta), true);
  assert.match(md, /Verdict: worse/);
  assert.match(md, /not switched on/);
  assert.match(md, /\| held-out loss \| 3\.200 \| 3\.500 \|/);
  assert.match(md, /!\[loss\]\(loss\.png\)/);
  assert.doesNotMatch(fallbackReport(meta, outcomeOf(meta), false), /loss\.png/);
});

// The record ghostframe-train's MetricsLog.event writes when a --budget run has planned (trainer/training/loop.py).
const FORECAST = JSON.stringify({
  step: 4, split: 'forecast', verdict: 'unlikely', epochs: 0.32, steps: 84,
  text: 'forecast: UNLIKELY to pass the gate. This budget buys 0.32 epochs; its recipe first passed at 0.40 epochs. Instead:\n  - a longer budget: --budget 39m\n  - a CUDA GPU',
});

test('forecast: the latest one is read from the metrics, and only an unlikely one is a warning', () => {
  const records = parseMetrics([METRICS.split('\n').slice(0, 3).join('\n'), FORECAST].join('\n'));
  assert.equal(progressOf(records, 30, 40).step, 20); // the forecast record is not a step
  const f = forecastOf(records);
  assert.deepEqual(f && [f.verdict, f.epochs], ['unlikely', 0.32]);
  assert.equal(forecastWarning(f!), 'UNLIKELY to pass the gate. This budget buys 0.32 epochs; its recipe first passed at 0.40 epochs. Instead: · a longer budget: --budget 39m · a CUDA GPU');
  assert.match(progressMessage(progressOf(records, 30, 40), f), / · unlikely to pass$/);
  const likely = { verdict: 'likely', text: 'forecast: LIKELY to pass the gate.' };
  assert.equal(forecastWarning(likely), undefined);
  assert.equal(forecastWarning({ verdict: 'no curve', text: 'forecast: none; no curve was measured' }), undefined);
  assert.doesNotMatch(progressMessage(progressOf(records, 30, 40), { verdict: 'no curve', text: '' }), /pass/);
  assert.equal(forecastOf(parseMetrics(METRICS)), undefined);
});
