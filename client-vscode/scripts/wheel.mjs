// Builds the server wheel (ghostframe_lsp-<version>-py3-none-any.whl) from the
// repository root into server-wheel/, which the .vsix carries: "Set up
// ghostframe" installs it into the extension's private environment.
// Python: $GHOSTFRAME_PYTHON, else the repository's .venv, else python3.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const repo = path.resolve(root, '..');
const out = path.join(root, 'server-wheel');
const venv = path.join(repo, '.venv', process.platform === 'win32' ? 'Scripts/python.exe' : 'bin/python');
const python = process.env.GHOSTFRAME_PYTHON ?? (existsSync(venv) ? venv : 'python3');

// setuptools builds in <repo>/build and would reuse files left there by an older layout.
const build = path.join(repo, 'build');
rmSync(out, { recursive: true, force: true });
rmSync(build, { recursive: true, force: true });
mkdirSync(out);
// --no-build-isolation: setuptools from this environment, so no index is needed to build.
execFileSync(python, ['-m', 'pip', 'wheel', '--quiet', '--no-deps', '--no-build-isolation', '--wheel-dir', out, repo], { stdio: 'inherit' });
rmSync(build, { recursive: true, force: true });
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
console.log(`server wheel: ${path.join('server-wheel', wheels[0])}`);
