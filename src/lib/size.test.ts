import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSize } from './size.ts';

test('sizes in bytes, binary and decimal units', () => {
  assert.equal(parseSize(1234), 1234);
  assert.equal(parseSize('1234'), 1234);
  assert.equal(parseSize('16KiB'), 16384);
  assert.equal(parseSize('64MiB'), 64 * 1024 * 1024);
  assert.equal(parseSize('1.5kB'), 1500);
  assert.equal(parseSize('2gib'), 2 * 1024 ** 3);
});

test('anything else is not a size', () => {
  for (const bad of ['', 'MiB', '12 parsecs', '-1', '1e3', 'ten']) assert.equal(parseSize(bad), undefined, bad);
  assert.equal(parseSize(-5), undefined);
  assert.equal(parseSize(1.5), undefined);
});
