/**
 * "Set up ghostframe": makes the managed environment with a progress
 * notification (cancellable), streaming pip's output into the log. The
 * decisions (which Python, which torch build, the commands) are in managedEnv.ts.
 */
import * as cp from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import { Runner, ServerCandidate } from './interpreter';
import {
  bundledWheel,
  EnvMarker,
  hasNvidiaGpu,
  MARKER,
  pickBasePython,
  runSetup,
  SetupError,
  setupPlan,
  torchInstallArgs,
  venvPython,
} from './managedEnv';

/** Folder of the managed environment. */
export function managedEnvDir(context: vscode.ExtensionContext): string {
  return path.join(context.globalStorageUri.fsPath, 'server-env');
}

/** The managed environment's Python, when a setup finished there. */
export function managedPython(context: vscode.ExtensionContext): string | undefined {
  const dir = managedEnvDir(context);
  return fs.existsSync(path.join(dir, MARKER)) ? venvPython(dir) : undefined;
}

/** The server wheel inside the extension (`server-wheel/`, put there by `npm run package`). */
export function bundledServer(context: vscode.ExtensionContext): { file: string; version: string } | undefined {
  const dir = path.join(context.extensionPath, 'server-wheel');
  const files = fs.existsSync(dir) ? fs.readdirSync(dir).map((f) => path.join(dir, f)) : [];
  return bundledWheel(files);
}

/** Runs a program with its output going to the log line by line; killed on cancel or timeout. */
function streamingRunner(log: vscode.LogOutputChannel, token: vscode.CancellationToken): Runner {
  return (file, args, timeoutMs) =>
    new Promise((resolve) => {
      log.info(`$ ${file} ${args.join(' ')}`);
      const child = cp.spawn(file, args, { windowsHide: true, env: { ...process.env, PIP_NO_INPUT: '1', PYTHONUNBUFFERED: '1' } });
      let stdout = '';
      let stderr = '';
      const pipe = (stream: NodeJS.ReadableStream, keep: (s: string) => void) => {
        let partial = '';
        stream.on('data', (chunk: Buffer) => {
          const text = partial + chunk.toString();
          const lines = text.split(/\r?\n/);
          partial = lines.pop() ?? '';
          for (const line of lines) if (line.trim()) log.info(line);
          keep(chunk.toString());
        });
      };
      pipe(child.stdout, (s) => (stdout = (stdout + s).slice(-20000)));
      pipe(child.stderr, (s) => (stderr = (stderr + s).slice(-20000)));
      const timer = setTimeout(() => child.kill(), timeoutMs);
      const cancel = token.onCancellationRequested(() => child.kill());
      child.on('error', (err) => {
        clearTimeout(timer);
        cancel.dispose();
        resolve({ code: null, stdout, stderr, error: err.message });
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        cancel.dispose();
        const error = token.isCancellationRequested ? 'cancelled' : signal ? `stopped by ${signal} (timeout ${Math.round(timeoutMs / 1000)} s?)` : undefined;
        resolve({ code, stdout, stderr, error });
      });
    });
}

/** Runs a short command and collects its output; never rejects. */
export const runProcess: Runner = (file, args, timeoutMs) =>
  new Promise((resolve) => {
    cp.execFile(file, args, { timeout: timeoutMs, windowsHide: true }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
      const spawnError = error && typeof error.code === 'string' ? error.message : undefined;
      resolve({ code, stdout: String(stdout), stderr: String(stderr), error: spawnError });
    });
  });

/**
 * Creates (or re-creates) the managed environment from the first usable base
 * Python among `candidates`. Resolves true when the server is installed there.
 */
export async function setUpManagedEnv(
  context: vscode.ExtensionContext,
  log: vscode.LogOutputChannel,
  candidates: ServerCandidate[],
): Promise<boolean> {
  const cfg = vscode.workspace.getConfiguration('ghostframe');
  const wheel = bundledServer(context);
  if (!wheel) {
    void vscode.window.showErrorMessage('ghostframe: this build of the extension carries no server wheel (server-wheel/). Rebuild it with "npm run package".');
    return false;
  }
  const started = Date.now();
  const envDir = managedEnvDir(context);
  const result = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: 'Setting up ghostframe', cancellable: true },
    async (progress, token): Promise<{ ok: true } | { ok: false; message: string; choices: string[] }> => {
      progress.report({ message: 'Looking for Python 3.10 or later' });
      const base = await pickBasePython(candidates, runProcess);
      if (!base.ok) {
        base.reasons.forEach((r) => log.warn(`Not usable for the environment: ${r}`));
        return { ok: false, message: 'found no Python 3.10 or later to make its environment from. Install one, or set ghostframe.server.pythonPath.', choices: ['Open Settings', 'Show Log'] };
      }
      log.info(`Setting up the server environment in ${envDir} with Python ${base.version} (${base.interpreter.path}, from ${base.interpreter.source})`);
      const nvidiaGpu = await hasNvidiaGpu(runProcess);
      const torch = {
        requirement: String(cfg.get('setup.torch') ?? 'torch'),
        indexUrl: String(cfg.get('setup.torchIndexUrl') ?? 'auto'),
        platform: process.platform,
        nvidiaGpu,
      };
      log.info(`NVIDIA GPU: ${nvidiaGpu ? 'yes' : 'no'}; PyTorch: pip ${torchInstallArgs(torch).slice(2).join(' ')}`);
      await fs.promises.mkdir(context.globalStorageUri.fsPath, { recursive: true });
      const plan = setupPlan({ basePython: base.interpreter.path, envDir, wheel: wheel.file, torch });
      try {
        await runSetup(plan, streamingRunner(log, token), (step, i) => {
          log.info(`Set up, step ${i + 1}/${plan.length}: ${step.title}`);
          progress.report({ message: `${step.title} (${i + 1}/${plan.length})`, increment: i === 0 ? 5 : 95 / plan.length });
        });
      } catch (err) {
        if (token.isCancellationRequested) return { ok: false, message: 'set up was cancelled.', choices: [] };
        const message = err instanceof SetupError ? err.message : String(err);
        log.error(`Set up failed: ${message}`);
        return { ok: false, message: `set up failed: ${message}`, choices: ['Show Log', 'Retry'] };
      }
      const marker: EnvMarker = { serverVersion: wheel.version, python: base.version, torch: torchInstallArgs(torch).slice(3) };
      await fs.promises.writeFile(path.join(envDir, MARKER), JSON.stringify(marker, null, 2));
      return { ok: true };
    },
  );
  if (result.ok) {
    log.info(`Set up finished in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return true;
  }
  if (result.choices.length === 0) {
    void vscode.window.showInformationMessage(`ghostframe: ${result.message}`);
    return false;
  }
  const choice = await vscode.window.showErrorMessage(`ghostframe: ${result.message}`, ...result.choices);
  if (choice === 'Show Log') log.show();
  if (choice === 'Open Settings') await vscode.commands.executeCommand('workbench.action.openSettings', 'ghostframe.server.pythonPath');
  if (choice === 'Retry') return setUpManagedEnv(context, log, candidates);
  return false;
}
