import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RunRecord } from './agents.ts';
import type { SimCompilerStats } from './compiler.ts';
import { buildFleetResult, type FleetParameters, type FleetResult, type FleetSample } from './fleet-result.ts';
import { planCapacity } from './plan.ts';
import { renderFleetReport } from './report.ts';

const start = Date.UTC(2026, 0, 1);

const parameters: FleetParameters = {
  frontDoor: 'ringmaster', agents: 3, compilers: 2, slots: 2, compile: { meanMs: 50, p99Ms: 150 }, requestMs: 3, intervalMs: 2000, splayMs: 1000,
  durationMs: 4000, drainMs: 5000, seed: 1, identities: 3, maxQueuedRequests: 0, maxRetryDelayS: 60, maxRetryAfterMs: 2000,
  warmup: { factor: 4, periodMs: 60_000, shape: 'exponential' }, startWarm: true, compilerIdleTimeoutMs: 30_000, facts: { meanMs: 0, p99Ms: 0 }, apply: { meanMs: 200, p99Ms: 600 },
  sourcedFiles: 3, keepAliveMs: 4000, speeds: [1, 2], scenario: [{ atMs: 1500, name: 'restart compiler-2' }],
};

function stats(name: string, catalogs: number): SimCompilerStats {
  return {
    name, state: 'up', slots: 2, busy: 0, queued: 0, maxBusy: 2, catalogs, busySlotMs: 1200, rejected: 1, restarts: 0,
    requests: { node: 0, file_metadatas: catalogs, file_metadata: 2 * catalogs, catalog: catalogs, report: catalogs, status: 3, metrics: 0, other: 0 },
  };
}

function run(agent: number, runNo: number, ok: boolean, catalogMs?: number, compiler?: string, reason?: string): RunRecord {
  const at = start + agent * 100 + runNo * 2000;
  return { agent, certname: `agent-${agent}.sim.test`, run: runNo, start: at, end: at + 300, ok, catalogMs, catalogTotalMs: catalogMs, compiler, retryAfterWaits: ok ? 0 : 1, retryAfterWaitMs: ok ? 0 : 1000, connections: ok ? 1 : 2, ...(ok ? { applyMs: 150 + agent } : {}), ...(reason ? { reason } : {}) };
}

function sampleAt(t: number, i: number): FleetSample {
  return { t, busy: [i % 3, 1], queued: [i % 5, 0], util: [(i % 10) / 10, 0.5], up: [true, i < 3 || i > 6], doorQueued: i % 7, doorInFlight: 2, ok: i, failed: Math.floor(i / 4), running: 2, retryAfterWaits: Math.floor(i / 3) };
}

function fixture(over: { records?: RunRecord[]; samples?: FleetSample[] } = {}): FleetResult {
  const records = over.records ?? [
    run(0, 1, true, 40, 'compiler-1'), run(1, 1, true, 120, 'compiler-2'), run(2, 1, false, undefined, undefined, 'catalog: <script>alert(1)</script>'),
    run(0, 2, true, 60, 'compiler-1'),
  ];
  return buildFleetResult({
    startedAt: start, elapsedMs: 5000, parameters, records, events: [{ t: 1500, name: 'restart compiler-2' }],
    samples: over.samples ?? Array.from({ length: 20 }, (_, i) => sampleAt(i * 250, i)),
    members: [{ stats: stats('compiler-1', 2), port: 40001, speed: 1 }, { stats: stats('compiler-2', 1), port: 40002, speed: 2 }],
    plan: planCapacity({ nodes: 3, intervalMs: 2000, compileMs: 50, slotsPerCompiler: 2 }),
  });
}

test('the result sums runs, latency and members', () => {
  const r = fixture();
  assert.deepEqual(r.runs, { completed: 4, ok: 3, failed: 1, failureReasons: { 'catalog: <script>alert(1)</script>': 1 }, agentsWithFirstRun: 3, longerThanInterval: 0 });
  assert.deepEqual([r.runDuration.count, r.runDuration.p50Ms], [3, 300]);
  assert.deepEqual([r.apply.count, r.apply.p50Ms, r.apply.maxMs], [3, 150, 151]);
  assert.deepEqual(r.connectionsPerRun, { mean: 1.3, max: 2 });
  assert.deepEqual([r.catalog.count, r.catalog.p50Ms, r.catalog.maxMs], [3, 60, 120]);
  assert.deepEqual(r.members.map((m) => [m.name, m.catalogsServed, m.utilisation]), [['compiler-1', 2, 0.12], ['compiler-2', 1, 0.12]]);
  assert.equal(r.herdDrainMs, 2500);
  assert.deepEqual(r.retryAfter, { waits: 1, waitMs: 1000, runsAffected: 1 });
  assert.doesNotThrow(() => JSON.parse(JSON.stringify(r)));
});

test('the report is one HTML page with its four charts inline and nothing fetched', () => {
  const html = renderFleetReport(fixture());
  assert.ok(html.startsWith('<!doctype html>\n<html lang="en">'));
  assert.ok(html.trimEnd().endsWith('</body></html>'));
  assert.equal((html.match(/<svg /g) ?? []).length, 4);
  assert.equal((html.match(/<\/svg>/g) ?? []).length, 4);
  assert.doesNotMatch(html, /https?:\/\//);
  assert.doesNotMatch(html, /<script|<link|<img|<iframe|\bsrc=|\bhref=|@import|url\(/i);
  for (const title of ['Catalog latency (3 catalogs)', 'JRuby utilisation per member', 'Queue depth', 'Failures, Retry-After waits and runs in progress']) {
    assert.ok(html.includes(`aria-label="${title}"`), title);
  }
  assert.ok(html.includes('catalog: &lt;script&gt;alert(1)&lt;/script&gt;'), 'failure reasons are escaped');
  assert.ok(html.includes('restart compiler-2'));
  assert.ok(html.includes('<td>apply mean / p99 (log-normal)</td><td>200 ms / 600 ms</td>'));
  assert.ok(html.includes('after restarts only (compilers start warm)'));
  assert.doesNotMatch(html, /NaN|Infinity|undefined/);
  assert.match(html, /compilers? of 2 \(\d+ with one spare\)/);
  assert.ok(html.includes('<td>compiler-2</td><td class="n">40002</td><td class="n">2</td>'));
});

test('long runs are thinned to a few hundred points per line; an empty run still renders', () => {
  const samples = Array.from({ length: 10_000 }, (_, i) => sampleAt(i * 250, i));
  const html = renderFleetReport(fixture({ samples }));
  const lines = [...html.matchAll(/<polyline[^>]* points="([^"]*)"/g)].map((m) => m[1]!.split(' ').length);
  assert.ok(lines.length >= 6);
  assert.ok(lines.every((n) => n <= 600), `points per line: ${lines.join(', ')}`);
  const empty = renderFleetReport(fixture({ records: [], samples: [] }));
  assert.ok(empty.includes('no data'));
  assert.ok(empty.includes('No run failed.'));
  assert.doesNotMatch(empty, /NaN|Infinity|undefined/);
});
