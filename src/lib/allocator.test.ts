import { test } from 'node:test';
import assert from 'node:assert/strict';
import { allocatorOf, gcMode, pretenuring } from './allocator.ts';

test('the allocator is read from the libraries mapped into the process', () => {
  const glibc = '7f0000000000-7f0000001000 r-xp 00000000 08:01 123 /usr/lib/x86_64-linux-gnu/libc.so.6\n';
  const jemalloc = `${glibc}7f0000002000-7f0000003000 r-xp 00000000 08:01 124 /usr/lib/x86_64-linux-gnu/libjemalloc.so.2\n`;
  assert.equal(allocatorOf(glibc), 'system');
  assert.equal(allocatorOf(jemalloc), 'jemalloc');
  assert.equal(allocatorOf(`${glibc}7f00 r-xp 0 0 0 /opt/libjemalloc-helper.txt\n`), 'system');
});

test('the garbage collector\'s mode and pretenuring are read from the V8 flags the process was started with', () => {
  assert.equal(pretenuring(['--single-threaded-gc', '--no-allocation-site-pretenuring']), 'off');
  assert.equal(pretenuring(['--single-threaded-gc']), 'on');
  assert.equal(gcMode(['--no-allocation-site-pretenuring', '--single-threaded-gc']), 'single-threaded');
  assert.equal(gcMode([]), 'parallel');
});
