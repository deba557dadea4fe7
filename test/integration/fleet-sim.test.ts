import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { restartAt, runFleet, type FleetProgress } from '../../src/sim/fleet.ts';
import type { FleetResult } from '../../src/sim/fleet-result.ts';
import { writeFleetOutput } from '../../src/sim/output.ts';

// A short real fleet: 20 simulated agents over mutual TLS (EC certificates from ringmaster's CA)
// through an in-process ringmaster to two simulated compilers, one restarted and one drained midway.

test('a short fleet runs through ringmaster to both compilers and writes fleet.json and fleet.html', { timeout: 60_000 }, async (t) => {
  const out = await mkdtemp(join(tmpdir(), 'rm-fleet-sim-'));
  t.after(() => rm(out, { recursive: true, force: true }));
  const progress: FleetProgress[] = [];
  const result = await runFleet({
    agents: 20, compilers: 2, slots: 2, compile: { meanMs: 50, p99Ms: 150 }, requestMs: 2,
    intervalMs: 1500, splayMs: 1000, durationMs: 3500, drainMs: 10_000, seed: 7, identities: 5,
    scenario: [
      restartAt(2000, 'compiler-2', { bootMs: 200 }),
      { atMs: 2800, name: 'drain compiler-1', run: (ctx) => ctx.frontDoor.drain?.('compiler-1') },
      { atMs: 3100, name: 'enable compiler-1', run: (ctx) => ctx.frontDoor.enable?.('compiler-1') },
    ],
    onProgress: (p) => progress.push(p),
  });

  assert.equal(result.parameters.frontDoor, 'ringmaster');
  assert.ok(result.runs.completed >= 40, `runs completed: ${result.runs.completed}`);
  assert.ok(result.runs.ok >= result.runs.completed - 2, `failures: ${JSON.stringify(result.runs.failureReasons)}`);
  assert.equal(result.runs.agentsWithFirstRun, 20);
  assert.ok(result.herdDrainMs !== null && result.herdDrainMs < 5000);
  assert.ok(result.catalog.count >= result.runs.ok && (result.catalog.p50Ms ?? 0) > 0);
  for (const m of result.members) {
    assert.ok(m.catalogsServed > 0, `${m.name} served no catalog`);
    assert.ok(m.catalogs >= m.catalogsServed && m.utilisation > 0 && m.maxBusy <= 2);
  }
  assert.equal(result.members.reduce((a, m) => a + m.catalogsServed, 0), result.catalog.count);
  assert.equal(result.members[1]?.restarts, 1);
  assert.deepEqual(result.events.map((e) => e.name), ['restart compiler-2', 'drain compiler-1', 'enable compiler-1']);
  assert.ok(result.samples.length >= 10 && progress.length >= 10);
  assert.ok(result.samples.some((s) => s.up[1] === false), 'the restart shows in the samples');

  const files = await writeFleetOutput(result, out);
  const json = JSON.parse(await readFile(files.json, 'utf8')) as FleetResult;
  assert.equal(json.runs.completed, result.runs.completed);
  const html = await readFile(files.html, 'utf8');
  assert.ok(html.startsWith('<!doctype html>'));
  assert.equal((html.match(/<svg /g) ?? []).length, 4);
  assert.doesNotMatch(html, /https?:\/\//);
});
