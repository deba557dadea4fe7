import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../lib/clock.ts';
import { silentLog } from '../observability/log.ts';
import { MemoryReportStore } from './memory-store.ts';
import { ReportRetention } from './retention.ts';
import { newReport } from './store-conformance.ts';
import type { PruneLimits } from './store.ts';

// Retention on a clock moved by hand: nothing before the first delay, then every interval; a
// backlog is deleted in batches until done; a failing store is retried at the next interval.

const hour = 3600_000;

test('retention runs after the initial delay and then every interval, by age and by count, in batches', async () => {
  const clock = new ManualClock();
  const store = new MemoryReportStore();
  for (let i = 0; i < 30; i++) await store.add(newReport({ node: `n${i}`, receivedAt: clock.now() - (30 - i) * hour }));
  const batches: PruneLimits[] = [];
  const prune = store.prune.bind(store);
  store.prune = (limits) => {
    batches.push(limits);
    return prune(limits);
  };
  const retention = new ReportRetention({ store, clock, log: silentLog, maxAgeMs: 24 * hour, maxCount: 20, intervalMs: hour, initialDelayMs: 10_000, batchSize: 3 });
  retention.start();
  clock.advance(9_999);
  assert.equal(batches.length, 0);
  clock.advance(1);
  assert.equal(await retention.runOnce(), 10, 'the first ten are both older than a day and beyond the newest 20');
  assert.equal(batches.length, 4, 'three full batches and a last one');
  assert.deepEqual(retention.lastRun, { at: clock.now(), deleted: 10, error: null });
  assert.equal((await store.stats({ since: 0, until: clock.now() + 1, bucketMs: 86_400_000 * 365 })).stored, 20);

  assert.equal(clock.pendingTimers(), 1, 'the next run is scheduled');
  for (let i = 0; i < 3; i++) await store.add(newReport({ node: `late${i}`, receivedAt: clock.now() - 23.5 * hour }));
  clock.advance(hour - 1);
  assert.equal(retention.lastRun?.deleted, 10, 'not yet');
  clock.advance(1);
  assert.equal(await retention.runOnce(), 6, 'an hour later those three are past a day, and the three oldest are beyond the newest 20');
  assert.deepEqual((await store.list({ limit: 100 })).items.map((r) => r.node).slice(-2), ['n14', 'n13']);
  await retention.stop();
  clock.advance(10 * hour);
  assert.equal(clock.pendingTimers(), 0);
});

test('a failing store is logged in lastRun and tried again at the next interval', async () => {
  const clock = new ManualClock();
  const store = new MemoryReportStore();
  let broken = true;
  const prune = store.prune.bind(store);
  store.prune = (limits) => (broken ? Promise.reject(new Error('disk I/O error')) : prune(limits));
  await store.add(newReport({ node: 'old', receivedAt: clock.now() - 48 * hour }));
  const retention = new ReportRetention({ store, clock, log: silentLog, maxAgeMs: 24 * hour, maxCount: 100, intervalMs: hour, initialDelayMs: 0 });
  retention.start();
  clock.advance(0);
  assert.equal(await retention.runOnce(), 0);
  assert.equal(retention.lastRun?.error, 'disk I/O error');
  broken = false;
  clock.advance(hour);
  assert.equal(await retention.runOnce(), 1);
  assert.equal(retention.lastRun?.error, null);
  await retention.stop();
});
