// The server wheel builds the way `npm run package` builds it (scripts/wheel.mjs) with a
// Python whose own setuptools is too old for pyproject.toml (PEP 639 `license = "..."`
// needs setuptools 77): the build must use the setuptools that [build-system] declares,
// not the one beside the Python. Needs python3 with venv, and PyPI (or PIP_INDEX_URL).
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

const base = process.env.GHOSTFRAME_TEST_PYTHON ?? 'python3';

test('the server wheel builds with a Python whose setuptools is older than 77', { timeout: 300_000 }, (t) => {
  const tmp = mkdtempSync(path.join(tmpdir(), 'ghostframe-wheel-'));
  t.after(() => rmSync(tmp, { recursive: true, force: true }));
  const venv = path.join(tmp, 'venv');
  execFileSync(base, ['-m', 'venv', venv], { stdio: 'inherit' });
  const python = path.join(venv, process.platform === 'win32' ? 'Scripts/python.exe' : 'bin/python');
  execFileSync(python, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', 'setuptools<70'], { stdio: 'inherit' });
  const version = execFileSync(python, ['-c', 'import setuptools; print(setuptools.__version__)'], { encoding: 'utf8' }).trim();
  assert.ok(Number(version.split('.')[0]) < 77, `the test needs an old setuptools, got ${version}`);

  const out = path.join(tmp, 'wheel');
  const run = spawnSync(process.execPath, ['scripts/wheel.mjs', '--out', out], {
    env: { ...process.env, GHOSTFRAME_PYTHON: python },
    encoding: 'utf8',
  });
  assert.equal(run.status, 0, `scripts/wheel.mjs failed with setuptools ${version}:\n${run.stdout}\n${run.stderr}`);
  const wheels = readdirSync(out).filter((f) => /^ghostframe_lsp-[^-]+-py3-none-any\.whl$/.test(f));
  assert.equal(wheels.length, 1, `no server wheel in ${readdirSync(out).join(', ')}`);
  const metadata = execFileSync(
    python,
    ['-c', 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); print(z.read(next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))).decode())', path.join(out, wheels[0])],
    { encoding: 'utf8' },
  );
  assert.match(metadata, /^License-Expression: \S+/m); // the PEP 639 field setuptools < 77 rejects
});

test('a Python without pip gets told what to do', (t) => {
  const tmp = mkdtempSync(path.join(tmpdir(), 'ghostframe-wheel-'));
  t.after(() => rmSync(tmp, { recursive: true, force: true }));
  const run = spawnSync(process.execPath, ['scripts/wheel.mjs', '--out', path.join(tmp, 'wheel')], {
    env: { ...process.env, GHOSTFRAME_PYTHON: path.join(tmp, 'no-such-python') },
    encoding: 'utf8',
  });
  assert.equal(run.status, 1);
  assert.match(run.stderr, /has no pip/);
  assert.match(run.stderr, /GHOSTFRAME_PYTHON=/);
});
