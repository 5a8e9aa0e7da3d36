/**
 * Chooses the Python interpreter that runs the server and checks that
 * ghostframe is importable there.
 *
 * Order: `ghostframe.server.pythonPath`, else the Python extension's active
 * interpreter, else `python3` (`python` on Windows). Pure apart from the
 * injected lookups, so the order is unit-tested without VS Code.
 */

export type InterpreterSource = 'setting' | 'python-extension' | 'default';

export interface Interpreter {
  path: string;
  source: InterpreterSource;
}

export interface InterpreterLookups {
  /** Value of `ghostframe.server.pythonPath` (already variable-expanded). */
  configuredPath: string | undefined;
  /** The Python extension's active interpreter, or undefined when it is absent or has none. */
  activeInterpreter: () => Promise<string | undefined>;
  platform?: NodeJS.Platform;
}

export function defaultPython(platform: NodeJS.Platform = process.platform): string {
  return platform === 'win32' ? 'python' : 'python3';
}

export async function resolveInterpreter(lookups: InterpreterLookups): Promise<Interpreter> {
  const configured = lookups.configuredPath?.trim();
  if (configured) return { path: configured, source: 'setting' };
  try {
    const active = (await lookups.activeInterpreter())?.trim();
    if (active) return { path: active, source: 'python-extension' };
  } catch {
    // A broken or still-activating Python extension must not stop completions.
  }
  return { path: defaultPython(lookups.platform), source: 'default' };
}

/** Runs a program and resolves with its exit code and output; never rejects. */
export type Runner = (
  file: string,
  args: string[],
  timeoutMs: number,
) => Promise<{ code: number | null; stdout: string; stderr: string; error?: string }>;

export type ImportCheck = { ok: true } | { ok: false; reason: string };

/** `<python> -c "import ghostframe.server"` succeeds? */
export async function checkImportable(python: string, run: Runner, timeoutMs = 20000): Promise<ImportCheck> {
  const result = await run(python, ['-c', 'import ghostframe.server'], timeoutMs);
  if (result.error) return { ok: false, reason: `could not run ${python}: ${result.error}` };
  if (result.code === 0) return { ok: true };
  const lastLine = result.stderr.trim().split(/\r?\n/).pop() ?? '';
  return { ok: false, reason: lastLine || `exit code ${result.code}` };
}

/** Quotes an argument for the integrated terminal (POSIX shells and PowerShell). */
export function shellQuote(arg: string, platform: NodeJS.Platform = process.platform): string {
  if (/^[\w@%+=:,./\\-]+$/.test(arg)) return arg;
  if (platform === 'win32') return `& '${arg.replace(/'/g, "''")}'`;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** The line typed into a terminal to install the server for `python`. */
export function pipInstallCommand(python: string, platform: NodeJS.Platform = process.platform): string {
  return `${shellQuote(python, platform)} -m pip install ghostframe`;
}

/** How the server process is started. */
export function serverCommand(python: string): { command: string; args: string[] } {
  return { command: python, args: ['-m', 'ghostframe.server'] };
}
