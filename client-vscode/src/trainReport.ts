/**
 * Reading a training run as it goes and when it ends, from files the trainer
 * writes into its output folder (never from its console text):
 *   metrics.jsonl   one JSON object a line: {step, split: "train"|"valid", loss, ...}, and
 *                   {step, split: "forecast", verdict, epochs, text} once the run knows
 *                   what its steps buy and whether the evaluation is likely to pass
 *   ghostframe.json the run's metadata; `gate` holds the evaluation's verdict
 *                   ("use it" | "no better" | "worse") once the trainer writes one
 *   report.md       the evaluation report (before/after table, loss plot), when written
 * Pure, so it is unit-tested.
 */

export interface MetricsRecord {
  step: number;
  split: string;
  loss?: number;
  /** Total optimizer steps, when the trainer reports it. */
  max_steps?: number;
  [key: string]: unknown;
}

/** The records of a metrics.jsonl text; a half-written last line is skipped. */
export function parseMetrics(text: string): MetricsRecord[] {
  const out: MetricsRecord[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      const r = JSON.parse(line);
      if (r && typeof r.step === 'number' && typeof r.split === 'string') out.push(r);
    } catch {
      // the trainer is writing this line right now
    }
  }
  return out;
}

export interface TrainProgress {
  step: number;
  totalSteps?: number;
  trainLoss?: number;
  validLoss?: number;
  secondsLeft?: number;
  /** 0–100 when the total is known. */
  percent?: number;
}

/**
 * Where the run is. `totalSteps` comes from the records (`max_steps`) or the run's
 * config; the time left extrapolates from the time since the first step was logged.
 */
export function progressOf(records: MetricsRecord[], elapsedSinceFirstStepS: number | undefined, configuredTotal?: number): TrainProgress {
  const train = records.filter((r) => r.split === 'train');
  const valid = records.filter((r) => r.split === 'valid' && typeof r.loss === 'number');
  const last = train[train.length - 1];
  const step = last?.step ?? 0;
  const totalSteps = [...records].reverse().find((r) => typeof r.max_steps === 'number')?.max_steps ?? configuredTotal;
  const p: TrainProgress = { step, totalSteps, trainLoss: last?.loss, validLoss: valid[valid.length - 1]?.loss };
  if (totalSteps && totalSteps > 0) {
    p.percent = Math.min(100, (100 * step) / totalSteps);
    const first = train[0];
    if (first && step > first.step && elapsedSinceFirstStepS !== undefined) {
      p.secondsLeft = (elapsedSinceFirstStepS / (step - first.step)) * (totalSteps - step);
    }
  }
  return p;
}

export interface RunForecast {
  /** "likely" | "unlikely" (to pass the evaluation) | "no curve" | "no gate". */
  verdict: string;
  epochs?: number;
  /** The trainer's whole forecast: what the budget buys, the measured curve it read, what would pass instead. */
  text: string;
}

/** The run's latest forecast (the trainer writes one before training, or once a --budget run has planned). */
export function forecastOf(records: MetricsRecord[]): RunForecast | undefined {
  const r = [...records].reverse().find((x) => x.split === 'forecast' && typeof x.verdict === 'string' && typeof x.text === 'string');
  if (!r) return undefined;
  return { verdict: r.verdict as string, epochs: typeof r.epochs === 'number' ? r.epochs : undefined, text: r.text as string };
}

/**
 * What the user is told when the forecast says the run is unlikely to pass: the trainer's
 * own words, one line each ("forecast: " dropped), so the ways out (a longer budget, a
 * smaller model, a GPU) are read before the minutes are spent. Undefined otherwise.
 */
export function forecastWarning(f: RunForecast): string | undefined {
  if (f.verdict !== 'unlikely') return undefined;
  return f.text.replace(/^forecast:\s*/, '').split('\n').map((l) => l.trim().replace(/^- /, '')).filter(Boolean).join(' · ');
}

export function formatDuration(seconds: number): string {
  if (seconds < 60) return `${Math.max(1, Math.round(seconds))} s`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  return `${Math.floor(seconds / 3600)} h ${Math.round((seconds % 3600) / 60)} min`;
}

/** `step 12/40 · loss 2.314 · about 3 min left · likely to pass` */
export function progressMessage(p: TrainProgress, forecast?: RunForecast): string {
  if (p.step === 0) return p.validLoss !== undefined ? `measuring the base model (valid loss ${p.validLoss.toFixed(3)})` : 'preparing the data and the model';
  const parts = [p.totalSteps ? `step ${p.step}/${p.totalSteps}` : `step ${p.step}`];
  if (p.trainLoss !== undefined) parts.push(`loss ${p.trainLoss.toFixed(3)}`);
  if (p.secondsLeft !== undefined) parts.push(`about ${formatDuration(p.secondsLeft)} left`);
  if (forecast?.verdict === 'likely' || forecast?.verdict === 'unlikely') parts.push(`${forecast.verdict} to pass`);
  return parts.join(' · ');
}

export type Verdict = 'use it' | 'no better' | 'worse';

export interface Outcome {
  verdict: Verdict;
  /** Where the verdict came from: the trainer's evaluation gate, or our own comparison of valid loss. */
  source: 'gate' | 'valid loss';
  detail: string;
}

const VERDICTS: Verdict[] = ['use it', 'no better', 'worse'];

function asVerdict(v: unknown): Verdict | undefined {
  if (typeof v !== 'string') return undefined;
  const s = v.trim().toLowerCase().replace(/[_-]/g, ' ');
  return VERDICTS.find((x) => x === s);
}

/**
 * The verdict on a finished run from its ghostframe.json: the trainer's `gate`
 * (a verdict string, or an object with `verdict`) when there is one; else the
 * held-out loss before and after (lower is better); undefined when neither exists.
 */
export function outcomeOf(metadata: unknown): Outcome | undefined {
  if (!metadata || typeof metadata !== 'object') return undefined;
  const m = metadata as Record<string, unknown>;
  const gate = m.gate;
  const fromGate = asVerdict(gate) ?? (gate && typeof gate === 'object' ? asVerdict((gate as Record<string, unknown>).verdict) : undefined);
  if (fromGate) {
    const reason = gate && typeof gate === 'object' ? (gate as Record<string, unknown>).reason : undefined;
    return { verdict: fromGate, source: 'gate', detail: typeof reason === 'string' ? reason : `the evaluation says: ${fromGate}` };
  }
  const metrics = m.metrics as Record<string, unknown> | undefined;
  const before = metrics?.valid_loss_before;
  const after = metrics?.valid_loss_after;
  if (typeof before !== 'number' || typeof after !== 'number') return undefined;
  const verdict: Verdict = after < before ? 'use it' : after > before ? 'worse' : 'no better';
  return { verdict, source: 'valid loss', detail: `held-out loss ${before.toFixed(3)} → ${after.toFixed(3)}` };
}

/** A short report for a run whose trainer wrote no report.md: verdict, losses, loss plot. */
export function fallbackReport(metadata: unknown, outcome: Outcome | undefined, hasPlot: boolean): string {
  const m = (metadata ?? {}) as Record<string, unknown>;
  const metrics = (m.metrics ?? {}) as Record<string, unknown>;
  const num = (v: unknown, digits = 3) => (typeof v === 'number' ? v.toFixed(digits) : '–');
  const lines = [
    '# ghostframe: training report',
    '',
    outcome
      ? `**Verdict: ${outcome.verdict}** (${outcome.detail}).` + (outcome.verdict === 'use it' ? '' : ' The adapter is not switched on.')
      : '**No verdict**: the run reported no held-out loss.',
    '',
    '| | base model | with the adapter |',
    '| --- | ---: | ---: |',
    `| held-out loss | ${num(metrics.valid_loss_before)} | ${num(metrics.valid_loss_after)} |`,
    `| held-out perplexity | ${num(metrics.valid_perplexity_before, 2)} | ${num(metrics.valid_perplexity_after, 2)} |`,
    '',
    `${num(metrics.steps, 0)} steps, ${num(metrics.train_seconds, 0)} s.`,
  ];
  if (hasPlot) lines.push('', '![loss](loss.png)');
  return lines.join('\n') + '\n';
}
