import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkImportable, defaultPython, findServer, Runner, serverCandidates, serverCommand } from '../src/interpreter';

const never = async () => {
  throw new Error('must not be asked');
};

test('candidates: setting, managed environment, Python extension, python3', async () => {
  const c = await serverCandidates({
    configuredPath: '/opt/venv/bin/python',
    managedPython: '/storage/server-env/bin/python',
    activeInterpreter: async () => '/home/me/.venv/bin/python',
    platform: 'linux',
  });
  assert.deepEqual(c, [
    { path: '/opt/venv/bin/python', source: 'setting' },
    { path: '/storage/server-env/bin/python', source: 'managed' },
    { path: '/home/me/.venv/bin/python', source: 'python-extension' },
    { path: 'python3', source: 'default' },
  ]);
});

test('a blank setting, no managed environment and a failing Python extension leave python3', async () => {
  const c = await serverCandidates({ configuredPath: '  ', managedPython: undefined, activeInterpreter: never, platform: 'darwin' });
  assert.deepEqual(c, [{ path: 'python3', source: 'default' }]);
});

test('the same interpreter is tried once', async () => {
  const c = await serverCandidates({ configuredPath: 'python3', managedPython: undefined, activeInterpreter: async () => 'python3', platform: 'linux' });
  assert.deepEqual(c, [{ path: 'python3', source: 'setting' }]);
});

test('Windows default is python', () => {
  assert.equal(defaultPython('win32'), 'python');
});

/** A fake machine: which interpreters exist and have the server. */
function machine(has: Record<string, string | null>): Runner {
  return async (file, args) => {
    assert.equal(args[0], '-c');
    assert.match(args[1], /import ghostframe\.server/);
    if (!(file in has)) return { code: null, stdout: '', stderr: '', error: `spawn ${file} ENOENT` };
    const version = has[file];
    return version ? { code: 0, stdout: `${version}\n`, stderr: '' } : { code: 1, stdout: '', stderr: "Traceback...\nModuleNotFoundError: No module named 'ghostframe'\n" };
  };
}

test('importable reports the installed version', async () => {
  assert.deepEqual(await checkImportable('/py', machine({ '/py': '0.1.0' })), { ok: true, version: '0.1.0' });
});

test('not importable reports the last stderr line; a missing interpreter is reported, not thrown', async () => {
  assert.deepEqual(await checkImportable('/py', machine({ '/py': null })), { ok: false, reason: "ModuleNotFoundError: No module named 'ghostframe'" });
  const r = await checkImportable('/nope', machine({}));
  assert.equal(r.ok, false);
  assert.match((r as { reason: string }).reason, /ENOENT/);
});

test('the first candidate that has the server wins; the others say why not', async () => {
  const candidates = [
    { path: '/broken', source: 'setting' as const },
    { path: '/env/bin/python', source: 'managed' as const },
    { path: 'python3', source: 'default' as const },
  ];
  const found = await findServer(candidates, machine({ '/env/bin/python': '0.1.0', python3: '0.0.9' }));
  assert.deepEqual(found, { ok: true, candidate: candidates[1], version: '0.1.0' });
  const none = await findServer(candidates, machine({ python3: null }));
  assert.equal(none.ok, false);
  assert.equal((none as { reasons: string[] }).reasons.length, 3);
});

test('server runs as a module of the chosen interpreter', () => {
  assert.deepEqual(serverCommand('/py'), { command: '/py', args: ['-m', 'ghostframe.server'] });
});
