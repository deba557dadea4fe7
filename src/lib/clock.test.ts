import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from './clock.ts';

test('a manual clock fires timers in due order and only when advanced past them', () => {
  const clock = new ManualClock(0);
  const fired: string[] = [];
  clock.setTimeout(() => fired.push('b'), 20);
  clock.setTimeout(() => fired.push('a'), 10);
  const c = clock.setTimeout(() => fired.push('c'), 15);
  c.cancel();
  clock.advance(9);
  assert.equal(fired.length, 0);
  clock.advance(11);
  assert.deepEqual(fired, ['a', 'b']);
  assert.equal(clock.now(), 20);
  // A timer set from inside a firing timer still fires in the same advance when due.
  clock.setTimeout(() => clock.setTimeout(() => fired.push('nested'), 5), 5);
  clock.advance(10);
  assert.deepEqual(fired, ['a', 'b', 'nested']);
});
