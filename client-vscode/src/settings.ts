/**
 * Maps `ghostframe.*` VS Code settings to the server's settings object.
 *
 * Pure (no `vscode` import) so it is unit-tested; the server gets exactly
 * what this returns, both in `initializationOptions` and on every
 * `workspace/didChangeConfiguration`, so the two can never drift apart.
 */

export type Device = 'auto' | 'cpu' | 'cuda';

/** The settings the server understands (camelCase, same names as the server's). */
export interface ServerSettings {
  model: string;
  adapter: string;
  device: Device;
  cpuInt8: boolean;
  maxNewTokens: number;
  maxPromptTokens: number;
  multiline: boolean;
  enable: boolean;
}

export const DEFAULTS: ServerSettings = {
  model: '',
  adapter: '',
  device: 'auto',
  cpuInt8: true,
  maxNewTokens: 64,
  maxPromptTokens: 1024,
  multiline: true,
  enable: true,
};

/** Settings that only the extension reads; never sent to the server. */
export const CLIENT_ONLY_KEYS = ['debounceMs', 'trace.server', 'server.pythonPath'] as const;

/** Reads one key of the `ghostframe` section, like `WorkspaceConfiguration.get`. */
export type ConfigGetter = (key: string) => unknown;

function str(value: unknown, fallback: string): string {
  return typeof value === 'string' ? value.trim() : fallback;
}

function int(value: unknown, fallback: number, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) return fallback;
  return Math.min(max, Math.max(min, Math.round(value)));
}

function bool(value: unknown, fallback: boolean): boolean {
  return typeof value === 'boolean' ? value : fallback;
}

/**
 * Builds the server settings, falling back to the server's defaults for
 * missing or malformed values (a hand-edited settings.json can hold anything).
 * `expandPath` resolves `~` and `${workspaceFolder}` in the adapter path.
 */
export function toServerSettings(
  get: ConfigGetter,
  expandPath: (p: string) => string = (p) => p,
): ServerSettings {
  const device = str(get('device'), DEFAULTS.device);
  const adapter = str(get('adapter'), DEFAULTS.adapter);
  const model = str(get('model'), DEFAULTS.model);
  return {
    model: model && looksLikePath(model) ? expandPath(model) : model,
    adapter: adapter ? expandPath(adapter) : '',
    device: device === 'cpu' || device === 'cuda' ? device : 'auto',
    cpuInt8: bool(get('cpuInt8'), DEFAULTS.cpuInt8),
    maxNewTokens: int(get('maxNewTokens'), DEFAULTS.maxNewTokens, 1, 512),
    maxPromptTokens: int(get('maxPromptTokens'), DEFAULTS.maxPromptTokens, 64, 32768),
    multiline: bool(get('multiline'), DEFAULTS.multiline),
    enable: bool(get('enable'), DEFAULTS.enable),
  };
}

/** A model setting is either a hub-style name (`org/name`) or a local folder. */
function looksLikePath(value: string): boolean {
  return value.startsWith('~') || value.startsWith('.') || value.startsWith('/') || value.includes('${') || /^[A-Za-z]:[\\/]/.test(value);
}

/** `initializationOptions` as the server expects them. */
export function initializationOptions(settings: ServerSettings): { ghostframe: ServerSettings } {
  return { ghostframe: settings };
}

/** Params of `workspace/didChangeConfiguration`. */
export function didChangeConfigurationParams(settings: ServerSettings): { settings: { ghostframe: ServerSettings } } {
  return { settings: { ghostframe: settings } };
}

/** Debounce delay in ms, clamped to something sane. */
export function debounceMs(get: ConfigGetter): number {
  return int(get('debounceMs'), 75, 0, 2000);
}

/** Changing these needs a new server process (the rest is live via LSP). */
export function needsRestart(changedKey: string): boolean {
  return changedKey === 'server.pythonPath';
}

/** Expands `~` and `${workspaceFolder}` / `${userHome}` in a user-supplied path. */
export function expandVariables(p: string, home: string, workspaceFolder: string | undefined): string {
  let out = p.replace(/\$\{userHome\}/g, home);
  if (workspaceFolder !== undefined) out = out.replace(/\$\{workspaceFolder\}/g, workspaceFolder);
  if (out === '~') return home;
  if (out.startsWith('~/') || out.startsWith('~\\')) return home + out.slice(1);
  return out;
}

/**
 * Python log level for the server (`GHOSTFRAME_LOG_LEVEL`), from the log
 * channel's level (vscode.LogLevel: 0 Off, 1 Trace, 2 Debug, 3 Info, 4 Warning, 5 Error).
 * One step quieter than the channel: the server's INFO includes every LSP
 * message, and the client logs all server stderr as errors.
 */
export function serverLogLevel(channelLevel: number): string {
  if (channelLevel === 1) return 'DEBUG';
  if (channelLevel === 2) return 'INFO';
  if (channelLevel === 5 || channelLevel === 0) return 'ERROR';
  return 'WARNING';
}
