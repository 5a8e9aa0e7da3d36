/**
 * Finds the Python that runs the server (one that can import
 * `ghostframe.server`) and the Pythons a managed environment can be made from.
 *
 * Order: `ghostframe.server.pythonPath`, the managed environment, the Python
 * extension's active interpreter, `python3` (`python` on Windows). Pure apart
 * from the injected lookups and runner, so the order is unit-tested without VS Code.
 */

export type InterpreterSource = 'setting' | 'python-extension' | 'default';

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

/** Runs a program and resolves with its exit code and output; never rejects. */
export type Runner = (
  file: string,
  args: string[],
  timeoutMs: number,
) => Promise<{ code: number | null; stdout: string; stderr: string; error?: string }>;

export type ImportCheck = { ok: true; version: string } | { ok: false; reason: string };

/** `<python> -c "import ghostframe.server"` succeeds? Gives the installed version when it does. */
export async function checkImportable(python: string, run: Runner, timeoutMs = 20000): Promise<ImportCheck> {
  const result = await run(python, ['-c', 'import ghostframe.server as s; print(s.__version__)'], timeoutMs);
  if (result.error) return { ok: false, reason: `could not run ${python}: ${result.error}` };
  if (result.code === 0) return { ok: true, version: result.stdout.trim() };
  const lastLine = result.stderr.trim().split(/\r?\n/).pop() ?? '';
  return { ok: false, reason: lastLine || `exit code ${result.code}` };
}

export type ServerSource = InterpreterSource | 'managed';

export interface ServerCandidate {
  path: string;
  source: ServerSource;
}

/**
 * Where the server may live, in order: the setting (your own environment), the
 * environment made by "Set up ghostframe", the Python extension's interpreter, `python3`.
 */
export async function serverCandidates(lookups: InterpreterLookups & { managedPython: string | undefined }): Promise<ServerCandidate[]> {
  const out: ServerCandidate[] = [];
  const configured = lookups.configuredPath?.trim();
  if (configured) out.push({ path: configured, source: 'setting' });
  if (lookups.managedPython) out.push({ path: lookups.managedPython, source: 'managed' });
  try {
    const active = (await lookups.activeInterpreter())?.trim();
    if (active) out.push({ path: active, source: 'python-extension' });
  } catch {
    // A broken or still-activating Python extension must not stop completions.
  }
  out.push({ path: defaultPython(lookups.platform), source: 'default' });
  return out.filter((c, i) => out.findIndex((d) => d.path === c.path) === i);
}

export type FoundServer =
  | { ok: true; candidate: ServerCandidate; version: string }
  | { ok: false; reasons: string[] };

/** The first candidate that can import the server. */
export async function findServer(candidates: ServerCandidate[], run: Runner): Promise<FoundServer> {
  const reasons: string[] = [];
  for (const candidate of candidates) {
    const check = await checkImportable(candidate.path, run);
    if (check.ok) return { ok: true, candidate, version: check.version };
    reasons.push(`${candidate.path} (${candidate.source}): ${check.reason}`);
  }
  return { ok: false, reasons };
}

/** How the server process is started. */
export function serverCommand(python: string): { command: string; args: string[] } {
  return { command: python, args: ['-m', 'ghostframe.server'] };
}
