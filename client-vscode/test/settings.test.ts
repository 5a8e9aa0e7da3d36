import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  DEFAULTS,
  debounceMs,
  didChangeConfigurationParams,
  expandVariables,
  initializationOptions,
  needsRestart,
  serverLogLevel,
  toServerSettings,
} from '../src/settings';

const from = (values: Record<string, unknown>) => (key: string) => values[key];

test('empty configuration gives the server defaults', () => {
  assert.deepEqual(toServerSettings(from({})), DEFAULTS);
});

test('every server setting is mapped with its own name', () => {
  const s = toServerSettings(
    from({ model: 'HuggingFaceTB/SmolLM2-360M', adapter: '/a/pandas-lora', device: 'cuda', cpuInt8: false, maxNewTokens: 32, maxPromptTokens: 2048, multiline: false, enable: false }),
  );
  assert.deepEqual(s, {
    model: 'HuggingFaceTB/SmolLM2-360M',
    adapter: '/a/pandas-lora',
    device: 'cuda',
    cpuInt8: false,
    maxNewTokens: 32,
    maxPromptTokens: 2048,
    multiline: false,
    enable: false,
  });
});

test('client-only settings never reach the server', () => {
  const s = toServerSettings(from({ debounceMs: 10, 'trace.server': 'verbose', 'server.pythonPath': '/usr/bin/python3' }));
  assert.deepEqual(Object.keys(s).sort(), ['adapter', 'cpuInt8', 'device', 'enable', 'maxNewTokens', 'maxPromptTokens', 'model', 'multiline']);
});

test('malformed values fall back or are clamped', () => {
  const s = toServerSettings(from({ device: 'tpu', maxNewTokens: 1e9, maxPromptTokens: 'many', multiline: 'yes', enable: null, model: 42, cpuInt8: 'no' }));
  assert.equal(s.device, 'auto');
  assert.equal(s.maxNewTokens, 512); // the server's own limit
  assert.equal(s.cpuInt8, true);
  assert.equal(s.maxPromptTokens, 1024);
  assert.equal(s.multiline, true);
  assert.equal(s.enable, true);
  assert.equal(s.model, '');
  assert.equal(toServerSettings(from({ maxNewTokens: 0 })).maxNewTokens, 1);
  assert.equal(toServerSettings(from({ maxNewTokens: 12.6 })).maxNewTokens, 13);
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

test('debounce default and clamping', () => {
  assert.equal(debounceMs(from({})), 75);
  assert.equal(debounceMs(from({ debounceMs: -5 })), 0);
  assert.equal(debounceMs(from({ debounceMs: 99999 })), 2000);
});

test('only the interpreter needs a server restart', () => {
  assert.equal(needsRestart('server.pythonPath'), true);
  assert.equal(needsRestart('model'), false);
});

test('server log level is one step quieter than the log channel', () => {
  assert.equal(serverLogLevel(1), 'DEBUG');
  assert.equal(serverLogLevel(2), 'INFO');
  assert.equal(serverLogLevel(3), 'WARNING');
  assert.equal(serverLogLevel(4), 'WARNING');
  assert.equal(serverLogLevel(5), 'ERROR');
});
