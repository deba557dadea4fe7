import { test } from 'node:test';
import assert from 'node:assert/strict';
import { seededRandom } from '../lib/random.ts';
import { isRingmasterError } from '../lib/errors.ts';
import { applyDistribution, planApply } from './apply.ts';

test('without an apply, the file requests follow the catalog at once: 2 or 3 unless told', () => {
  assert.equal(applyDistribution(undefined), undefined);
  assert.equal(applyDistribution({ meanMs: 0, p99Ms: 0 }), undefined);
  const random = seededRandom(3);
  const counts = new Set(Array.from({ length: 200 }, () => planApply(undefined, undefined, random)).map((p) => {
    assert.equal(p.workMs, 0);
    assert.ok(p.fileAtMs.every((t) => t === 0));
    return p.fileAtMs.length;
  }));
  assert.deepEqual([...counts].sort(), [2, 3]);
  assert.deepEqual(planApply(undefined, 5, random).fileAtMs, [0, 0, 0, 0, 0]);
});

test('an apply draws its work log-normally and places each sourced file at a random point of it', () => {
  const d = applyDistribution({ meanMs: 4000, p99Ms: 12_000 });
  const random = seededRandom(11);
  const plans = Array.from({ length: 20_000 }, () => planApply(d, 3, random));
  const mean = plans.reduce((a, p) => a + p.workMs, 0) / plans.length;
  assert.ok(Math.abs(mean / 4000 - 1) < 0.03, `mean apply ${mean}`);
  for (const p of plans) {
    assert.equal(p.fileAtMs.length, 3);
    assert.ok(p.fileAtMs.every((t, i) => t >= 0 && t < Math.max(1, p.workMs) && (i === 0 || t >= p.fileAtMs[i - 1]!)));
  }
  // Spread through the apply, not bunched at either end: the points average half of it.
  const share = plans.reduce((a, p) => a + p.fileAtMs.reduce((b, t) => b + t / p.workMs, 0) / 3, 0) / plans.length;
  assert.ok(Math.abs(share - 0.5) < 0.02, `mean position ${share}`);
  assert.throws(() => applyDistribution({ meanMs: 4000, p99Ms: 1000 }), (e: unknown) => isRingmasterError(e, 'RM_CONFIG_INVALID') && /^apply p99/.test((e as Error).message));
  assert.throws(() => applyDistribution({ meanMs: -1, p99Ms: 1000 }), (e: unknown) => isRingmasterError(e, 'RM_CONFIG_INVALID'));
});
