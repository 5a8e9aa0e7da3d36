/**
 * Debounce for inline-completion requests: VS Code asks on every keystroke
 * and cancels the previous request; waiting `ms` first means a fast typist
 * sends one request to the server instead of one per character.
 */

export interface CancellationLike {
  isCancellationRequested: boolean;
  onCancellationRequested(listener: () => unknown): { dispose(): unknown };
}

/** Resolves true after `ms`, or false as soon as `token` is cancelled. */
export function waitUnlessCancelled(ms: number, token: CancellationLike): Promise<boolean> {
  if (token.isCancellationRequested) return Promise.resolve(false);
  if (ms <= 0) return Promise.resolve(true);
  return new Promise((resolve) => {
    const sub = token.onCancellationRequested(() => {
      clearTimeout(timer);
      sub.dispose();
      resolve(false);
    });
    const timer = setTimeout(() => {
      sub.dispose();
      resolve(!token.isCancellationRequested);
    }, ms);
  });
}
