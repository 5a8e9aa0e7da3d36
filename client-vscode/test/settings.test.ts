import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  CLIENT_ONLY_KEYS,
  debounceMs,
  defaultOf,
  didChangeConfigurationParams,
  expandVariables,
  initializationOptions,
  SCHEMA,
  SERVER_KEYS,
  serverLogLevel,
  toServerSettings,
  triggerMode,
  validated,
} from '../src/settings';

const from = (values: Record<string, unknown>) => (key: string) => values[key];

test('the schema is package.json: every setting has a default, ranges where numeric', () => {
  for (const [key, s] of Object.entries(SCHEMA)) {
    assert.notEqual(s.default, undefined, key);
    if (s.type === 'integer') assert.ok(s.minimum !== undefined && s.maximum !== undefined, `${key} has a range`);
  }
  for (const key of CLIENT_ONLY_KEYS) assert.ok(SCHEMA[key], `${key} is in package.json`);
});

test('empty configuration gives the schema defaults for every server setting, and only those', () => {
  const s = toServerSettings(from({}));
  assert.deepEqual(Object.keys(s).sort(), [...SERVER_KEYS].sort());
  for (const key of SERVER_KEYS) assert.equal(s[key], defaultOf(key));
  for (const key of CLIENT_ONLY_KEYS) assert.ok(!(key in s), `${key} must not reach the server`);
});

test('every server setting is mapped with its own name', () => {
  const s = toServerSettings(
    from({ model: 'HuggingFaceTB/SmolLM2-360M', adapter: '/a/pandas-lora', device: 'cuda', maxNewTokens: 32, maxPromptTokens: 2048, multiline: false, enable: false }),
  );
  assert.equal(s.model, 'HuggingFaceTB/SmolLM2-360M');
  assert.equal(s.adapter, '/a/pandas-lora');
  assert.equal(s.device, 'cuda');
  assert.equal(s.maxNewTokens, 32);
  assert.equal(s.maxPromptTokens, 2048);
  assert.equal(s.multiline, false);
  assert.equal(s.enable, false);
});

test('malformed values fall back or are clamped to the schema range', () => {
  const s = toServerSettings(from({ device: 'tpu', maxNewTokens: 1e9, maxPromptTokens: 'many', multiline: 'yes', enable: null, model: 42 }));
  assert.equal(s.device, defaultOf('device'));
  assert.equal(s.maxNewTokens, SCHEMA.maxNewTokens.maximum);
  assert.equal(s.maxPromptTokens, defaultOf('maxPromptTokens'));
  assert.equal(s.multiline, defaultOf('multiline'));
  assert.equal(s.enable, defaultOf('enable'));
  assert.equal(s.model, defaultOf('model'));
  assert.equal(toServerSettings(from({ maxNewTokens: 0 })).maxNewTokens, SCHEMA.maxNewTokens.minimum);
  assert.equal(toServerSettings(from({ maxNewTokens: 12.6 })).maxNewTokens, 13);
  assert.equal(validated('device', ' CPU '), 'cpu');
  assert.throws(() => validated('noSuchSetting', 1), /unknown setting/);
});

test('a string that does not match its pattern falls back to the default', () => {
  assert.equal(validated('train.budget', ' 1.5h '), '1.5h');
  assert.equal(validated('train.budget', ''), '');
  assert.equal(validated('train.budget', 'twenty minutes'), defaultOf('train.budget'));
});

test('adapter and local model paths are expanded, hub names are not', () => {
  const expand = (p: string) => expandVariables(p, '/home/me', '/work/proj');
  const s = toServerSettings(from({ adapter: '${workspaceFolder}/adapters/x', model: '~/models/tiny' }), expand);
  assert.equal(s.adapter, '/work/proj/adapters/x');
  assert.equal(s.model, '/home/me/models/tiny');
  assert.equal(toServerSettings(from({ model: 'org/name' }), expand).model, 'org/name');
  assert.equal(toServerSettings(from({ adapter: '  ' }), expand).adapter, '');
});

test('expandVariables handles ~, ${userHome} and a missing workspace', () => {
  assert.equal(expandVariables('~', '/h', undefined), '/h');
  assert.equal(expandVariables('~/x', '/h', undefined), '/h/x');
  assert.equal(expandVariables('${userHome}/y', '/h', undefined), '/h/y');
  assert.equal(expandVariables('${workspaceFolder}/z', '/h', undefined), '${workspaceFolder}/z');
  assert.equal(expandVariables('/abs/~x', '/h', '/w'), '/abs/~x');
});

test('LSP payload shapes match the server contract', () => {
  const s = toServerSettings(from({ model: 'm' }));
  assert.deepEqual(initializationOptions(s), { ghostframe: s });
  assert.deepEqual(didChangeConfigurationParams(s), { settings: { ghostframe: s } });
});

test('debounce default and clamping come from the schema', () => {
  assert.equal(debounceMs(from({})), defaultOf('debounceMs'));
  assert.equal(debounceMs(from({ debounceMs: -5 })), SCHEMA.debounceMs.minimum);
  assert.equal(debounceMs(from({ debounceMs: 99999 })), SCHEMA.debounceMs.maximum);
});

test('trigger mode: automatic unless set to manual', () => {
  assert.equal(triggerMode(from({})), 'automatic');
  assert.equal(triggerMode(from({ triggerMode: 'manual' })), 'manual');
  assert.equal(triggerMode(from({ triggerMode: 'sometimes' })), 'automatic');
});

test('server log level is one step quieter than the log channel', () => {
  assert.equal(serverLogLevel(1), 'DEBUG');
  assert.equal(serverLogLevel(2), 'INFO');
  assert.equal(serverLogLevel(3), 'WARNING');
  assert.equal(serverLogLevel(4), 'WARNING');
  assert.equal(serverLogLevel(5), 'ERROR');
});
