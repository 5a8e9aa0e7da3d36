import assert from 'node:assert/strict';
import { test } from 'node:test';
import { adapterFolderName, trainerArgs } from '../src/trainArgs';

test('adapter folder names are unique per run and filesystem-safe', () => {
  const name = adapterFolderName('My Project (pandas)', new Date(2026, 10, 24, 9, 5, 7));
  assert.equal(name, 'My-Project-pandas-20261124-090507');
  assert.equal(adapterFolderName('///', new Date(2026, 0, 1)), 'workspace-20260101-000000');
});

test('trainer gets every workspace folder and the output', () => {
  assert.deepEqual(trainerArgs(['/a', '/b c'], '/out'), ['-m', 'ghostframe.trainer', '/a', '/b c', '--output', '/out']);
});
