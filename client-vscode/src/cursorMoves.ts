/**
 * Which cursor moves the server hears about (`ghostframe/didMoveCursor`).
 *
 * The server warms a document's prompt in the background where it knows the
 * user is; an edit already tells it, a move of the cursor does not. So a move
 * is sent once the cursor rests (a debounce), for a single empty selection in
 * a served document of the active editor, while inline completion is on, and
 * never when an edit of the same document comes with it (typing moves the
 * cursor too, and the edit has said so already). Pure: `cursorSync.ts` feeds
 * it VS Code's events and sends what it lets through.
 */

export const MOVE_DELAY_MS = 150;
/** A selection change this close to an edit of its document is taken to come from the edit. */
export const EDIT_WINDOW_MS = 50;

export interface Position {
  line: number;
  character: number;
}

export interface SelectionChange<D> {
  /** The document, as the sender needs it; `key` identifies it (its URI as a string). */
  document: D;
  key: string;
  /** A Python file or notebook cell the language client syncs. */
  served: boolean;
  /** The change is in the active editor. */
  active: boolean;
  selections: readonly { empty: boolean; active: Position }[];
}

export interface MoveOptions<D> {
  send: (document: D, position: Position) => void;
  /** `ghostframe.enable`, read when the move is seen and again when it is sent. */
  enabled: () => boolean;
  now?: () => number;
  /** Runs `fn` after `ms`; returns a function that cancels it. */
  schedule?: (fn: () => void, ms: number) => () => void;
  delayMs?: number;
  editWindowMs?: number;
}

/** Why a selection change is not sent (undefined: it is a move to send). */
export function skipReason<D>(change: SelectionChange<D>, enabled: boolean, lastEditAt: number | undefined, now: number, editWindowMs = EDIT_WINDOW_MS): string | undefined {
  if (!enabled) return 'inline completion is off';
  if (!change.active) return 'not the active editor';
  if (!change.served) return 'not a served Python document';
  if (change.selections.length !== 1) return 'several cursors';
  if (!change.selections[0].empty) return 'a selection, not a cursor';
  if (lastEditAt !== undefined && now - lastEditAt <= editWindowMs) return 'an edit moved it';
  return undefined;
}

const defaultSchedule = (fn: () => void, ms: number) => {
  const timer = setTimeout(fn, ms);
  return () => clearTimeout(timer);
};

export class CursorMoves<D> {
  private readonly lastEdit = new Map<string, number>();
  private pending: { key: string; cancel: () => void } | undefined;
  /** The last move sent, so that the same place is not sent twice while the document is unchanged. */
  private lastSent: { key: string; line: number; character: number } | undefined;
  private readonly now: () => number;
  private readonly schedule: (fn: () => void, ms: number) => () => void;

  constructor(private readonly options: MoveOptions<D>) {
    this.now = options.now ?? Date.now;
    this.schedule = options.schedule ?? defaultSchedule;
  }

  /** A document changed: a move waiting for it came from the edit, and the server has heard of the edit. */
  edited(key: string): void {
    this.lastEdit.set(key, this.now());
    if (this.lastSent?.key === key) this.lastSent = undefined;
    if (this.pending?.key === key) this.cancelPending();
  }

  /** A document closed: forget what was kept for it. */
  closed(key: string): void {
    this.lastEdit.delete(key);
    if (this.lastSent?.key === key) this.lastSent = undefined;
    if (this.pending?.key === key) this.cancelPending();
  }

  /** A selection changed somewhere; any change replaces the move still waiting. */
  selectionChanged(change: SelectionChange<D>): void {
    if (!change.active) return; // another editor's selection says nothing about where the user is
    this.cancelPending();
    if (skipReason(change, this.options.enabled(), this.lastEdit.get(change.key), this.now(), this.options.editWindowMs) !== undefined) return;
    const { line, character } = change.selections[0].active;
    const key = change.key;
    const cancel = this.schedule(() => {
      this.pending = undefined;
      if (!this.options.enabled()) return;
      if (this.lastSent && this.lastSent.key === key && this.lastSent.line === line && this.lastSent.character === character) return;
      this.lastSent = { key, line, character };
      this.options.send(change.document, { line, character });
    }, this.options.delayMs ?? MOVE_DELAY_MS);
    this.pending = { key, cancel };
  }

  dispose(): void {
    this.cancelPending();
    this.lastEdit.clear();
  }

  private cancelPending(): void {
    this.pending?.cancel();
    this.pending = undefined;
  }
}
