/**
 * Server lifecycle: picks the interpreter, checks ghostframe is installed,
 * starts `<python> -m ghostframe.server` over stdio through
 * vscode-languageclient, restarts it after a crash (a few times), and
 * forwards settings changes.
 *
 * Inline completions come from vscode-languageclient's built-in
 * InlineCompletionItemFeature (stable since v10, so no proposed-features
 * switch); the editor's cancellation token becomes `$/cancelRequest` there.
 * Our middleware only adds the debounce and the `enable` short-cut.
 */
import * as cp from 'child_process';
import * as os from 'os';
import * as vscode from 'vscode';
import {
  CloseAction,
  DidChangeConfigurationNotification,
  ErrorAction,
  LanguageClient,
  LanguageClientOptions,
  RevealOutputChannelOn,
  ServerOptions,
  State,
} from 'vscode-languageclient/node';
import { waitUnlessCancelled } from './debounce';
import { checkImportable, Interpreter, pipInstallCommand, resolveInterpreter, Runner, serverCommand } from './interpreter';
import { activeInterpreter } from './python';
import { ServerStatus } from './status';
import { StatusBar } from './statusBar';
import * as settings from './settings';

/** Python files and notebook cells, saved or not. */
export const DOCUMENT_SELECTOR = [
  { language: 'python', scheme: 'file' },
  { language: 'python', scheme: 'untitled' },
  { language: 'python', scheme: 'vscode-notebook-cell' },
];

const MAX_RESTARTS = 3;
const RESTART_WINDOW_MS = 3 * 60 * 1000;

export function config(): vscode.WorkspaceConfiguration {
  return vscode.workspace.getConfiguration('ghostframe');
}

function firstFolder(): string | undefined {
  return vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
}

export function expand(p: string): string {
  return settings.expandVariables(p, os.homedir(), firstFolder());
}

/** The settings object sent to the server. */
export function currentServerSettings(): settings.ServerSettings {
  const cfg = config();
  return settings.toServerSettings((k) => cfg.get(k), expand);
}

export const runProcess: Runner = (file, args, timeoutMs) =>
  new Promise((resolve) => {
    cp.execFile(file, args, { timeout: timeoutMs, windowsHide: true }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
      const spawnError = error && typeof error.code === 'string' ? error.message : undefined;
      resolve({ code, stdout: String(stdout), stderr: String(stderr), error: spawnError });
    });
  });

export async function pickInterpreter(): Promise<Interpreter> {
  const configured = config().get<string>('server.pythonPath');
  return resolveInterpreter({
    configuredPath: configured ? expand(configured) : undefined,
    activeInterpreter: () => activeInterpreter(vscode.workspace.workspaceFolders?.[0]?.uri),
  });
}

export class ServerManager implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private crashes: number[] = [];
  private readonly disposables: vscode.Disposable[] = [];
  /** Bumped on every (re)start so an outdated start can notice and give up. */
  private generation = 0;

  constructor(
    private readonly log: vscode.LogOutputChannel,
    private readonly status: StatusBar,
  ) {
    this.disposables.push(
      vscode.workspace.onDidChangeConfiguration((e) => this.onConfigChanged(e)),
    );
  }

  get languageClient(): LanguageClient | undefined {
    return this.client;
  }

  async start(): Promise<void> {
    const generation = ++this.generation;
    this.status.set({ kind: 'starting' });
    const interpreter = await pickInterpreter();
    this.log.info(`Python interpreter: ${interpreter.path} (from ${interpreter.source})`);
    const check = await checkImportable(interpreter.path, runProcess);
    if (generation !== this.generation) return;
    if (!check.ok) {
      this.log.error(`ghostframe is not importable with ${interpreter.path}: ${check.reason}`);
      this.status.set({ kind: 'stopped', message: `ghostframe is not installed for ${interpreter.path}` });
      void this.offerInstall(interpreter);
      return;
    }
    const client = this.createClient(interpreter);
    this.client = client;
    try {
      await client.start();
      if (!settings.toServerSettings((k) => config().get(k)).enable) this.status.set({ kind: 'disabled' });
    } catch (err) {
      this.log.error(`Server failed to start: ${String(err)}`);
      this.status.set({ kind: 'stopped', message: 'the server failed to start (see log)' });
    }
  }

  async stop(): Promise<void> {
    this.generation++;
    const client = this.client;
    this.client = undefined;
    if (client && client.state !== State.Stopped) {
      try {
        await client.stop(2000);
      } catch (err) {
        this.log.warn(`Stopping the server: ${String(err)}`);
      }
    }
    await client?.dispose().catch(() => undefined);
  }

  async restart(): Promise<void> {
    this.crashes = [];
    await this.stop();
    await this.start();
  }

  private createClient(interpreter: Interpreter): LanguageClient {
    const { command, args } = serverCommand(interpreter.path);
    const serverOptions: ServerOptions = {
      command,
      args,
      // No `transport`: TransportKind.stdio would append `--stdio`, which the server does not take.
      options: {
        env: {
          ...process.env,
          PYTHONUNBUFFERED: '1',
          GHOSTFRAME_LOG_LEVEL: process.env.GHOSTFRAME_LOG_LEVEL ?? settings.serverLogLevel(this.log.logLevel),
        },
      },
    };
    const clientOptions: LanguageClientOptions = {
      documentSelector: DOCUMENT_SELECTOR,
      outputChannel: this.log,
      traceOutputChannel: this.log,
      // A failed completion request must not pop up a notification while the user types;
      // it goes to the log, and real trouble shows in the status bar.
      revealOutputChannelOn: RevealOutputChannelOn.Never,
      initializationOptions: () => settings.initializationOptions(currentServerSettings()),
      errorHandler: {
        error: (_error, _message, count) => ({ action: (count ?? 0) <= 3 ? ErrorAction.Continue : ErrorAction.Shutdown }),
        closed: () => this.onClosed(),
      },
      middleware: {
        provideInlineCompletionItems: async (document, position, context, token, next) => {
          const cfg = config();
          if (!cfg.get<boolean>('enable', true)) return null;
          if (!(await waitUnlessCancelled(settings.debounceMs((k) => cfg.get(k)), token))) return null;
          return next(document, position, context, token);
        },
        workspace: {
          // Answer `workspace/configuration` pulls with the same mapped settings we push.
          configuration: async (params, token, next) => {
            const result = await next(params, token);
            if (!Array.isArray(result)) return result;
            return params.items.map((item, i) => (item.section === 'ghostframe' ? currentServerSettings() : result[i]));
          },
        },
      },
    };
    // The id 'ghostframe' makes the client read `ghostframe.trace.server` by itself.
    const client = new LanguageClient('ghostframe', 'ghostframe', serverOptions, clientOptions);
    client.onNotification('ghostframe/status', (params: ServerStatus) => {
      this.log.info(`server status: ${JSON.stringify(params)}`);
      if (params.state !== 'error' && !config().get<boolean>('enable', true)) {
        this.status.set({ kind: 'disabled' });
      } else {
        this.status.set({ kind: 'server', status: params });
      }
    });
    return client;
  }

  /** Crash policy: restart up to MAX_RESTARTS times in RESTART_WINDOW_MS, then tell the user. */
  private onClosed() {
    const now = Date.now();
    this.crashes = this.crashes.filter((t) => now - t < RESTART_WINDOW_MS);
    this.crashes.push(now);
    if (this.crashes.length <= MAX_RESTARTS) {
      this.log.warn(`Server stopped unexpectedly; restarting (${this.crashes.length}/${MAX_RESTARTS}).`);
      this.status.set({ kind: 'starting' });
      return { action: CloseAction.Restart, handled: true };
    }
    this.log.error(`Server stopped ${this.crashes.length} times in a few minutes; not restarting.`);
    this.status.set({ kind: 'stopped', message: 'the server keeps crashing (see log)' });
    void vscode.window
      .showErrorMessage('ghostframe: the completion server keeps crashing.', 'Show Log', 'Restart')
      .then((choice) => {
        if (choice === 'Show Log') this.log.show();
        if (choice === 'Restart') void this.restart();
      });
    return { action: CloseAction.DoNotRestart, handled: true };
  }

  private async offerInstall(interpreter: Interpreter): Promise<void> {
    const choice = await vscode.window.showErrorMessage(
      `ghostframe: the server is not installed for ${interpreter.path}.`,
      'Install ghostframe',
      'Choose Interpreter',
      'Show Log',
    );
    if (choice === 'Install ghostframe') {
      const terminal = vscode.window.createTerminal({ name: 'ghostframe: install' });
      terminal.show();
      terminal.sendText(pipInstallCommand(interpreter.path));
      // Retry once the user closes the terminal (or re-runs "Restart Server").
      const sub = vscode.window.onDidCloseTerminal((t) => {
        if (t === terminal) {
          sub.dispose();
          void this.restart();
        }
      });
      this.disposables.push(sub);
    } else if (choice === 'Choose Interpreter') {
      await vscode.commands.executeCommand('workbench.action.openSettings', 'ghostframe.server.pythonPath');
    } else if (choice === 'Show Log') {
      this.log.show();
    }
  }

  private onConfigChanged(e: vscode.ConfigurationChangeEvent): void {
    if (!e.affectsConfiguration('ghostframe')) return;
    if (e.affectsConfiguration('ghostframe.server.pythonPath')) {
      this.log.info('ghostframe.server.pythonPath changed; restarting the server.');
      void this.restart();
      return;
    }
    const s = currentServerSettings();
    if (e.affectsConfiguration('ghostframe.enable')) {
      this.status.set(s.enable ? { kind: 'starting' } : { kind: 'disabled' });
      if (s.enable) void this.refreshStatus();
    }
    if (this.client?.isRunning()) {
      void this.client.sendNotification(DidChangeConfigurationNotification.type, settings.didChangeConfigurationParams(s));
    }
  }

  /** Asks the server for its state (via `workspace/executeCommand`, not a VS Code command). */
  async refreshStatus(): Promise<void> {
    if (!this.client?.isRunning()) return;
    try {
      const st = (await this.client.sendRequest('workspace/executeCommand', { command: 'ghostframe.status', arguments: [] })) as {
        model?: string; device?: string; adapter?: string | null; ready?: boolean; error?: string | null; lastLatencyMs?: number | null;
      } | null;
      if (!st) return;
      const state = st.error ? 'error' : st.ready ? 'ready' : 'loading';
      this.status.set({ kind: 'server', status: { state, model: st.model, device: st.device, adapter: st.adapter, message: st.error ?? undefined, lastLatencyMs: st.lastLatencyMs } });
    } catch (err) {
      this.log.warn(`ghostframe.status failed: ${String(err)}`);
    }
  }

  dispose(): void {
    void this.stop();
    this.disposables.forEach((d) => d.dispose());
  }
}
