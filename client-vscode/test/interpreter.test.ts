import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkImportable, defaultPython, pipInstallCommand, resolveInterpreter, Runner, serverCommand, shellQuote } from '../src/interpreter';

const never = async () => {
  throw new Error('must not be asked');
};

test('the setting wins over the Python extension', async () => {
  const r = await resolveInterpreter({ configuredPath: '/opt/venv/bin/python', activeInterpreter: never });
  assert.deepEqual(r, { path: '/opt/venv/bin/python', source: 'setting' });
});

test('blank setting falls through to the Python extension', async () => {
  const r = await resolveInterpreter({ configuredPath: '   ', activeInterpreter: async () => '/home/me/.venv/bin/python' });
  assert.deepEqual(r, { path: '/home/me/.venv/bin/python', source: 'python-extension' });
});

test('no setting and no Python extension gives python3', async () => {
  const r = await resolveInterpreter({ configuredPath: undefined, activeInterpreter: async () => undefined, platform: 'linux' });
  assert.deepEqual(r, { path: 'python3', source: 'default' });
});

test('a failing Python extension does not block the default', async () => {
  const r = await resolveInterpreter({ configuredPath: '', activeInterpreter: never, platform: 'darwin' });
  assert.deepEqual(r, { path: 'python3', source: 'default' });
});

test('Windows default is python', () => {
  assert.equal(defaultPython('win32'), 'python');
});

const runner = (result: Awaited<ReturnType<Runner>>): Runner => async (file, args) => {
  assert.deepEqual(args, ['-c', 'import ghostframe.server']);
  assert.equal(file, '/py');
  return result;
};

test('importable when the import exits 0', async () => {
  assert.deepEqual(await checkImportable('/py', runner({ code: 0, stdout: '', stderr: '' })), { ok: true });
});

test('not importable reports the last stderr line', async () => {
  const r = await checkImportable('/py', runner({ code: 1, stdout: '', stderr: 'Traceback...\nModuleNotFoundError: No module named ghostframe\n' }));
  assert.deepEqual(r, { ok: false, reason: 'ModuleNotFoundError: No module named ghostframe' });
});

test('a missing interpreter is reported, not thrown', async () => {
  const r = await checkImportable('/py', runner({ code: null, stdout: '', stderr: '', error: 'spawn /py ENOENT' }));
  assert.equal(r.ok, false);
  assert.match((r as { reason: string }).reason, /ENOENT/);
});

test('install command quotes paths with spaces', () => {
  assert.equal(pipInstallCommand('/usr/bin/python3', 'linux'), '/usr/bin/python3 -m pip install ghostframe');
  assert.equal(pipInstallCommand('/My Envs/py', 'linux'), "'/My Envs/py' -m pip install ghostframe");
  assert.equal(pipInstallCommand('C:\\Program Files\\py.exe', 'win32'), "& 'C:\\Program Files\\py.exe' -m pip install ghostframe");
  assert.equal(shellQuote("it's", 'linux'), `'it'\\''s'`);
});

test('server runs as a module of the chosen interpreter', () => {
  assert.deepEqual(serverCommand('/py'), { command: '/py', args: ['-m', 'ghostframe.server'] });
});
