// Packaging test: the .vsix holds the bundled extension and the manifest,
// and no node_modules or sources. Reads the zip's central directory directly
// so the test needs no unzip tool or extra dependency.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { test } from 'node:test';

const pkg = JSON.parse(readFileSync('package.json', 'utf8'));
const vsixName = `${pkg.name}-${pkg.version}.vsix`;

/** File names in a zip archive (central directory walk). */
function zipEntries(buf) {
  let eocd = buf.length - 22;
  while (eocd >= 0 && buf.readUInt32LE(eocd) !== 0x06054b50) eocd--;
  assert.ok(eocd >= 0, 'not a zip file');
  const count = buf.readUInt16LE(eocd + 10);
  let p = buf.readUInt32LE(eocd + 16);
  const names = [];
  for (let i = 0; i < count; i++) {
    assert.equal(buf.readUInt32LE(p), 0x02014b50, 'bad central directory');
    const nameLen = buf.readUInt16LE(p + 28);
    const extraLen = buf.readUInt16LE(p + 30);
    const commentLen = buf.readUInt16LE(p + 32);
    names.push(buf.toString('utf8', p + 46, p + 46 + nameLen));
    p += 46 + nameLen + extraLen + commentLen;
  }
  return names;
}

test(`${vsixName} exists`, () => {
  assert.ok(readdirSync('.').includes(vsixName), `run "npm run package" first; no ${vsixName}`);
});

test('the .vsix holds the bundle, manifest and docs', () => {
  const names = zipEntries(readFileSync(vsixName));
  for (const required of ['extension/package.json', 'extension/dist/extension.js', 'extension/readme.md', 'extension/LICENSE.txt', 'extension.vsixmanifest']) {
    assert.ok(names.some((n) => n.toLowerCase() === required.toLowerCase()), `${required} missing; have ${names.join(', ')}`);
  }
});

test('the .vsix carries the server wheel and the walkthrough', () => {
  const names = zipEntries(readFileSync(vsixName));
  assert.ok(names.some((n) => /^extension\/server-wheel\/ghostframe_lsp-[^/]+-py3-none-any\.whl$/.test(n)), `no server wheel in ${names.join(', ')}`);
  for (const step of pkg.contributes.walkthroughs[0].steps) {
    assert.ok(names.includes(`extension/${step.media.markdown}`), `walkthrough media ${step.media.markdown} missing`);
  }
});

test('the .vsix has no node_modules, sources, tests or maps', () => {
  const names = zipEntries(readFileSync(vsixName));
  const bad = names.filter((n) => /node_modules\/|^extension\/(src|test|e2e|scripts)\/|\.map$|\.ts$/.test(n));
  assert.deepEqual(bad, []);
});

test('the bundle inlines vscode-languageclient and only requires vscode and node built-ins', () => {
  const bundle = readFileSync('dist/extension.js', 'utf8');
  assert.ok(bundle.includes('textDocument/inlineCompletion'), 'language client not bundled');
  const requires = new Set([...bundle.matchAll(/require\("([^"]+)"\)/g)].map((m) => m[1]));
  const builtins = new Set(['vscode', ...builtinModules]);
  const unexpected = [...requires].filter((r) => !builtins.has(r.replace(/^node:/, '')));
  assert.deepEqual(unexpected, []);
});

test('manifest points at the bundle and declares the commands', () => {
  assert.equal(pkg.main, './dist/extension.js');
  const commands = pkg.contributes.commands.map((c) => c.command);
  for (const c of ['ghostframe.setup', 'ghostframe.suggestNow', 'ghostframe.openSampleNotebook', 'ghostframe.restartServer', 'ghostframe.toggle', 'ghostframe.showLog', 'ghostframe.trainOnWorkspace']) {
    assert.ok(commands.includes(c), c);
  }
  // Registered automatically by vscode-languageclient from the server's executeCommandProvider.
  assert.ok(!commands.includes('ghostframe.reloadModel') && !commands.includes('ghostframe.status'));
});

test('conventions: Alt+\\ suggests now, trust is declared, the listing is complete', () => {
  const kb = pkg.contributes.keybindings.find((k) => k.command === 'ghostframe.suggestNow');
  assert.equal(kb.key, 'alt+\\');
  const trust = pkg.capabilities.untrustedWorkspaces;
  assert.equal(trust.supported, 'limited');
  assert.ok(trust.restrictedConfigurations.includes('ghostframe.server.pythonPath'));
  assert.equal(pkg.contributes.commands.find((c) => c.command === 'ghostframe.trainOnWorkspace').enablement, 'isWorkspaceTrusted');
  assert.ok(pkg.icon && pkg.categories.length && pkg.keywords.length);
  // No public repository is ours yet: the listing links to none rather than to a guessed one.
  assert.ok(!pkg.repository && !pkg.homepage && !pkg.bugs);
  assert.ok(pkg.scripts.package.includes('--allow-missing-repository'));
  assert.deepEqual(pkg.contributes.walkthroughs[0].steps.map((s) => s.id), ['setup', 'try', 'train']);
});

test('nothing in the extension tells anyone to install a PyPI name we do not own', () => {
  const texts = [readFileSync('README.md', 'utf8'), readFileSync('CHANGELOG.md', 'utf8'), readFileSync('package.json', 'utf8'), readFileSync('dist/extension.js', 'utf8')];
  for (const text of texts) assert.doesNotMatch(text, /pip install ghostframe(?![-\w])/);
});
