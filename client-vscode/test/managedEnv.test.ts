import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Runner } from '../src/interpreter';
import {
  bundledWheel,
  CPU_TORCH_INDEX,
  hasNvidiaGpu,
  parsePythonVersion,
  pickBasePython,
  runSetup,
  SetupError,
  setupPlan,
  torchInstallArgs,
  venvPython,
  versionMismatch,
} from '../src/managedEnv';

/** A fake installer/machine: records every command, answers from a table. */
function fake(answers: Record<string, { code: number | null; stdout?: string; stderr?: string; error?: string }>) {
  const calls: string[][] = [];
  const run: Runner = async (file, args) => {
    calls.push([file, ...args]);
    const a = answers[file] ?? { code: null, error: `spawn ${file} ENOENT` };
    return { code: a.code, stdout: a.stdout ?? '', stderr: a.stderr ?? '', error: a.error };
  };
  return { run, calls };
}

test('which Python: the first that is 3.10 or later', async () => {
  const { run, calls } = fake({ '/old': { code: 0, stdout: '3.8.18\n' }, python3: { code: 0, stdout: '3.12.1\n' } });
  const r = await pickBasePython(
    [
      { path: '/missing', source: 'setting' },
      { path: '/old', source: 'python-extension' },
      { path: 'python3', source: 'default' },
    ],
    run,
  );
  assert.equal(r.ok, true);
  assert.deepEqual(r.ok && r.interpreter, { path: 'python3', source: 'default' });
  assert.equal(r.ok && r.version, '3.12.1');
  assert.equal(calls.length, 3);
});

test('which Python: none usable says why for each', async () => {
  const { run } = fake({ '/old': { code: 0, stdout: '3.9.2' }, '/novenv': { code: 1, stderr: "ModuleNotFoundError: No module named 'venv'" } });
  const r = await pickBasePython([{ path: '/old', source: 'setting' }, { path: '/novenv', source: 'default' }], run);
  assert.equal(r.ok, false);
  const reasons = (r as { reasons: string[] }).reasons;
  assert.match(reasons[0], /3\.9\.2 is older than 3\.10/);
  assert.match(reasons[1], /No module named 'venv'/);
});

test('Python versions parse and compare', () => {
  assert.deepEqual(parsePythonVersion('3.10.0'), [3, 10]);
  assert.equal(parsePythonVersion('Python'), undefined);
});

test('which torch build: CPU index without an NVIDIA GPU on Linux and Windows', () => {
  for (const platform of ['linux', 'win32'] as const) {
    assert.deepEqual(torchInstallArgs({ requirement: 'torch', indexUrl: 'auto', platform, nvidiaGpu: false }), [
      '-m', 'pip', 'install', '--disable-pip-version-check', 'torch', '--index-url', CPU_TORCH_INDEX,
    ]);
  }
});

test('which torch build: default index with an NVIDIA GPU, and on macOS', () => {
  assert.deepEqual(torchInstallArgs({ requirement: 'torch', indexUrl: 'auto', platform: 'linux', nvidiaGpu: true }).slice(4), ['torch']);
  assert.deepEqual(torchInstallArgs({ requirement: 'torch', indexUrl: 'auto', platform: 'darwin', nvidiaGpu: false }).slice(4), ['torch']);
});

test('which torch build: the settings override the choice', () => {
  assert.deepEqual(torchInstallArgs({ requirement: 'torch==2.13.0', indexUrl: '', platform: 'linux', nvidiaGpu: false }).slice(4), ['torch==2.13.0']);
  assert.deepEqual(torchInstallArgs({ requirement: ' ', indexUrl: 'https://mirror/simple', platform: 'linux', nvidiaGpu: true }).slice(4), [
    'torch', '--index-url', 'https://mirror/simple',
  ]);
});

test('NVIDIA GPU detection reads nvidia-smi -L', async () => {
  assert.equal(await hasNvidiaGpu(fake({ 'nvidia-smi': { code: 0, stdout: 'GPU 0: NVIDIA H100 (UUID: GPU-1)\n' } }).run), true);
  assert.equal(await hasNvidiaGpu(fake({ 'nvidia-smi': { code: 9, stderr: 'NVIDIA-SMI has failed' } }).run), false);
  assert.equal(await hasNvidiaGpu(fake({}).run), false);
});

test('the bundled wheel and its version come from the file name', () => {
  assert.deepEqual(bundledWheel(['/x/readme.txt', '/x/server-wheel/ghostframe_lsp-0.2.0-py3-none-any.whl']), {
    file: '/x/server-wheel/ghostframe_lsp-0.2.0-py3-none-any.whl',
    version: '0.2.0',
  });
  assert.equal(bundledWheel(['/x/ghostframe-1.1.0-py3-none-any.whl']), undefined, "someone else's package is not ours");
});

test('version mismatch: only a real difference counts', () => {
  assert.equal(versionMismatch('0.1.0', '0.2.0'), true);
  assert.equal(versionMismatch('0.1.0', '0.1.0'), false);
  assert.equal(versionMismatch('0.1.0+local', '0.1.0'), false);
  assert.equal(versionMismatch(undefined, '0.1.0'), false, 'a server that reports no version is not nagged about');
  assert.equal(versionMismatch('0.1.0', undefined), false);
});

const torch = { requirement: 'torch', indexUrl: 'auto', platform: 'linux' as const, nvidiaGpu: false };

test('the setup plan: venv from the base Python, then torch, then the wheel, then an import check', () => {
  const plan = setupPlan({ basePython: '/usr/bin/python3', envDir: '/s/server-env', wheel: '/ext/w.whl', torch, platform: 'linux' });
  assert.deepEqual(plan.map((s) => [s.file, ...s.args.slice(0, 3)]), [
    ['/usr/bin/python3', '-m', 'venv', '--clear'],
    ['/s/server-env/bin/python', '-m', 'pip', 'install'],
    ['/s/server-env/bin/python', '-m', 'pip', 'install'],
    ['/s/server-env/bin/python', '-c', 'import ghostframe.server.lsp.server'],
  ]);
  assert.ok(plan[1].args.includes(CPU_TORCH_INDEX));
  assert.ok(plan[2].args.includes('/ext/w.whl'));
  assert.equal(venvPython('C:\\s\\env', 'win32').endsWith('python.exe'), true);
});

test('setup runs every step, and stops at the first failure with a hint for a missing venv', async () => {
  const plan = setupPlan({ basePython: 'python3', envDir: '/e', wheel: '/w.whl', torch, platform: 'linux' });
  const ok = fake({ python3: { code: 0 }, '/e/bin/python': { code: 0 } });
  const seen: string[] = [];
  await runSetup(plan, ok.run, (s) => seen.push(s.title));
  assert.equal(ok.calls.length, 4);
  assert.equal(seen.length, 4);

  const noVenv = fake({ python3: { code: 1, stderr: 'The virtual environment was not created successfully because ensurepip is not available.' } });
  await assert.rejects(runSetup(plan, noVenv.run, () => undefined), (err: unknown) => {
    assert.ok(err instanceof SetupError);
    assert.match(err.message, /python3-venv/);
    return true;
  });
  assert.equal(noVenv.calls.length, 1, 'nothing runs after a failed step');
});
