// Generates the settings schema everywhere it is written down, from the server's
// Python `Settings` (`python -m ghostframe.server.lsp.settings --schema`):
//   - package.json contributes.configuration.properties (server settings replaced,
//     client-only settings kept as written there),
//   - the settings tables between <!-- settings:start --> and <!-- settings:end -->
//     in client-vscode/README.md (all settings) and README.md (the server's).
// The TypeScript reads its defaults and ranges from package.json.
// `--check` writes nothing and exits 1 when a file is out of date.
// tests/test_settings_schema.py checks the same agreement from Python.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const repo = path.resolve(root, '..');
const check = process.argv.includes('--check');

function python() {
  if (process.env.GHOSTFRAME_PYTHON) return process.env.GHOSTFRAME_PYTHON;
  const venv = path.join(repo, '.venv', process.platform === 'win32' ? 'Scripts/python.exe' : 'bin/python');
  return existsSync(venv) ? venv : 'python3';
}

const serverSchema = JSON.parse(execFileSync(python(), ['-m', 'ghostframe.server.lsp.settings', '--schema'], { cwd: repo, encoding: 'utf8' }));

const pkgPath = path.join(root, 'package.json');
const pkgText = readFileSync(pkgPath, 'utf8');
const pkg = JSON.parse(pkgText);
// Client-only settings are written by hand in package.json and listed in src/settings.ts.
const listed = /CLIENT_ONLY_KEYS\s*=\s*\[([^\]]*)\]/.exec(readFileSync(path.join(root, 'src', 'settings.ts'), 'utf8'));
if (!listed) throw new Error('src/settings.ts declares no CLIENT_ONLY_KEYS');
const clientKeys = [...listed[1].matchAll(/'([^']+)'/g)].map((m) => `ghostframe.${m[1]}`);
const old = pkg.contributes.configuration.properties;
const missing = clientKeys.filter((k) => !(k in old));
if (missing.length) throw new Error(`client-only settings without a package.json entry: ${missing.join(', ')}`);
const dropped = Object.keys(old).filter((k) => !(k in serverSchema) && !clientKeys.includes(k));
if (dropped.length) console.log(`dropping settings the server no longer has: ${dropped.join(', ')}`);
pkg.contributes.configuration.properties = { ...serverSchema, ...Object.fromEntries(clientKeys.map((k) => [k, old[k]])) };

function cell(text) {
  return text.replace(/\|/g, '\\|').replace(/\n+/g, ' ');
}

/** One row per setting: name, default, description with its range or choices. */
function table(properties) {
  const rows = ['| Setting | Default | What it does |', '| --- | --- | --- |'];
  for (const [key, p] of Object.entries(properties)) {
    let what = p.markdownDescription ?? p.description ?? '';
    if (p.enum) what += ` One of ${p.enum.map((e) => `\`${e}\``).join(', ')}.`;
    if (p.minimum !== undefined || p.maximum !== undefined) what += ` Range ${p.minimum ?? '…'}–${p.maximum ?? '…'}.`;
    rows.push(`| \`${key}\` | \`${JSON.stringify(p.default)}\` | ${cell(what)} |`);
  }
  return rows.join('\n');
}

const START = '<!-- settings:start -->';
const END = '<!-- settings:end -->';

function withTable(text, file, properties) {
  const a = text.indexOf(START);
  const b = text.indexOf(END);
  if (a < 0 || b < a) throw new Error(`${file}: no ${START} … ${END} block`);
  return `${text.slice(0, a + START.length)}\n${table(properties)}\n${text.slice(b)}`;
}

const outputs = [
  [pkgPath, pkgText, JSON.stringify(pkg, null, 2) + '\n'],
];
for (const [file, properties] of [
  [path.join(root, 'README.md'), pkg.contributes.configuration.properties],
  [path.join(repo, 'README.md'), serverSchema],
]) {
  const text = readFileSync(file, 'utf8');
  outputs.push([file, text, withTable(text, file, properties)]);
}

let stale = 0;
for (const [file, before, after] of outputs) {
  if (before === after) continue;
  stale++;
  if (check) console.error(`${path.relative(repo, file)} disagrees with the server's Settings; run "npm run settings" in client-vscode/`);
  else {
    writeFileSync(file, after);
    console.log(`updated ${path.relative(repo, file)}`);
  }
}
if (check && stale) process.exit(1);
if (!stale) console.log('settings: every file agrees with the server\'s Settings');
