import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDuration, formatDuration } from './duration.ts';

test('durations', () => {
  const cases: [string | number, number | undefined][] = [
    ['30s', 30_000], ['5m', 300_000], ['6h', 21_600_000], ['90d', 7_776_000_000], ['5y', 157_680_000_000],
    ['1y2d', 31_708_800_000], ['250ms', 250], ['15', 15_000], [15, 15_000], ['', undefined], ['5q', undefined], ['-1s', undefined], ['1h x', undefined],
  ];
  for (const [input, want] of cases) assert.equal(parseDuration(input), want, String(input));
  assert.equal(formatDuration(90 * 86400_000), '90d');
});
