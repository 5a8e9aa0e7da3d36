/**
 * Reads `ghostframe.*` VS Code settings and maps them to the server's settings object.
 *
 * Pure (no `vscode` import) so it is unit-tested. Defaults, ranges and enums are
 * not written here: they come from `package.json`'s `contributes.configuration`,
 * which `npm run settings` generates from the server's Python `Settings`
 * (tests/test_settings_schema.py fails when they disagree). Every property that
 * is not client-only is sent to the server, so a new server setting needs no
 * TypeScript change.
 */
import manifest from '../package.json';

export type SettingValue = string | number | boolean;

/** One entry of `contributes.configuration.properties`. */
export interface SettingSchema {
  type: 'string' | 'integer' | 'boolean';
  default: SettingValue;
  minimum?: number;
  maximum?: number;
  enum?: string[];
  pattern?: string;
}

const PREFIX = 'ghostframe.';

/** Every `ghostframe.*` setting, keyed without the prefix (`maxNewTokens`, `server.pythonPath`). */
export const SCHEMA: Readonly<Record<string, SettingSchema>> = Object.fromEntries(
  Object.entries(manifest.contributes.configuration.properties as Record<string, SettingSchema>).map(([k, v]) => [k.slice(PREFIX.length), v]),
);

/** Settings only the extension reads; never sent to the server (checked against package.json by the Python test). */
export const CLIENT_ONLY_KEYS = [
  'triggerMode',
  'debounceMs',
  'server.pythonPath',
  'setup.torch',
  'setup.torchIndexUrl',
  'train.budget',
  'trace.server',
] as const;

export type ClientOnlyKey = (typeof CLIENT_ONLY_KEYS)[number];

/** The server's settings, camelCase, exactly as the server names them. */
export type ServerSettings = Record<string, SettingValue>;

export const SERVER_KEYS: readonly string[] = Object.keys(SCHEMA).filter((k) => !(CLIENT_ONLY_KEYS as readonly string[]).includes(k));

/** Reads one key of the `ghostframe` section, like `WorkspaceConfiguration.get`. */
export type ConfigGetter = (key: string) => unknown;

/**
 * `value` checked against the schema of `key`: the default when it has the wrong
 * type, is not one of the enum's values or does not match the pattern, clamped into [minimum, maximum] when it
 * is a number (a hand-edited settings.json can hold anything).
 */
export function validated(key: string, value: unknown): SettingValue {
  const s = SCHEMA[key];
  if (!s) throw new Error(`unknown setting ghostframe.${key}`);
  switch (s.type) {
    case 'boolean':
      return typeof value === 'boolean' ? value : s.default;
    case 'integer': {
      if (typeof value !== 'number' || !Number.isFinite(value)) return s.default;
      return Math.min(s.maximum ?? Infinity, Math.max(s.minimum ?? -Infinity, Math.round(value)));
    }
    case 'string': {
      if (typeof value !== 'string') return s.default;
      const v = value.trim();
      if (s.enum) return s.enum.includes(v.toLowerCase()) ? v.toLowerCase() : s.default;
      if (s.pattern && !new RegExp(s.pattern).test(v)) return s.default;
      return v;
    }
  }
}

/** The default of `key` from package.json. */
export function defaultOf(key: string): SettingValue {
  const s = SCHEMA[key];
  if (!s) throw new Error(`unknown setting ghostframe.${key}`);
  return s.default;
}

/**
 * Builds the server settings from the editor's configuration.
 * `expandPath` resolves `~` and `${workspaceFolder}` in the adapter and local model paths.
 */
export function toServerSettings(get: ConfigGetter, expandPath: (p: string) => string = (p) => p): ServerSettings {
  const out: ServerSettings = {};
  for (const key of SERVER_KEYS) out[key] = validated(key, get(key));
  if (typeof out.model === 'string' && out.model && looksLikePath(out.model)) out.model = expandPath(out.model);
  if (typeof out.adapter === 'string' && out.adapter) out.adapter = expandPath(out.adapter);
  return out;
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

/** Debounce delay in ms, within the schema's range. */
export function debounceMs(get: ConfigGetter): number {
  return validated('debounceMs', get('debounceMs')) as number;
}

export type TriggerMode = 'automatic' | 'manual';

/** `manual`: suggestions only when asked for with the keybinding (Alt+\). */
export function triggerMode(get: ConfigGetter): TriggerMode {
  return validated('triggerMode', get('triggerMode')) as TriggerMode;
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
