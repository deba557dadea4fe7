import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { errorCodes } from './error-codes.ts';
import { RingmasterError } from './errors.ts';

test('every error code is documented in docs/errors.md and no stale code is listed there', async () => {
  const doc = await readFile(new URL('../../docs/errors.md', import.meta.url), 'utf8');
  const documented = new Set([...doc.matchAll(/^\| `(RM_[A-Z0-9_]+)` \|/gm)].map((m) => m[1]));
  const registered = new Set(Object.keys(errorCodes));
  assert.deepEqual([...registered].filter((c) => !documented.has(c)), [], 'codes missing from docs/errors.md');
  assert.deepEqual([...documented].filter((c) => !registered.has(c as string)), [], 'codes in docs/errors.md that no longer exist');
});

test('every code has an HTTP status and a summary, and errors carry both', () => {
  for (const [code, entry] of Object.entries(errorCodes)) {
    assert.ok(entry.status >= 400 && entry.status < 600, code);
    assert.ok(entry.summary.length > 10, code);
  }
  const err = new RingmasterError('RM_CA_NOT_FOUND', 'Could not find certificate x');
  assert.equal(err.status, 404);
  assert.equal(err.code, 'RM_CA_NOT_FOUND');
});
