import { test } from 'node:test';
import assert from 'node:assert/strict';
import { seededRandom } from '../lib/random.ts';
import { isRingmasterError } from '../lib/errors.ts';
import { logNormalDraw, logNormalFromMeanP99, logNormalP99, warmupFactor } from './distributions.ts';

function drawMany(meanMs: number, p99Ms: number, n: number): number[] {
  const d = logNormalFromMeanP99(meanMs, p99Ms);
  const random = seededRandom(42);
  return Array.from({ length: n }, () => logNormalDraw(d, random)).sort((a, b) => a - b);
}

test('log-normal draws have the configured mean and p99', () => {
  for (const [mean, p99] of [[4000, 12000], [50, 150], [1000, 1100], [300, 4000]] as const) {
    const draws = drawMany(mean, p99, 200_000);
    const avg = draws.reduce((a, b) => a + b, 0) / draws.length;
    const q99 = draws[Math.floor(draws.length * 0.99)]!;
    assert.ok(Math.abs(avg / mean - 1) < 0.02, `mean ${avg} for ${mean}`);
    assert.ok(Math.abs(q99 / p99 - 1) < 0.03, `p99 ${q99} for ${p99}`);
    assert.ok(Math.abs(logNormalP99(logNormalFromMeanP99(mean, p99)) / p99 - 1) < 1e-9);
  }
});

test('a p99 equal to the mean is a constant; impossible shapes are refused with a code', () => {
  const d = logNormalFromMeanP99(100, 100);
  assert.equal(d.sigma, 0);
  assert.ok(Math.abs(logNormalDraw(d, seededRandom(1)) - 100) < 1e-9);
  assert.throws(() => logNormalFromMeanP99(100, 50), (e: unknown) => isRingmasterError(e, 'RM_CONFIG_INVALID'));
  assert.throws(() => logNormalFromMeanP99(100, 2000), (e: unknown) => isRingmasterError(e, 'RM_CONFIG_INVALID'));
  assert.throws(() => logNormalFromMeanP99(0, 10), (e: unknown) => isRingmasterError(e, 'RM_CONFIG_INVALID'));
});

test('warm-up decays from its factor to 1 over the period', () => {
  const linear = { factor: 4, periodMs: 60_000, shape: 'linear' as const };
  assert.equal(warmupFactor(linear, 0), 4);
  assert.equal(warmupFactor(linear, 30_000), 2.5);
  assert.equal(warmupFactor(linear, 60_000), 1);
  assert.equal(warmupFactor(linear, 600_000), 1);
  const exp = { ...linear, shape: 'exponential' as const };
  assert.equal(warmupFactor(exp, 0), 4);
  const early = warmupFactor(exp, 6_000);
  const late = warmupFactor(exp, 30_000);
  assert.ok(early < 4 && late < early && late > 1, `${early} ${late}`);
  assert.ok(warmupFactor(exp, 30_000) < warmupFactor(linear, 30_000));
  assert.equal(warmupFactor(exp, 60_000), 1);
  assert.equal(warmupFactor({ factor: 1, periodMs: 60_000, shape: 'linear' }, 0), 1);
});
