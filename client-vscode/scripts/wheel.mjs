// Builds the server wheel (ghostframe_lsp-<version>-py3-none-any.whl) from the
// repository root into server-wheel/ (or --out DIR), which the .vsix carries: "Set up
// ghostframe" installs it into the extension's private environment.
// Python: $GHOSTFRAME_PYTHON, else the repository's .venv, else python3. Only its pip
// is used: pip builds in an isolated environment with the setuptools that
// pyproject.toml's [build-system] declares (fetched from the package index), so an
// older setuptools beside that Python (Debian's, or Python 3.11's bundled one) does not
// matter.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const repo = path.resolve(root, '..');
const outAt = process.argv.indexOf('--out');
const out = outAt >= 0 ? path.resolve(process.argv[outAt + 1] ?? '') : path.join(root, 'server-wheel');
if (outAt >= 0 && !process.argv[outAt + 1]) fail('--out needs a folder');
const venv = path.join(repo, '.venv', process.platform === 'win32' ? 'Scripts/python.exe' : 'bin/python');
const python = process.env.GHOSTFRAME_PYTHON ?? (existsSync(venv) ? venv : 'python3');

function fail(message) {
  console.error(`wheel: ${message}`);
  process.exit(1);
}

// What pip will install to build, for the messages: [build-system] requires in pyproject.toml.
const declared = /^\[build-system\][^]*?^requires\s*=\s*\[([^\]]*)\]/m.exec(readFileSync(path.join(repo, 'pyproject.toml'), 'utf8'));
const buildRequires = declared ? declared[1].trim() : 'the setuptools in [build-system]';

const pip = spawnSync(python, ['-m', 'pip', '--version'], { encoding: 'utf8' });
if (pip.status !== 0) {
  fail(
    `${python} has no pip (${(pip.error?.message ?? pip.stderr).trim().split('\n').pop()}).\n` +
      '  Use a Python with pip: python3 -m venv /tmp/gf && GHOSTFRAME_PYTHON=/tmp/gf/bin/python npm run package\n' +
      '  (on Debian/Ubuntu: sudo apt install python3-venv python3-pip).',
  );
}

// setuptools builds in <repo>/build and would reuse files left there by an older layout.
const build = path.join(repo, 'build');
rmSync(out, { recursive: true, force: true });
rmSync(build, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
// Build isolation (pip's default): pip installs ${buildRequires} into a throwaway
// environment, whatever setuptools the chosen Python has.
const built = spawnSync(python, ['-m', 'pip', 'wheel', '--quiet', '--no-deps', '--wheel-dir', out, repo], { stdio: 'inherit' });
rmSync(build, { recursive: true, force: true });
if (built.status !== 0) {
  fail(
    `"${python} -m pip wheel" failed (exit ${built.status ?? built.error?.message}). It builds in an isolated environment\n` +
      `  and installs ${buildRequires} (pyproject.toml [build-system]) from the package index, so it needs\n` +
      '  PyPI or the index that PIP_INDEX_URL names. Offline: put a wheel of that setuptools in a folder and set\n' +
      '  PIP_FIND_LINKS=<folder> PIP_NO_INDEX=1.',
  );
}
const wheels = readdirSync(out).filter((f) => /^ghostframe_lsp-.*\.whl$/.test(f));
if (wheels.length !== 1) throw new Error(`expected one ghostframe_lsp wheel in ${out}, found: ${readdirSync(out).join(', ')}`);
// Every package of the source tree must be in the wheel (pyproject.toml lists them one by one).
const listing = execFileSync(python, ['-m', 'zipfile', '-l', path.join(out, wheels[0])], { encoding: 'utf8' });
const packages = (dir, name) => [
  ...(existsSync(path.join(repo, dir, '__init__.py')) ? [name] : []),
  ...readdirSync(path.join(repo, dir), { withFileTypes: true }).filter((d) => d.isDirectory()).flatMap((d) => packages(path.join(dir, d.name), `${name}/${d.name}`)),
];
const missing = [...packages('server', 'ghostframe/server'), ...packages('trainer', 'ghostframe/trainer')].filter((p) => !listing.includes(`${p}/__init__.py`));
if (missing.length) throw new Error(`the wheel lacks ${missing.join(', ')}: add them to [tool.setuptools] packages in pyproject.toml`);
console.log(`server wheel: ${path.relative(process.cwd(), path.join(out, wheels[0]))}`);
