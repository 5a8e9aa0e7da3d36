/**
 * What the status-bar item shows for each server state. Pure so the texts
 * are unit-tested; `statusBar.ts` only copies them onto the VS Code item.
 */

/** Params of the server's `ghostframe/status` notification. */
export interface ServerStatus {
  /** The server's own state; 'idle' before it has loaded anything. */
  state: 'idle' | 'loading' | 'ready' | 'error' | 'disabled';
  model?: string;
  device?: string;
  adapter?: string | null;
  message?: string;
  /** Time the last completion took in the server, when it reports it. */
  lastLatencyMs?: number | null;
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
  tooltip: string;
  /** true: use the error background colour. */
  error: boolean;
}

/** `/home/me/adapters/pandas-lora/` → `pandas-lora`. */
export function shortName(pathOrName: string): string {
  const parts = pathOrName.replace(/[\\/]+$/, '').split(/[\\/]/);
  return parts[parts.length - 1] || pathOrName;
}

export function statusView(state: ClientState): StatusView {
  switch (state.kind) {
    case 'starting':
      return { text: '$(loading~spin) ghostframe', tooltip: 'ghostframe: starting the server…', error: false };
    case 'setup':
      return { text: '$(loading~spin) ghostframe set up', tooltip: 'ghostframe: installing the server into its environment…', error: false };
    case 'disabled':
      return { text: '$(circle-slash) ghostframe', tooltip: 'ghostframe: inline completions are off (click to turn on)', error: false };
    case 'stopped':
      return { text: '$(error) ghostframe', tooltip: `ghostframe: ${state.message}`, error: true };
    case 'server': {
      const s = state.status;
      if (s.state === 'disabled') return statusView({ kind: 'disabled' });
      const model = shortName(s.model || 'default model');
      if (s.state === 'idle') return statusView({ kind: 'starting' });
      if (s.state === 'loading') {
        const msg = s.message ? `: ${s.message}` : '';
        return { text: `$(loading~spin) ghostframe${s.message ? ' ' + s.message : ''}`, tooltip: `ghostframe: loading ${model}${msg}`, error: false };
      }
      if (s.state === 'error') {
        return { text: '$(error) ghostframe', tooltip: `ghostframe error: ${s.message || 'unknown error'}`, error: true };
      }
      const parts = [model, s.device || '?'];
      if (s.adapter) parts.push(shortName(s.adapter));
      const summary = parts.join(' · ');
      const latency = typeof s.lastLatencyMs === 'number' ? ` (last completion ${Math.round(s.lastLatencyMs)} ms)` : '';
      return { text: `$(sparkle) ${summary}`, tooltip: `ghostframe ready: ${summary}${latency} · click for options`, error: false };
    }
  }
}
