/**
 * Server lifecycle: finds a Python that has the server (or offers to set one
 * up), starts `<python> -m ghostframe.server` over stdio through
 * vscode-languageclient, checks its version against the bundled one, restarts
 * it after a crash (a few times), and forwards settings changes.
 *
 * Inline completions come from vscode-languageclient's built-in
 * InlineCompletionItemFeature; the editor's cancellation token becomes
 * `$/cancelRequest` there. Our middleware adds the trigger mode, the debounce
 * and the `enable` short-cut; cursorSync.ts tells the server where the
 * cursor rests.
 */
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
import { syncCursorMoves } from './cursorSync';
import { waitUnlessCancelled } from './debounce';
import { findServer, ServerCandidate, serverCandidates, serverCommand } from './interpreter';
import { versionMismatch } from './managedEnv';
import { activeInterpreter } from './python';
import * as settings from './settings';
import { bundledServer, managedPython, runProcess, setUpManagedEnv } from './setup';
import { ServerStatus } from './status';
import { StatusBar } from './statusBar';

/** Python files and notebook cells, saved or not. */
export const DOCUMENT_SELECTOR = [
  { language: 'python', scheme: 'file' },
  { language: 'python', scheme: 'untitled' },
  { language: 'python', scheme: 'vscode-notebook-cell' },
];

/** Where "ghostframe: Set API key" keeps the team server's key (VS Code's SecretStorage). */
export const API_KEY_SECRET = 'ghostframe.apiKey';
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

export class ServerManager implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private crashes: number[] = [];
  private readonly disposables: vscode.Disposable[] = [];
  /** Bumped on every (re)start so an outdated start can notice and give up. */
  private generation = 0;
  /** The Python the running server uses (the trainer runs with it too). */
  private server: ServerCandidate | undefined;
  private settingUp = false;
  /** Tells the running server where the cursor rests (cursorSync.ts). */
  private cursorSync: vscode.Disposable | undefined;

  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly log: vscode.LogOutputChannel,
    private readonly status: StatusBar,
  ) {
    this.disposables.push(vscode.workspace.onDidChangeConfiguration((e) => this.onConfigChanged(e)));
  }

  /** Where the server may live, best first (see interpreter.ts). */
  async candidates(includeManaged = true): Promise<ServerCandidate[]> {
    const configured = config().get<string>('server.pythonPath');
    return serverCandidates({
      configuredPath: configured ? expand(configured) : undefined,
      managedPython: includeManaged ? managedPython(this.context) : undefined,
      activeInterpreter: () => activeInterpreter(vscode.workspace.workspaceFolders?.[0]?.uri),
    });
  }

  /** The Python that has the server: the running one's, else the first that can import it. */
  async serverPython(): Promise<string | undefined> {
    if (this.server) return this.server.path;
    const found = await findServer(await this.candidates(), runProcess);
    return found.ok ? found.candidate.path : undefined;
  }

  async start(): Promise<void> {
    const generation = ++this.generation;
    this.status.set({ kind: 'starting' });
    const found = await findServer(await this.candidates(), runProcess);
    if (generation !== this.generation) return;
    if (!found.ok) {
      found.reasons.forEach((r) => this.log.info(`No server: ${r}`));
      this.status.set({ kind: 'stopped', message: 'no usable server yet: click "Set up ghostframe"' });
      void this.offerSetup();
      return;
    }
    this.server = found.candidate;
    this.log.info(`Server: ${found.candidate.path} (from ${found.candidate.source}), ghostframe-lsp ${found.version}`);
    const apiKey = await this.context.secrets.get(API_KEY_SECRET);
    if (generation !== this.generation) return;
    const client = this.createClient(found.candidate.path, apiKey);
    this.client = client;
    try {
      await client.start();
      this.checkVersion(client.initializeResult?.serverInfo);
      if (generation === this.generation) {
        this.cursorSync?.dispose();
        this.cursorSync = syncCursorMoves(client, DOCUMENT_SELECTOR, () => config().get<boolean>('enable', true));
      }
    } catch (err) {
      this.log.error(`Server failed to start: ${String(err)}`);
      this.status.set({ kind: 'stopped', message: 'the server failed to start (see log)' });
    }
  }

  async stop(): Promise<void> {
    this.generation++;
    this.cursorSync?.dispose();
    this.cursorSync = undefined;
    const client = this.client;
    this.client = undefined;
    this.server = undefined;
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

  /** "Set up ghostframe": (re)make the managed environment, then start the server from it. */
  async setup(): Promise<void> {
    if (this.settingUp) return;
    this.settingUp = true;
    try {
      await this.stop();
      this.status.set({ kind: 'setup' });
      const ok = await setUpManagedEnv(this.context, this.log, await this.candidates(false));
      await this.start();
      if (!ok) this.log.warn('Set up did not finish.');
    } finally {
      this.settingUp = false;
    }
  }

  /** Version handshake: the server's `serverInfo.version` against the wheel in the .vsix. */
  private checkVersion(info: { name: string; version?: string } | undefined): void {
    const bundled = bundledServer(this.context)?.version;
    this.log.info(`serverInfo: ${JSON.stringify(info)}; bundled server: ${bundled ?? 'none'}`);
    if (!versionMismatch(info?.version, bundled)) return;
    const message = `the server is version ${info?.version}, the extension brings ${bundled}.`;
    if (this.server?.source !== 'managed') {
      this.log.warn(`${message} Update it in ${this.server?.path}, or clear ghostframe.server.pythonPath to use the managed environment.`);
      return;
    }
    void vscode.window.showInformationMessage(`ghostframe: ${message} Update the server?`, 'Update', 'Not Now').then((choice) => {
      if (choice === 'Update') void this.setup();
    });
  }

  private createClient(python: string, apiKey: string | undefined): LanguageClient {
    const { command, args } = serverCommand(python);
    const serverOptions: ServerOptions = {
      command,
      args,
      // No `transport`: TransportKind.stdio would append `--stdio`, which the server does not take.
      options: {
        env: {
          ...process.env,
          PYTHONUNBUFFERED: '1',
          GHOSTFRAME_LOG_LEVEL: process.env.GHOSTFRAME_LOG_LEVEL ?? settings.serverLogLevel(this.log.logLevel),
          // the server sends it to ghostframe.endpoint only, and never logs it
          ...(apiKey ? { GHOSTFRAME_API_KEY: apiKey } : {}),
        },
      },
    };
    const get = (k: string) => config().get(k);
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
          if (!config().get<boolean>('enable', true)) return null;
          // Alt+\ (Suggest Now / Trigger Inline Suggestion) asks at once, in either mode.
          if (context.triggerKind !== vscode.InlineCompletionTriggerKind.Invoke) {
            if (settings.triggerMode(get) === 'manual') return null;
            if (!(await waitUnlessCancelled(settings.debounceMs(get), token))) return null;
          }
          return next(document, position, context, token);
        },
        workspace: {
          // Answer the server's `workspace/configuration` pulls with the same mapped settings we push.
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
      this.status.set({ kind: 'server', status: params });
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

  private async offerSetup(): Promise<void> {
    const choice = await vscode.window.showInformationMessage(
      'ghostframe needs its local completion server. Set it up now? It installs into a private environment (a few minutes, once).',
      'Set up ghostframe',
      'Choose Interpreter',
      'Show Log',
    );
    if (choice === 'Set up ghostframe') {
      await this.setup();
    } else if (choice === 'Choose Interpreter') {
      await vscode.commands.executeCommand('workbench.action.openSettings', 'ghostframe.server.pythonPath');
    } else if (choice === 'Show Log') {
      this.log.show();
    }
  }

  private onConfigChanged(e: vscode.ConfigurationChangeEvent): void {
    if (!e.affectsConfiguration('ghostframe')) return;
    const changed = Object.keys(settings.SCHEMA).filter((k) => e.affectsConfiguration(`ghostframe.${k}`));
    this.log.info(`Settings changed: ${changed.map((k) => `ghostframe.${k}`).join(', ')}`);
    if (e.affectsConfiguration('ghostframe.server.pythonPath')) {
      this.log.info('ghostframe.server.pythonPath changed; restarting the server.');
      void this.restart();
      return;
    }
    if (this.client?.isRunning()) {
      void this.client.sendNotification(DidChangeConfigurationNotification.type, settings.didChangeConfigurationParams(currentServerSettings()));
    }
  }

  dispose(): void {
    void this.stop();
    this.disposables.forEach((d) => d.dispose());
  }
}
