/**
 * The managed server environment: a private virtual environment in the
 * extension's global storage, made from a Python ≥ 3.10 that we find, with the
 * server wheel that ships inside the .vsix and a PyTorch build that fits the
 * machine. Pure apart from the injected `Runner`, so which Python, which
 * torch build and the version handshake are unit-tested without VS Code or pip.
 */
import * as path from 'path';
import { Runner, ServerCandidate } from './interpreter';

export const MIN_PYTHON: readonly [number, number] = [3, 10];
export const CPU_TORCH_INDEX = 'https://download.pytorch.org/whl/cpu';
/** Written into the environment after a complete setup; its absence means "half-made, redo". */
export const MARKER = 'ghostframe-env.json';

export interface EnvMarker {
  /** Version of the ghostframe-lsp wheel installed. */
  serverVersion: string;
  python: string;
  torch: string[];
}

/** `python` inside a virtual environment folder. */
export function venvPython(envDir: string, platform: NodeJS.Platform = process.platform): string {
  return platform === 'win32' ? path.join(envDir, 'Scripts', 'python.exe') : path.join(envDir, 'bin', 'python');
}

/** `3.11.7` → [3, 11]; undefined when the text is not a version. */
export function parsePythonVersion(text: string): [number, number] | undefined {
  const m = /^(\d+)\.(\d+)/.exec(text.trim());
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

export function isSupportedPython(v: [number, number]): boolean {
  return v[0] > MIN_PYTHON[0] || (v[0] === MIN_PYTHON[0] && v[1] >= MIN_PYTHON[1]);
}

export type BasePythonChoice =
  | { ok: true; interpreter: ServerCandidate; version: string }
  | { ok: false; reasons: string[] };

const PROBE = 'import sys, venv; print("%d.%d.%d" % sys.version_info[:3])';

/**
 * The first candidate (setting, Python extension, `python3`) that runs, is ≥ 3.10
 * and has the `venv` module; else why each one was passed over.
 */
export async function pickBasePython(candidates: ServerCandidate[], run: Runner): Promise<BasePythonChoice> {
  const reasons: string[] = [];
  const seen = new Set<string>();
  for (const c of candidates) {
    if (seen.has(c.path)) continue;
    seen.add(c.path);
    const r = await run(c.path, ['-c', PROBE], 20000);
    if (r.error || r.code !== 0) {
      reasons.push(`${c.path} (${c.source}): ${r.error ?? lastLine(r.stderr) ?? `exit code ${r.code}`}`);
      continue;
    }
    const v = parsePythonVersion(r.stdout);
    if (!v || !isSupportedPython(v)) {
      reasons.push(`${c.path} (${c.source}): Python ${r.stdout.trim() || '?'} is older than ${MIN_PYTHON.join('.')}`);
      continue;
    }
    return { ok: true, interpreter: c, version: r.stdout.trim() };
  }
  return { ok: false, reasons };
}

export function lastLine(text: string): string | undefined {
  return text.trim().split(/\r?\n/).pop() || undefined;
}

/** Is there an NVIDIA GPU? (`nvidia-smi -L` lists one.) */
export async function hasNvidiaGpu(run: Runner): Promise<boolean> {
  const r = await run('nvidia-smi', ['-L'], 10000);
  return !r.error && r.code === 0 && /^GPU \d+/m.test(r.stdout);
}

export interface TorchChoice {
  /** `ghostframe.setup.torch`: the pip requirement, e.g. `torch` or `torch==2.13.0`. */
  requirement: string;
  /** `ghostframe.setup.torchIndexUrl`: `auto`, empty (pip's configuration) or a URL. */
  indexUrl: string;
  platform: NodeJS.Platform;
  nvidiaGpu: boolean;
}

/**
 * pip arguments that install PyTorch. `auto` picks the CPU-only build on Linux and
 * Windows without an NVIDIA GPU (PyPI's Linux wheels carry ~2 GB of CUDA libraries);
 * macOS wheels on PyPI are already CPU/MPS builds.
 */
export function torchInstallArgs(t: TorchChoice): string[] {
  const requirement = t.requirement.trim() || 'torch';
  const index = t.indexUrl.trim();
  let url: string | undefined;
  if (index === 'auto') url = !t.nvidiaGpu && t.platform !== 'darwin' ? CPU_TORCH_INDEX : undefined;
  else if (index) url = index;
  return ['-m', 'pip', 'install', '--disable-pip-version-check', requirement, ...(url ? ['--index-url', url] : [])];
}

/** `ghostframe_lsp-0.1.0-py3-none-any.whl` → `0.1.0` (PEP 427 file name). */
export function wheelVersion(fileName: string): string | undefined {
  const m = /^ghostframe_lsp-([^-]+)-.*\.whl$/.exec(path.basename(fileName));
  return m?.[1];
}

/** The server wheel among the files of the extension's `server-wheel/` folder. */
export function bundledWheel(files: string[]): { file: string; version: string } | undefined {
  for (const file of files) {
    const version = wheelVersion(file);
    if (version) return { file, version };
  }
  return undefined;
}

/** True when the running server is not the version bundled in the extension. */
export function versionMismatch(serverVersion: string | undefined, bundledVersion: string | undefined): boolean {
  if (!serverVersion || !bundledVersion) return false;
  return normalizeVersion(serverVersion) !== normalizeVersion(bundledVersion);
}

function normalizeVersion(v: string): string {
  return v.trim().replace(/^v/, '').replace(/\+.*$/, '');
}

export interface SetupStep {
  title: string;
  file: string;
  args: string[];
  /** Longest this step may run (pip downloading PyTorch is slow on a slow line). */
  timeoutMs: number;
}

export interface SetupPlanInput {
  basePython: string;
  envDir: string;
  wheel: string;
  torch: TorchChoice;
  platform?: NodeJS.Platform;
}

/** The commands that make the environment, in order. */
export function setupPlan(p: SetupPlanInput): SetupStep[] {
  const py = venvPython(p.envDir, p.platform);
  const minutes = (m: number) => m * 60 * 1000;
  return [
    { title: 'Creating a Python environment', file: p.basePython, args: ['-m', 'venv', '--clear', p.envDir], timeoutMs: minutes(3) },
    { title: `Installing PyTorch (${p.torch.nvidiaGpu ? 'GPU' : 'CPU'} build)`, file: py, args: torchInstallArgs(p.torch), timeoutMs: minutes(30) },
    { title: 'Installing the ghostframe server', file: py, args: ['-m', 'pip', 'install', '--disable-pip-version-check', p.wheel], timeoutMs: minutes(20) },
    { title: 'Checking the server', file: py, args: ['-c', 'import ghostframe.server.lsp.server'], timeoutMs: minutes(3) },
  ];
}

export class SetupError extends Error {
  constructor(
    readonly step: string,
    readonly detail: string,
  ) {
    super(`${step} failed: ${detail}`);
  }
}

/** Runs the plan step by step; throws SetupError at the first failing step. */
export async function runSetup(steps: SetupStep[], run: Runner, onStep: (step: SetupStep, index: number) => void): Promise<void> {
  for (const [i, step] of steps.entries()) {
    onStep(step, i);
    const r = await run(step.file, step.args, step.timeoutMs);
    if (r.error || r.code !== 0) {
      const detail = r.error ?? lastLine(r.stderr) ?? `exit code ${r.code}`;
      const hint = i === 0 && /ensurepip|venv/.test(r.stderr + (r.error ?? '')) ? ' (on Debian/Ubuntu: install python3-venv)' : '';
      throw new SetupError(step.title, detail + hint);
    }
  }
}
