/**
 * `ghostframe.trainOnWorkspace`: runs the trainer on the workspace folders with
 * the server's Python, shows steps, loss and time left (read from the run's
 * metrics.jsonl) in a cancellable progress notification, warns when the run's
 * forecast says it is unlikely to pass (with what would), then opens the run's
 * report and offers the adapter only when the evaluation says it beat the
 * base model on held-out files.
 */
import * as cp from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import { validated } from './settings';
import { adapterFolderName, trainerArgs } from './trainArgs';
import { fallbackReport, forecastOf, forecastWarning, Outcome, outcomeOf, parseMetrics, progressMessage, progressOf } from './trainReport';

export interface TrainDeps {
  context: vscode.ExtensionContext;
  log: vscode.LogOutputChannel;
  /** The Python that has the server (and so the trainer); undefined when none is set up. */
  python: () => Promise<string | undefined>;
  expand: (p: string) => string;
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

/** The trainer's `--max-steps` as saved in the run's config (null when it trains one epoch). */
function configuredSteps(output: string): number | undefined {
  const cfg = readJson(path.join(output, 'work', 'config.json')) as { max_steps?: unknown } | undefined;
  return typeof cfg?.max_steps === 'number' ? cfg.max_steps : undefined;
}

/** The evaluation report the trainer wrote, else one made here from ghostframe.json. */
function reportFile(output: string, outcome: Outcome | undefined): string {
  const own = [path.join(output, 'report.md'), ...fs.readdirSync(output).map((d) => path.join(output, d, 'report.md'))].find((f) => fs.existsSync(f));
  if (own) return own;
  const file = path.join(output, 'report.md');
  fs.writeFileSync(file, fallbackReport(readJson(path.join(output, 'ghostframe.json')), outcome, fs.existsSync(path.join(output, 'loss.png'))));
  return file;
}

export async function trainOnWorkspace(deps: TrainDeps): Promise<void> {
  const { context, log } = deps;
  if (!vscode.workspace.isTrusted) {
    void vscode.window.showWarningMessage('ghostframe: training runs code over this workspace; trust the workspace first.');
    return;
  }
  const folders = vscode.workspace.workspaceFolders?.map((f) => f.uri.fsPath) ?? [];
  if (folders.length === 0) {
    void vscode.window.showWarningMessage('ghostframe: open a folder first; the adapter is trained on its Python files and notebooks.');
    return;
  }
  const python = await deps.python();
  if (!python) {
    const choice = await vscode.window.showWarningMessage('ghostframe: set up the server first; the trainer comes with it.', 'Set up ghostframe');
    if (choice) await vscode.commands.executeCommand('ghostframe.setup');
    return;
  }
  const cfg = vscode.workspace.getConfiguration('ghostframe');
  const model = String(cfg.get('model') ?? '').trim();
  const output = path.join(context.globalStorageUri.fsPath, 'adapters', adapterFolderName(vscode.workspace.name ?? 'workspace', new Date()));
  await fs.promises.mkdir(path.dirname(output), { recursive: true });
  const args = trainerArgs(folders, output, model ? deps.expand(model) : '', String(cfg.get('device') ?? 'auto'),
    String(validated('train.budget', cfg.get('train.budget'))));
  log.info(`Training: ${python} ${args.join(' ')}`);

  const started = Date.now();
  const { code, cancelled } = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: 'ghostframe: training on this workspace', cancellable: true },
    (progress, token) =>
      new Promise<{ code: number | null; cancelled: boolean }>((resolve) => {
        const child = cp.spawn(python, args, { windowsHide: true, env: { ...process.env, PYTHONUNBUFFERED: '1' } });
        const toLog = (chunk: Buffer) => chunk.toString().split(/\r?\n/).filter((l) => l.trim()).forEach((l) => log.info(`[train] ${l}`));
        child.stdout.on('data', toLog);
        child.stderr.on('data', toLog);
        let firstStepAt: number | undefined;
        let lastPercent = 0;
        let warned = false;
        const poll = setInterval(() => {
          const records = parseMetrics(fs.existsSync(path.join(output, 'metrics.jsonl')) ? fs.readFileSync(path.join(output, 'metrics.jsonl'), 'utf8') : '');
          if (firstStepAt === undefined && records.some((r) => r.split === 'train')) firstStepAt = Date.now();
          const p = progressOf(records, firstStepAt === undefined ? undefined : (Date.now() - firstStepAt) / 1000, configuredSteps(output));
          const increment = p.percent !== undefined ? Math.max(0, p.percent - lastPercent) : undefined;
          if (p.percent !== undefined) lastPercent = p.percent;
          const forecast = forecastOf(records);
          progress.report({ message: progressMessage(p, forecast), increment });
          const warning = forecast && forecastWarning(forecast);
          if (warning && !warned) {
            // Said once, while there is still time to stop: the trainer saves a checkpoint on Ctrl-C.
            warned = true;
            void vscode.window.showWarningMessage(`ghostframe: ${warning}`, 'Stop Training', 'Keep Training').then((choice) => {
              if (choice === 'Stop Training' && child.exitCode === null) child.kill('SIGINT');
            });
          }
        }, 1000);
        // Ctrl-C for the trainer: it saves a checkpoint and exits 130.
        const cancel = token.onCancellationRequested(() => child.kill('SIGINT'));
        const done = (code: number | null) => {
          clearInterval(poll);
          cancel.dispose();
          resolve({ code, cancelled: token.isCancellationRequested });
        };
        child.on('error', (err) => {
          log.error(`Could not run the trainer: ${err.message}`);
          done(null);
        });
        child.on('close', (exitCode) => done(exitCode));
      }),
  );
  log.info(`Trainer exited with ${code} after ${((Date.now() - started) / 1000).toFixed(1)} s`);

  if (cancelled || code === 130) {
    void vscode.window.showInformationMessage(
      `ghostframe: training stopped; its checkpoint is in ${output}. Continue it with: ghostframe-train --output "${output}" --resume`,
    );
    return;
  }
  if (code !== 0) {
    const choice = await vscode.window.showErrorMessage(`ghostframe: training failed (exit code ${code}).`, 'Show Log');
    if (choice === 'Show Log') log.show();
    return;
  }
  const outcome = outcomeOf(readJson(path.join(output, 'ghostframe.json')));
  log.info(`Adapter written to ${output}; verdict: ${outcome ? `${outcome.verdict} (${outcome.source}: ${outcome.detail})` : 'none'}`);
  await vscode.commands.executeCommand('markdown.showPreview', vscode.Uri.file(reportFile(output, outcome)));
  if (outcome?.verdict === 'use it') {
    const choice = await vscode.window.showInformationMessage(
      `ghostframe: the new adapter beats the base model on held-out files (${outcome.detail}). Use it?`,
      'Use Adapter',
      'Not Now',
    );
    if (choice === 'Use Adapter') {
      await vscode.workspace.getConfiguration('ghostframe').update('adapter', output, vscode.ConfigurationTarget.Workspace);
    }
  } else {
    void vscode.window.showInformationMessage(
      `ghostframe: the new adapter is ${outcome ? `${outcome.verdict === 'worse' ? 'worse than' : 'no better than'} the base model (${outcome.detail})` : 'not evaluated'}; keeping the current model. See the report.`,
    );
  }
}
