import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isRingmasterError } from '../lib/errors.ts';
import { describePlan, planCapacity } from './plan.ts';
import { logHistogram, quantile, summarise } from './stats.ts';

test("the plan follows Little's law: nodes / interval × compile time / slots / utilisation", () => {
  const p = planCapacity({ nodes: 20_000, intervalMs: 30 * 60_000, compileMs: 4000, slotsPerCompiler: 4 });
  assert.ok(Math.abs(p.catalogsPerSecond - 11.111) < 0.001);
  assert.ok(Math.abs(p.busySlots - 44.444) < 0.001);
  assert.equal(p.targetUtilisation, 0.7);
  assert.equal(p.compilers, 16);
  assert.equal(p.compilersWithSpare, 17);
  assert.equal(
    describePlan(p),
    '20000 nodes every 30m with 4s compiles: 11.1 catalogs/s keep 44.4 JRubies busy on average; at 70% utilisation that needs 64 JRubies: 16 compilers of 4 (17 with one spare).',
  );
});

test('an exact fit needs no extra compiler, and a tiny fleet still needs one', () => {
  assert.equal(planCapacity({ nodes: 1800, intervalMs: 1_800_000, compileMs: 4000, slotsPerCompiler: 4, targetUtilisation: 1 }).compilers, 1);
  assert.equal(planCapacity({ nodes: 1801, intervalMs: 1_800_000, compileMs: 4000, slotsPerCompiler: 4, targetUtilisation: 1 }).compilers, 2);
  assert.equal(planCapacity({ nodes: 1, intervalMs: 3_600_000, compileMs: 100, slotsPerCompiler: 8 }).compilers, 1);
});

test('invalid plan input is refused with every problem at once', () => {
  assert.throws(
    () => planCapacity({ nodes: 0, intervalMs: 0, compileMs: 4000, slotsPerCompiler: 1.5, targetUtilisation: 2 }),
    (err: unknown) => isRingmasterError(err, 'RM_CONFIG_INVALID') && (err.message.match(/;/g) ?? []).length === 3,
  );
});

test('percentiles are nearest-rank; the histogram buckets are logarithmic', () => {
  const values = Array.from({ length: 100 }, (_, i) => i + 1);
  assert.deepEqual(summarise(values), { count: 100, meanMs: 50.5, p50Ms: 50, p90Ms: 90, p99Ms: 99, maxMs: 100 });
  assert.deepEqual(summarise([]), { count: 0, meanMs: null, p50Ms: null, p90Ms: null, p99Ms: null, maxMs: null });
  assert.equal(quantile([5], 0.99), 5);
  const h = logHistogram([0.5, 1, 10, 10, 11, 1000, 4000]);
  assert.deepEqual(h, [{ leMs: 1, count: 2 }, { leMs: 10, count: 2 }, { leMs: 12.6, count: 1 }, { leMs: 1000, count: 1 }, { leMs: 5010, count: 1 }]);
  assert.equal(h.reduce((a, b) => a + b.count, 0), 7);
});
