/**
 * What the status-bar item shows for each server state. Pure so the texts
 * are unit-tested; `statusBar.ts` only copies them onto the VS Code item.
 */

/** Params of the server's `ghostframe/status` notification (the fields the item uses). */
export interface ServerStatus {
  /** The server's own state; 'idle' before it has loaded anything. */
  state: 'idle' | 'loading' | 'ready' | 'error' | 'disabled';
  model?: string;
  device?: string;
  /** What the weights run in: int8, float32, bfloat16 (torch) or the GGUF's weight type. */
  precision?: string;
  /** How the precision was chosen, with the timings behind it. */
  precisionChoice?: string;
  /** What runs the model: 'torch' or 'llama.cpp'. */
  engine?: string;
  /** Why that engine serves on this machine. */
  engineReason?: string;
  /** With the model setting empty: which model saves the most typing on this machine, what it is expected to write, and why. */
  modelChoice?: string;
  /** The CPU and the flags that decide the precision. */
  cpu?: string;
  adapter?: string | null;
  /** An adapter was asked for and not served (the base model serves): why. */
  adapterRefused?: string | null;
  message?: string;
  /** Time the last completion took in the server, when it reports it. */
  lastLatencyMs?: number | null;
  /** Prompt tokens the last completion computed (the rest came from its cache). */
  lastPrefillTokens?: number | null;
  /** Engine remote: the team server's state ("remote: ok", "remote: unreachable", ...); the prompt goes there. */
  remote?: string | null;
}

/** Client-side states the server cannot report itself. */
export type ClientState =
  | { kind: 'starting' }
  | { kind: 'setup' }
  | { kind: 'server'; status: ServerStatus }
  | { kind: 'disabled' }
  | { kind: 'stopped'; message: string };

export interface StatusView {
  text: string;
  /** Plain text; one fact per line (VS Code shows a string tooltip's line breaks). */
  tooltip: string;
  /** true: use the error background colour. */
  error: boolean;
  /** true: use the warning background colour (the server runs, but not as asked). */
  warning: boolean;
}

/** `/home/me/adapters/pandas-lora/` → `pandas-lora`. */
export function shortName(pathOrName: string): string {
  const parts = pathOrName.replace(/[\\/]+$/, '').split(/[\\/]/);
  return parts[parts.length - 1] || pathOrName;
}

/** Why the server serves without the adapter that was asked for, when it does. */
export function refusedAdapter(state: ClientState): string | undefined {
  if (state.kind !== 'server' || state.status.state !== 'ready') return undefined;
  return state.status.adapterRefused || undefined;
}

function plain(text: string, tooltip: string, error = false): StatusView {
  return { text, tooltip, error, warning: false };
}

export function statusView(state: ClientState): StatusView {
  switch (state.kind) {
    case 'starting':
      return plain('$(loading~spin) ghostframe', 'ghostframe: starting the server…');
    case 'setup':
      return plain('$(loading~spin) ghostframe set up', 'ghostframe: installing the server into its environment…');
    case 'disabled':
      return plain('$(circle-slash) ghostframe', 'ghostframe: inline completions are off (click to turn on)');
    case 'stopped':
      return plain('$(error) ghostframe', `ghostframe: ${state.message}`, true);
    case 'server': {
      const s = state.status;
      if (s.state === 'disabled') return statusView({ kind: 'disabled' });
      if (s.state === 'idle') return statusView({ kind: 'starting' });
      if (s.state === 'loading') {
        const model = shortName(s.model || 'default model');
        const msg = s.message ? `: ${s.message}` : '';
        return plain(`$(loading~spin) ghostframe${s.message ? ' ' + s.message : ''}`, `ghostframe: loading ${model}${msg}`);
      }
      if (s.state === 'error') return plain('$(error) ghostframe', `ghostframe error: ${s.message || 'unknown error'}`, true);
      return readyView(s);
    }
  }
}

/**
 * Ready: the model and what runs it in the item (the device only when it is
 * not the CPU, the usual case), everything behind that choice in the tooltip.
 * A refused adapter turns the item into a warning: the user asked for
 * something the server does not serve.
 */
function readyView(s: ServerStatus): StatusView {
  const model = shortName(s.model || 'default model');
  const refused = s.adapterRefused || undefined;
  const parts = [model];
  if (s.engine) {
    parts.push(s.engine);
    if (s.device && s.device !== 'cpu') parts.push(s.device);
  } else {
    parts.push(s.device || '?'); // a server that does not say its engine
  }
  if (refused) parts.push('base model');
  else if (s.adapter) parts.push(shortName(s.adapter));
  // A team server that failed the last request (down, full, refusing the key) makes the item a warning.
  const remoteTrouble = s.remote && !/^remote: (ok|prompts go to)/.test(s.remote) ? s.remote : undefined;
  if (remoteTrouble) parts.push(remoteTrouble.split(';')[0]);
  const summary = parts.join(' · ');

  const lines = [refused ? `ghostframe ready without your adapter: ${summary}` : `ghostframe ready: ${summary}`];
  if (refused) lines.push(`Adapter not served: ${refused}`, 'Click for the ways out: use the adapter anyway, or serve without it.');
  lines.push(`Model: ${s.modelChoice || s.model || 'default model'}`);
  if (s.engine) lines.push(`Engine: ${s.engine}${s.engineReason ? ` (${s.engineReason})` : ''}`);
  if (s.device) lines.push(`Device: ${s.device}`);
  if (s.cpu) lines.push(`CPU: ${s.cpu}`);
  if (s.precision) lines.push(`Precision: ${s.precision}${s.precisionChoice ? ` (${s.precisionChoice})` : ''}`);
  if (!refused) lines.push(`Adapter: ${s.adapter ? s.adapter : 'none'}`);
  if (s.remote) {
    lines.push(`Team server: ${s.remote}`);
    lines.push('Your prompt (the code around the cursor and context from the workspace) is sent to ghostframe.endpoint.');
  }
  if (typeof s.lastLatencyMs === 'number') {
    const prefill = typeof s.lastPrefillTokens === 'number' ? `, ${s.lastPrefillTokens} prompt tokens computed` : '';
    lines.push(`Last completion: ${Math.round(s.lastLatencyMs)} ms${prefill}`);
  }
  lines.push('Click for options');
  const warning = Boolean(refused || remoteTrouble);
  return { text: `${warning ? '$(warning)' : '$(sparkle)'} ${summary}`, tooltip: lines.join('\n'), error: false, warning };
}
