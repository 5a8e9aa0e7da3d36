/** Pure helpers for `ghostframe.trainOnWorkspace` (unit-tested without VS Code). */

/** `pandas-project-20261124-2215`: one adapter folder per run, never overwritten. */
export function adapterFolderName(workspaceName: string, now: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  const stamp = `${now.getFullYear()}${pad(now.getMonth() + 1)}${pad(now.getDate())}-${pad(now.getHours())}${pad(now.getMinutes())}${pad(now.getSeconds())}`;
  const safe = workspaceName.replace(/[^\w.-]+/g, '-').replace(/^-+|-+$/g, '') || 'workspace';
  return `${safe}-${stamp}`;
}

/**
 * Arguments for `<python> -m ghostframe.trainer` (same CLI as `ghostframe-train`).
 * The adapter is trained on the base model the server runs (`ghostframe.model`),
 * or it would not fit it. `budget` (setting `ghostframe.train.budget`) bounds the whole run.
 */
export function trainerArgs(folders: string[], output: string, model = '', device = 'auto', budget = ''): string[] {
  return ['-m', 'ghostframe.trainer', ...folders, '--output', output, ...(model ? ['--model', model] : []), '--device', device,
    ...(budget.trim() ? ['--budget', budget.trim()] : []), '--quiet'];
}
