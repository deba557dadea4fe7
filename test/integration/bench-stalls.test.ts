import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { analyseStalls, StallMeters } from '../../bench/lib/stalls.ts';
import { monotonicMs } from '../../bench/lib/stats.ts';

// The gateway benchmark's stall meters (bench/lib/stall-meter.ts) and what it leaves out because of
// them (bench/lib/stalls.ts): a meter stopped with SIGSTOP must report the gap, at real-time
// priority on its CPU, and the analysis must leave out exactly the requests a stall or its
// catch-up touched.

test('requests that overlap a stall or its catch-up are left out, the others summarised', () => {
  // Requests of 1 ms every 2 ms from t=0 to t=100 (50 requests).
  const spans: number[] = [];
  for (let t = 0; t < 100; t += 2) spans.push(t, t + 1);
  // CPU 0: a 5 ms stall at 20–25 (catch-up to 30); CPU 1: a 2 ms stall at 60–62 (to 64), and one
  // at 61–63 (to 65) that overlaps it.
  const stalls = new Map([[0, [20, 25]], [1, [60, 62, 61, 63]]]);
  const r = analyseStalls(spans, stalls);
  // Touched: starts 20..30 (20, 22, 24, 26, 28, 30) and 60..64 (60, 62, 64); 18 and 58 end at 19 and 59: untouched.
  assert.equal(r.touchedShare, 9 / 50);
  assert.equal(r.untouched.count, 41);
  assert.equal(r.untouched.p99Ms, 1);
  assert.deepEqual(r.perCpu, [
    { cpu: 0, count: 1, totalMs: 5, maxMs: 5 },
    { cpu: 1, count: 2, totalMs: 4, maxMs: 2 },
  ]);
  // A slow request outside every stall stays in the figures: the analysis hides only stalls.
  const slow = analyseStalls([...spans, 32, 58], stalls);
  assert.equal(slow.untouched.maxMs, 26);
  // One that spans a stall is left out however slow it was.
  assert.equal(analyseStalls([...spans, 40, 90], stalls).untouched.maxMs, 1);
  // No stalls: nothing is left out.
  assert.equal(analyseStalls(spans, new Map([[0, []]])).touchedShare, 0);
});

test('a meter notes the time its CPU was taken from it, at real-time priority on its CPU', { timeout: 30_000 }, async (t) => {
  const meters = await StallMeters.start([availableParallelism() - 1]);
  if (!(meters instanceof StallMeters)) {
    // Only root may raise a process to real-time priority; the test script runs as root.
    assert.ok(process.getuid?.() !== 0, `root could not start the meters: ${meters.unavailable}`);
    t.skip(`not root: ${meters.unavailable}`);
    return;
  }
  t.after(() => meters.close());
  const [cpu, pid] = [...meters.pids][0]!;
  // SCHED_FIFO (policy 1) at priority 99, allowed on its one CPU only.
  const sched = readFileSync(`/proc/${pid}/sched`, 'utf8');
  assert.match(sched, /^policy\s*:\s*1$/m);
  assert.match(sched, /^prio\s*:\s*0$/m);
  assert.match(readFileSync(`/proc/${pid}/status`, 'utf8'), new RegExp(`^Cpus_allowed_list:\\s*${cpu}$`, 'm'));

  meters.start();
  await new Promise((resolve) => setTimeout(resolve, 100));
  const stoppedAt = monotonicMs();
  process.kill(pid, 'SIGSTOP');
  await new Promise((resolve) => setTimeout(resolve, 80));
  const resumedAt = monotonicMs();
  process.kill(pid, 'SIGCONT');
  await new Promise((resolve) => setTimeout(resolve, 100));
  const found = (await meters.stop()).get(cpu)!;
  const pairs = Array.from({ length: found.length / 2 }, (_, i) => [found[2 * i]!, found[2 * i + 1]!] as const);
  const ours = pairs.find(([s, e]) => s <= resumedAt && e >= stoppedAt);
  assert.ok(ours, `no stall around ${stoppedAt.toFixed(1)}–${resumedAt.toFixed(1)} in ${JSON.stringify(pairs)}`);
  assert.ok(ours[1] - ours[0] >= 60, `the stall lasted ${ours[1] - ours[0]} ms`);
  // Read means read: a second read has nothing left of it.
  meters.start();
  const again = (await meters.stop()).get(cpu)!;
  assert.ok(!again.some((v, i) => i % 2 === 0 && v === ours[0]));
});
