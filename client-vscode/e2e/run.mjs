// End-to-end test in a real editor: code-server (VS Code in the browser)
// driven by headless Debian Chromium through playwright-core.
//
// Installs the built .vsix into a fresh code-server profile, points it at the
// ghostframe server, opens a pandas file, types, and asserts that ghost text
// appears. Saves a screenshot and the keystroke-to-ghost-text times to
// e2e/results/. See e2e/README.md for setup (e2e/setup.sh) and variables.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync, copyFileSync, chmodSync, createWriteStream } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const repo = path.resolve(root, '..');
const env = process.env;
const tools = env.GHOSTFRAME_E2E_TOOLS ?? path.join(os.homedir(), '.cache', 'ghostframe-e2e');
const NODE = env.CODE_SERVER_NODE ?? path.join(tools, 'node24', 'bin', 'node');
const ENTRY = env.CODE_SERVER_ENTRY ?? path.join(tools, 'node_modules', 'code-server', 'out', 'node', 'entry.js');
const PYTHON = env.GHOSTFRAME_PYTHON ?? path.join(repo, '.venv', 'bin', 'python');
const CHROMIUM = env.CHROMIUM ?? '/usr/bin/chromium';
const STANDIN = env.GHOSTFRAME_E2E_STANDIN === '1';
const MODEL = env.GHOSTFRAME_E2E_MODEL ?? 'random'; // 'random' | 'default' | a model folder/name
const TRIALS = Number(env.GHOSTFRAME_E2E_TRIALS ?? 5);
const TIMEOUT_MS = Number(env.GHOSTFRAME_E2E_TIMEOUT_MS ?? 240000); // server ready
const NOTEBOOK_TRIALS = Number(env.GHOSTFRAME_E2E_NOTEBOOK_TRIALS ?? 2);
const TRIAL_TIMEOUT_MS = Number(env.GHOSTFRAME_E2E_TRIAL_TIMEOUT_MS ?? 30000); // one completion
const work = path.join(here, '.work');
const results = path.join(here, 'results');
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
const vsix = path.join(root, `${pkg.name}-${pkg.version}.vsix`);

const log = (...a) => console.log(`[e2e ${new Date().toISOString().slice(11, 23)}]`, ...a);
function fail(msg) {
  console.error(`e2e: ${msg}`);
  process.exitCode = 1;
  throw new Error(msg);
}
function need(file, hint) {
  if (!existsSync(file)) fail(`${file} not found: ${hint}`);
}

function freePort() {
  return new Promise((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function waitForHttp(url, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    try {
      if ((await fetch(url)).ok) return;
    } catch { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 250));
  }
  fail(`${url} did not answer within ${ms} ms`);
}

const SAMPLE = `import pandas as pd
import numpy as np

df = pd.read_csv("sales.csv", parse_dates=["date"])
df["revenue"] = df["price"] * df["quantity"]
df = df.dropna(subset=["city"])

`;

const NOTEBOOK = {
  cells: [{ cell_type: 'code', execution_count: null, metadata: {}, outputs: [], source: SAMPLE.trimEnd().split('\n').map((l, i, a) => (i < a.length - 1 ? l + '\n' : l)) }],
  metadata: { kernelspec: { display_name: 'Python 3', language: 'python', name: 'python3' }, language_info: { name: 'python' } },
  nbformat: 4,
  nbformat_minor: 5,
};

/** Prepares a fresh profile, workspace, model and interpreter. */
function prepare() {
  rmSync(work, { recursive: true, force: true });
  mkdirSync(results, { recursive: true });
  const dirs = { userData: path.join(work, 'user-data'), extensions: path.join(work, 'extensions'), project: path.join(work, 'project') };
  for (const d of Object.values(dirs)) mkdirSync(d, { recursive: true });
  writeFileSync(path.join(dirs.project, 'sales.py'), SAMPLE);
  writeFileSync(path.join(dirs.project, 'analysis.ipynb'), JSON.stringify(NOTEBOOK, null, 1));

  let python = PYTHON;
  if (STANDIN) {
    python = path.join(work, 'python-standin');
    writeFileSync(python, `#!/bin/sh\nPYTHONPATH="${path.join(here, 'standin')}" exec "${PYTHON}" "$@"\n`);
    chmodSync(python, 0o755);
  }
  let model = '';
  if (!STANDIN && MODEL === 'random') {
    model = path.join(work, 'random-model');
    log('building a tiny random-weight model in', model);
    const r = spawnSync(PYTHON, ['-c', 'import sys; from ghostframe.server.random_model import build_random_model; build_random_model(sys.argv[1])', model], { stdio: 'inherit' });
    if (r.status !== 0) fail('could not build the random model (is ghostframe installed for GHOSTFRAME_PYTHON?)');
  } else if (!STANDIN && MODEL !== 'default') {
    model = MODEL;
  }
  const settings = {
    'ghostframe.server.pythonPath': python,
    'ghostframe.model': model,
    'ghostframe.device': 'cpu',
    'ghostframe.debounceMs': 50,
    'ghostframe.maxNewTokens': Number(env.GHOSTFRAME_E2E_MAX_NEW_TOKENS ?? 24),
    'ghostframe.trace.server': 'messages',
    'editor.inlineSuggest.enabled': true,
    'editor.quickSuggestions': { other: false, comments: false, strings: false },
    'editor.suggestOnTriggerCharacters': false,
    'security.workspace.trust.enabled': false,
    'workbench.startupEditor': 'none',
    'workbench.tips.enabled': false,
    'workbench.enableExperiments': false,
    'telemetry.telemetryLevel': 'off',
    'extensions.autoCheckUpdates': false,
    'extensions.autoUpdate': false,
    'update.mode': 'none',
    'chat.disableAIFeatures': true,
    'window.commandCenter': false,
    'workbench.secondarySideBar.defaultVisibility': 'hidden',
  };
  mkdirSync(path.join(dirs.userData, 'User'), { recursive: true });
  writeFileSync(path.join(dirs.userData, 'User', 'settings.json'), JSON.stringify(settings, null, 2));
  // code-server is a remote window: machine-scoped settings (server.pythonPath) are read from Machine/.
  mkdirSync(path.join(dirs.userData, 'Machine'), { recursive: true });
  writeFileSync(path.join(dirs.userData, 'Machine', 'settings.json'), JSON.stringify(settings, null, 2));
  return { ...dirs, python };
}

function installExtension(dirs) {
  log('installing', path.basename(vsix), 'into code-server');
  const r = spawnSync(NODE, [ENTRY, '--user-data-dir', dirs.userData, '--extensions-dir', dirs.extensions, '--install-extension', vsix], { encoding: 'utf8' });
  process.stdout.write(r.stdout ?? '');
  if (r.status !== 0) fail(`--install-extension failed: ${r.stderr}`);
}

async function startCodeServer(dirs) {
  const port = await freePort();
  const out = createWriteStream(path.join(results, 'code-server.log'));
  const child = spawn(NODE, [
    ENTRY, '--auth', 'none', '--bind-addr', `127.0.0.1:${port}`,
    '--disable-telemetry', '--disable-update-check', '--disable-workspace-trust', '--disable-getting-started-override',
    '--user-data-dir', dirs.userData, '--extensions-dir', dirs.extensions, ...(env.GHOSTFRAME_E2E_LOG ? ['--log', env.GHOSTFRAME_E2E_LOG] : []), dirs.project,
  ], { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env });
  child.stdout.pipe(out);
  child.stderr.pipe(out);
  await waitForHttp(`http://127.0.0.1:${port}/healthz`, 60000);
  log('code-server up on port', port);
  return { child, url: `http://127.0.0.1:${port}/?folder=${encodeURIComponent(dirs.project)}` };
}

/** Watches the DOM for ghost text and records, per appearance, the time since the last keydown. */
function installProbe() {
  const gf = { lastKey: 0, showing: false, events: [] };
  window.__gf = gf;
  document.addEventListener('keydown', () => { gf.lastKey = performance.now(); }, true);
  const check = () => {
    const el = document.querySelector('.monaco-editor .ghost-text-decoration, .monaco-editor .ghost-text-decoration-preview, .monaco-editor .ghost-text');
    const text = el ? (el.closest('.view-lines, .view-zones, .lines-content') ?? el).querySelectorAll('.ghost-text-decoration, .ghost-text-decoration-preview, .ghost-text').length : 0;
    if (el && !gf.showing) {
      gf.showing = true;
      const now = performance.now();
      gf.events.push({ at: now, sinceKeyMs: now - gf.lastKey, parts: text });
    } else if (!el) {
      gf.showing = false;
    }
  };
  new MutationObserver(check).observe(document, { subtree: true, childList: true, attributes: true, characterData: true });
}

async function ghostText(page) {
  return page.evaluate(() => [...document.querySelectorAll('.monaco-editor .ghost-text-decoration, .monaco-editor .ghost-text-decoration-preview, .monaco-editor .ghost-text')]
    .map((e) => e.textContent).join(''));
}

/** The status-bar menu offers the actions, and its toggle turns completions off and on again. */
async function statusMenuCheck(page) {
  const pick = async (label) => {
    await page.locator('.statusbar-item', { hasText: /ghostframe|·\s*(cpu|cuda)/ }).last().click();
    const row = page.locator('.quick-input-widget .monaco-list-row', { hasText: label });
    await row.first().waitFor({ timeout: 10000 });
    for (const expected of ['Restart server', 'Show log', 'Open settings']) {
      if ((await page.locator('.quick-input-widget .monaco-list-row', { hasText: expected }).count()) === 0) fail(`status menu lacks "${expected}"`);
    }
    await row.first().click();
  };
  await pick('Turn inline completions off');
  await page.locator('.statusbar-item', { hasText: /^\s*ghostframe\s*$/ }).first().waitFor({ timeout: 10000 });
  await pick('Turn inline completions on');
  await page.locator('.statusbar-item', { hasText: /·\s*(cpu|cuda)/ }).first().waitFor({ timeout: 30000 });
  log('status menu: toggle off/on, restart, log and settings entries present');
}

/** Type `line` and wait for ghost text to appear after the last keystroke: its latency event, or null. */
async function typeAndAwaitGhost(page, line) {
  await page.evaluate(() => { window.__gf.events = []; });
  await page.keyboard.type(line, { delay: 40 });
  const tKey = await page.evaluate(() => window.__gf.lastKey);
  const found = await page.waitForFunction((t) => window.__gf.events.find((e) => e.at > t), tKey, { timeout: TRIAL_TIMEOUT_MS, polling: 'raf' }).catch(() => null);
  return found ? found.jsonValue() : null;
}

/** Ghost text in a Jupyter notebook cell (vscode-notebook-cell scheme, notebook document sync). */
async function notebookTrials(page) {
  log('opening analysis.ipynb');
  await page.locator('.explorer-folders-view .monaco-list-row', { hasText: 'analysis.ipynb' }).first().dblclick({ timeout: 30000 });
  const cell = page.locator('.notebook-editor .cell-editor-container .monaco-editor').first();
  await cell.waitFor({ timeout: 60000 });
  await cell.locator('.view-lines').click();
  await page.keyboard.press('Control+End');
  const lines = ['\nsummary = df.', '\nmonthly = df.groupby(', '\nprint(df.'];
  const latencies = [];
  for (let i = 0; i < NOTEBOOK_TRIALS; i++) {
    const line = lines[i % lines.length];
    const ev = await typeAndAwaitGhost(page, line);
    if (!ev) {
      log(`notebook trial ${i + 1}: no ghost text within ${TRIAL_TIMEOUT_MS} ms after "${line.trim()}"`);
      continue;
    }
    latencies.push(ev.sinceKeyMs);
    log(`notebook trial ${i + 1}: ghost text after ${ev.sinceKeyMs.toFixed(0)} ms: ${JSON.stringify((await ghostText(page)).slice(0, 80))}`);
    if (latencies.length === 1) await page.screenshot({ path: path.join(results, 'ghost-text-notebook.png') });
    await page.keyboard.press('Escape');
  }
  if (latencies.length === 0) fail(`no ghost text in a notebook cell in ${NOTEBOOK_TRIALS} trials`);
  return latencies;
}

async function main() {
  need(vsix, 'run "npm run package" first');
  need(NODE, 'run e2e/setup.sh or set CODE_SERVER_NODE (Node 24)');
  need(ENTRY, 'run e2e/setup.sh or set CODE_SERVER_ENTRY (code-server out/node/entry.js)');
  need(PYTHON, 'set GHOSTFRAME_PYTHON to an interpreter with ghostframe installed');
  need(CHROMIUM, 'apt-get install chromium, or set CHROMIUM');

  const dirs = prepare();
  installExtension(dirs);
  const cs = await startCodeServer(dirs);
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
    await page.addInitScript(installProbe);
    log('opening', cs.url);
    await page.goto(cs.url);
    await page.locator('.monaco-workbench').waitFor({ timeout: 120000 });

    log('opening sales.py');
    await page.locator('.explorer-folders-view .monaco-list-row', { hasText: 'sales.py' }).first().dblclick({ timeout: 60000 });
    const editor = page.locator('.monaco-editor[data-uri$="sales.py"], .editor-instance .monaco-editor').first();
    await editor.waitFor({ timeout: 60000 });

    log('waiting for the server to be ready (status bar)');
    const t0 = Date.now();
    const ready = page.locator('.statusbar-item', { hasText: /·\s*(cpu|cuda)/ });
    await ready.first().waitFor({ timeout: TIMEOUT_MS });
    const statusText = (await ready.first().innerText()).trim();
    log(`ready after ${Date.now() - t0} ms: "${statusText}"`);

    await editor.locator('.view-lines').click();
    await page.keyboard.press('Control+End');

    // Each trial types one pandas line and waits for ghost text after its last keystroke.
    const lines = ['by_city = df.', '\nmonthly = df.groupby(', '\ndf["month"] = df["date"].dt.', '\nprint(df.', '\ntop = df.sort_values('];
    const latencies = [];
    const misses = [];
    let screenshotTaken = false;
    for (let i = 0; i < TRIALS; i++) {
      const line = lines[i % lines.length];
      const ev = await typeAndAwaitGhost(page, line);
      if (!ev) {
        // The server may legitimately have nothing to say at some cursor positions.
        log(`trial ${i + 1}: no ghost text within ${TRIAL_TIMEOUT_MS} ms after "${line.trim()}"`);
        misses.push(line.trim());
        continue;
      }
      const text = await ghostText(page);
      latencies.push(ev.sinceKeyMs);
      log(`trial ${i + 1}: ghost text after ${ev.sinceKeyMs.toFixed(0)} ms: ${JSON.stringify(text.slice(0, 80))}`);
      if (!text.trim()) fail('ghost text element is empty');
      if (!screenshotTaken) {
        await page.screenshot({ path: path.join(results, 'ghost-text.png') });
        screenshotTaken = true;
        if (env.GHOSTFRAME_E2E_UPDATE_MEDIA === '1') copyFileSync(path.join(results, 'ghost-text.png'), path.join(root, 'media', 'ghost-text.png'));
      }
      await page.keyboard.press('Escape');
    }
    if (latencies.length === 0) fail(`no ghost text appeared in any of ${TRIALS} trials`);
    if (latencies.length < Math.ceil(TRIALS / 2)) fail(`ghost text in only ${latencies.length} of ${TRIALS} trials`);
    await statusMenuCheck(page);
    const notebook = NOTEBOOK_TRIALS > 0 ? await notebookTrials(page) : [];

    const sorted = [...latencies].sort((a, b) => a - b);
    const summary = {
      server: STANDIN ? 'standin' : 'ghostframe.server',
      model: STANDIN ? 'standin' : MODEL,
      status: statusText,
      debounceMs: 50,
      trials: latencies.map((x) => Math.round(x)),
      misses,
      notebookTrials: notebook.map((x) => Math.round(x)),
      medianMs: Math.round(sorted[Math.floor(sorted.length / 2)]),
      maxMs: Math.round(sorted[sorted.length - 1]),
      screenshot: path.join(results, 'ghost-text.png'),
    };
    writeFileSync(path.join(results, 'timings.json'), JSON.stringify(summary, null, 2));
    log('keystroke → ghost text (ms):', JSON.stringify(summary));
    console.log(`e2e: 1 passed, 0 failed`);
  } catch (err) {
    const page = browser.contexts()[0]?.pages()[0];
    if (page) {
      await page.screenshot({ path: path.join(results, 'failure.png') }).catch(() => undefined);
      const classes = await page.evaluate(() => [...new Set([...document.querySelectorAll('[class*="ghost"]')].map((e) => e.className))]).catch(() => []);
      console.error('elements with "ghost" classes:', classes);
    }
    throw err;
  } finally {
    await browser.close();
    try { process.kill(-cs.child.pid, 'SIGTERM'); } catch { /* already gone */ }
  }
}

main().catch((err) => {
  console.error(err);
  console.log('e2e: 0 passed, 1 failed');
  process.exit(1);
});
