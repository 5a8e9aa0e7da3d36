import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CursorMoves, EDIT_WINDOW_MS, MOVE_DELAY_MS, Position, SelectionChange, skipReason } from '../src/cursorMoves';

/** A fake clock and timer queue, so the debounce is tested without waiting. */
function harness(enabled = true) {
  let now = 1000;
  let timers: { at: number; fn: () => void; cancelled: boolean }[] = [];
  const sent: { doc: string; position: Position }[] = [];
  const state = { enabled };
  const moves = new CursorMoves<string>({
    send: (doc, position) => sent.push({ doc, position }),
    enabled: () => state.enabled,
    now: () => now,
    schedule: (fn, ms) => {
      const t = { at: now + ms, fn, cancelled: false };
      timers.push(t);
      return () => {
        t.cancelled = true;
      };
    },
  });
  const advance = (ms: number) => {
    now += ms;
    const due = timers.filter((t) => !t.cancelled && t.at <= now);
    timers = timers.filter((t) => !due.includes(t));
    due.forEach((t) => t.fn());
  };
  return { moves, sent, advance, state };
}

const at = (line: number, character: number, doc = 'file:///a.py', extra: Partial<SelectionChange<string>> = {}): SelectionChange<string> => ({
  document: doc,
  key: doc,
  served: true,
  active: true,
  selections: [{ empty: true, active: { line, character } }],
  ...extra,
});

test('a cursor that rests is sent once, after the delay, with its document and UTF-16 position', () => {
  const h = harness();
  h.moves.selectionChanged(at(3, 7));
  h.advance(MOVE_DELAY_MS - 1);
  assert.deepEqual(h.sent, []);
  h.advance(1);
  assert.deepEqual(h.sent, [{ doc: 'file:///a.py', position: { line: 3, character: 7 } }]);
});

test('moves in quick succession send only where the cursor stopped', () => {
  const h = harness();
  for (let line = 0; line < 5; line++) {
    h.moves.selectionChanged(at(line, 0));
    h.advance(30);
  }
  h.advance(MOVE_DELAY_MS);
  assert.deepEqual(h.sent.map((s) => s.position), [{ line: 4, character: 0 }]);
});

test('typing is not a move: a selection change right after an edit of its document is not sent', () => {
  const h = harness();
  h.moves.edited('file:///a.py');
  h.advance(5);
  h.moves.selectionChanged(at(0, 1));
  h.advance(MOVE_DELAY_MS * 2);
  assert.deepEqual(h.sent, []);
  // An edit of another document does not hide a move here.
  h.moves.edited('file:///b.py');
  h.moves.selectionChanged(at(9, 0));
  h.advance(MOVE_DELAY_MS);
  assert.equal(h.sent.length, 1);
});

test('an edit that arrives after the selection change cancels the waiting move', () => {
  const h = harness();
  h.moves.selectionChanged(at(2, 4));
  h.advance(1);
  h.moves.edited('file:///a.py');
  h.advance(MOVE_DELAY_MS * 2);
  assert.deepEqual(h.sent, []);
});

test('a move well after the last edit is sent', () => {
  const h = harness();
  h.moves.edited('file:///a.py');
  h.advance(EDIT_WINDOW_MS + 1);
  h.moves.selectionChanged(at(0, 0));
  h.advance(MOVE_DELAY_MS);
  assert.equal(h.sent.length, 1);
});

test('selections, several cursors, other editors and unserved documents are not sent', () => {
  const h = harness();
  h.moves.selectionChanged(at(1, 1, 'file:///a.py', { selections: [{ empty: false, active: { line: 1, character: 1 } }] }));
  h.moves.selectionChanged(at(1, 1, 'file:///a.py', { selections: [{ empty: true, active: { line: 1, character: 1 } }, { empty: true, active: { line: 2, character: 1 } }] }));
  h.moves.selectionChanged(at(1, 1, 'file:///notes.md', { served: false }));
  h.advance(MOVE_DELAY_MS * 2);
  assert.deepEqual(h.sent, []);
});

test('a selection made before the delay ends cancels the move', () => {
  const h = harness();
  h.moves.selectionChanged(at(1, 0));
  h.advance(50);
  h.moves.selectionChanged(at(1, 0, 'file:///a.py', { selections: [{ empty: false, active: { line: 1, character: 8 } }] }));
  h.advance(MOVE_DELAY_MS * 2);
  assert.deepEqual(h.sent, []);
});

test('a selection change in a background editor leaves the active editor’s move alone', () => {
  const h = harness();
  h.moves.selectionChanged(at(6, 2));
  h.moves.selectionChanged(at(0, 0, 'file:///b.py', { active: false }));
  h.advance(MOVE_DELAY_MS);
  assert.deepEqual(h.sent, [{ doc: 'file:///a.py', position: { line: 6, character: 2 } }]);
});

test('nothing is sent while inline completion is off, also when it is turned off during the delay', () => {
  const h = harness(false);
  h.moves.selectionChanged(at(1, 0));
  h.advance(MOVE_DELAY_MS);
  assert.deepEqual(h.sent, []);
  h.state.enabled = true;
  h.moves.selectionChanged(at(2, 0));
  h.state.enabled = false;
  h.advance(MOVE_DELAY_MS);
  assert.deepEqual(h.sent, []);
});

test('the same place is sent once until the document changes; notebook cells are documents of their own', () => {
  const h = harness();
  const cell = 'vscode-notebook-cell:/n.ipynb#W0sZmlsZQ%3D%3D';
  h.moves.selectionChanged(at(4, 0));
  h.advance(MOVE_DELAY_MS);
  h.moves.selectionChanged(at(4, 0)); // e.g. the editor came back to the front
  h.advance(MOVE_DELAY_MS);
  assert.equal(h.sent.length, 1);
  h.moves.edited('file:///a.py');
  h.advance(EDIT_WINDOW_MS + 1);
  h.moves.selectionChanged(at(4, 0));
  h.advance(MOVE_DELAY_MS);
  h.moves.selectionChanged(at(4, 0, cell));
  h.advance(MOVE_DELAY_MS);
  assert.deepEqual(h.sent.map((s) => s.doc), ['file:///a.py', 'file:///a.py', cell]);
});

test('dispose drops a waiting move', () => {
  const h = harness();
  h.moves.selectionChanged(at(1, 0));
  h.moves.dispose();
  h.advance(MOVE_DELAY_MS);
  assert.deepEqual(h.sent, []);
});

test('skipReason names why a change is not sent', () => {
  assert.equal(skipReason(at(0, 0), true, undefined, 0), undefined);
  assert.match(skipReason(at(0, 0), false, undefined, 0) ?? '', /off/);
  assert.match(skipReason(at(0, 0), true, 100, 100 + EDIT_WINDOW_MS) ?? '', /edit/);
  assert.equal(skipReason(at(0, 0), true, 100, 100 + EDIT_WINDOW_MS + 1), undefined);
  assert.match(skipReason(at(0, 0, 'x', { selections: [] }), true, undefined, 0) ?? '', /several/);
});
