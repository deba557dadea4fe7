import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { ManualClock, systemClock } from '../lib/clock.ts';
import { seededRandom } from '../lib/random.ts';
import { SimCompiler } from './compiler.ts';
import { AgentFleet, type AgentFleetOptions } from './agents.ts';
import { retryAfterMs } from './agent-http.ts';
import { testCa, waitFor, type TestCa } from './testing.ts';

// Simulated agents over mutual TLS straight to a simulated compiler in its HTTPS mode (the way an
// L4 front door would pass them through), and to a scripted server for the Retry-After rules.

let ca: TestCa;
before(async () => {
  ca = await testCa(3);
});
after(() => ca.cleanup());

async function tlsCompiler(clock = systemClock) {
  return SimCompiler.start(
    { name: 'tls1', slots: 2, compile: { meanMs: 20, p99Ms: 40 }, requestMs: 1, tls: { key: ca.server.key, cert: ca.server.cert, ca: ca.caPem } },
    { clock, random: seededRandom(3) },
  );
}

function options(port: number, over: Partial<AgentFleetOptions>): AgentFleetOptions {
  return { target: { port, servername: 'localhost', ca: ca.caPem }, identities: ca.identities, agents: 4, intervalMs: 1000, splayMs: 500, factsBytes: 12_000, ...over };
}

/** Moves a manual clock in small steps while giving real sockets time to deliver. */
async function pump(clock: ManualClock, until: () => boolean, stepMs = 10): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!until()) {
    if (Date.now() > deadline) throw new Error('pump: timed out');
    clock.advance(stepMs);
    await new Promise((r) => setTimeout(r, 2));
  }
}

test('agents do whole runs over mutual TLS: pluginsync, catalog, file metadata, report', async (t) => {
  const compiler = await tlsCompiler();
  t.after(() => compiler.close());
  const fleet = AgentFleet.start(options(compiler.port, { agents: 5, intervalMs: 300, splayMs: 100, runsPerAgent: 2 }), { clock: systemClock, random: seededRandom(9) });
  await fleet.done;
  assert.equal(fleet.records.length, 10);
  assert.ok(fleet.records.every((r) => r.ok && r.compiler === 'tls1' && (r.catalogMs ?? -1) >= 0), JSON.stringify(fleet.records.find((r) => !r.ok)));
  assert.deepEqual([...new Set(fleet.records.map((r) => r.certname))].sort(), ['agent-0.sim.test', 'agent-1.sim.test', 'agent-2.sim.test']);
  const s = compiler.stats();
  assert.deepEqual([s.requests.file_metadatas, s.catalogs, s.requests.report], [10, 10, 10]);
  assert.ok(s.requests.file_metadata >= 20 && s.requests.file_metadata <= 30);
  for (let a = 0; a < 5; a++) {
    const [first, second] = fleet.records.filter((r) => r.agent === a).sort((x, y) => x.run - y.run);
    // Node's timers run on a monotonic clock, Date.now() may see them fire a millisecond early.
    assert.ok(second!.start >= first!.start + 298, `agent ${a}: runs ${first!.start} and ${second!.start}`);
  }
});

test('the compiler in TLS mode refuses a client without a certificate of its CA', async (t) => {
  const compiler = await tlsCompiler();
  t.after(() => compiler.close());
  const fleet = AgentFleet.start(
    { ...options(compiler.port, { agents: 1, splayMs: 0, runsPerAgent: 1 }), identities: [{ certname: 'x.test', cert: ca.server.cert, key: ca.server.key }] },
    { clock: systemClock, random: seededRandom(1) },
  );
  await fleet.done;
  assert.equal(fleet.records[0]?.ok, true, 'a certificate of the CA passes');
  const other = await testCa(1);
  t.after(() => other.cleanup());
  const refused = AgentFleet.start({ ...options(compiler.port, { agents: 1, splayMs: 0, runsPerAgent: 1 }), identities: other.identities }, { clock: systemClock, random: seededRandom(1) });
  await refused.done;
  assert.equal(refused.records[0]?.ok, false);
  assert.match(refused.records[0]?.reason ?? '', /^pluginsync: /);
});

test('first runs fall within the splay, later ones an interval apart, none after the duration', async (t) => {
  const compiler = await tlsCompiler();
  t.after(() => compiler.close());
  const clock = new ManualClock(0);
  const fleet = AgentFleet.start(options(compiler.port, { agents: 6, intervalMs: 1000, splayMs: 500, durationMs: 2500 }), { clock, random: seededRandom(4) });
  let finished = false;
  void fleet.done.then(() => (finished = true));
  await pump(clock, () => finished);
  const byAgent = (a: number) => fleet.records.filter((r) => r.agent === a).sort((x, y) => x.run - y.run);
  for (let a = 0; a < 6; a++) {
    const runs = byAgent(a);
    assert.equal(runs.length, 3, `agent ${a}`);
    assert.ok(runs[0]!.start < 500);
    assert.equal(runs[1]!.start, Math.max(runs[0]!.start + 1000, runs[0]!.end));
    assert.ok(runs.every((r) => r.ok && r.start <= 2500 && r.connections === 1 && r.applyMs === undefined));
  }
  assert.ok(new Set(fleet.records.filter((r) => r.run === 1).map((r) => r.start)).size > 1, 'the splay spreads first runs');
  // The agents leave no timer behind; the compiler's idle timers go as it sees the connections close.
  await waitFor('every connection to close', () => clock.pendingTimers() === 0);
});

test('503 with Retry-After is waited out (capped) and retried; without it the run fails', async (t) => {
  let agent0Catalogs = 0;
  const server: Server = createServer({ key: ca.server.key, cert: ca.server.cert, ca: ca.caPem, requestCert: true, rejectUnauthorized: true }, (req, res) => {
    req.resume();
    req.on('end', () => {
      if (req.url?.startsWith('/puppet/v3/catalog/')) {
        if (req.url.includes('agent-0') && ++agent0Catalogs <= 2) return void res.writeHead(503, { 'Retry-After': '2', Connection: 'close' }).end('busy');
        if (req.url.includes('agent-1')) return void res.writeHead(503).end('busy, no hint');
      }
      res.writeHead(200, { 'Content-Type': 'application/json', 'X-Sim-Compiler': 'scripted' }).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  const clock = new ManualClock(0);
  const fleet = AgentFleet.start(
    options((server.address() as AddressInfo).port, { agents: 2, splayMs: 0, runsPerAgent: 1, maxRetryAfterMs: 1500 }),
    { clock, random: seededRandom(2) },
  );
  let finished = false;
  void fleet.done.then(() => (finished = true));
  await pump(clock, () => finished, 50);
  const [a0, a1] = [0, 1].map((a) => fleet.records.find((r) => r.agent === a));
  assert.equal(a0?.ok, true);
  assert.deepEqual([a0?.retryAfterWaits, a0?.retryAfterWaitMs], [2, 3000]);
  assert.equal(a0?.connections, 3, 'a new connection after each Retry-After');
  assert.ok((a0?.catalogTotalMs ?? 0) >= 3000);
  assert.equal(a0?.compiler, 'scripted');
  assert.equal(a1?.ok, false);
  assert.equal(a1?.reason, 'catalog: HTTP 503 without Retry-After');
});

type Seen = { t: number; kind: string; connection: number };

/** A server that answers every request at once, noting when (on the test's clock) and on which connection. */
async function scriptedServer(clock: ManualClock): Promise<{ port: number; seen: Seen[]; connections: () => number; close: () => Promise<void> }> {
  const seen: Seen[] = [];
  const ids = new WeakMap<object, number>();
  let connections = 0;
  const server: Server = createServer({ key: ca.server.key, cert: ca.server.cert, ca: ca.caPem, requestCert: true, rejectUnauthorized: true }, (req, res) => {
    req.resume();
    req.on('end', () => {
      const kind = /^\/puppet\/v3\/([a-z_]+)/.exec(req.url ?? '')?.[1] ?? 'other';
      seen.push({ t: clock.now(), kind: kind === 'file_metadatas' ? 'pluginsync' : kind, connection: ids.get(req.socket) ?? -1 });
      res.writeHead(200, { 'Content-Type': 'application/json', 'X-Sim-Compiler': 'scripted' }).end('{}');
    });
  });
  server.on('secureConnection', (socket) => ids.set(socket, ++connections));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as AddressInfo).port, seen, connections: () => connections, close: () => new Promise<void>((r) => server.close(() => r())) };
}

async function oneRun(over: Partial<AgentFleetOptions>, seed = 5) {
  const clock = new ManualClock(0);
  const server = await scriptedServer(clock);
  try {
    const fleet = AgentFleet.start(options(server.port, { agents: 1, splayMs: 0, runsPerAgent: 1, intervalMs: 60_000, ...over }), { clock, random: seededRandom(seed) });
    let finished = false;
    void fleet.done.then(() => (finished = true));
    await pump(clock, () => finished, 20);
    return { record: fleet.records[0]!, seen: server.seen, connections: server.connections() };
  } finally {
    await server.close();
  }
}

test('the apply comes between catalog and report, its file requests spread through it', async () => {
  const { record, seen } = await oneRun({ apply: { meanMs: 3000, p99Ms: 3000 }, sourcedFiles: 4 });
  assert.equal(record.ok, true, record.reason);
  assert.deepEqual(seen.map((s) => s.kind), ['pluginsync', 'catalog', 'file_metadata', 'file_metadata', 'file_metadata', 'file_metadata', 'report']);
  const catalogAt = seen[1]!.t;
  const reportAt = seen[6]!.t;
  const files = seen.filter((s) => s.kind === 'file_metadata').map((s) => s.t);
  assert.ok(reportAt - catalogAt >= 3000, `report ${reportAt - catalogAt} ms after the catalog`);
  assert.ok(files.every((t) => t >= catalogAt && t < reportAt));
  assert.ok(new Set(files).size > 1, `file requests at ${files.join(', ')}: not all at once`);
  assert.ok((record.applyMs ?? 0) >= 3000, `applyMs ${record.applyMs}`);
  assert.ok(record.end - record.start >= 3000);

  // Without an apply the run is what it always was: 2 or 3 file requests right after the catalog.
  const { record: bare, seen: bareSeen } = await oneRun({});
  assert.equal(bare.applyMs, undefined);
  const bareFiles = bareSeen.filter((s) => s.kind === 'file_metadata');
  assert.ok(bareFiles.length >= 2 && bareFiles.length <= 3);
  assert.ok(bareSeen[bareSeen.length - 1]!.t - bareSeen[1]!.t < 1000);
});

test('facts are resolved between pluginsync and the catalog request; the run records both waits', async () => {
  const { record, seen } = await oneRun({ facts: { meanMs: 2000, p99Ms: 2000 } });
  assert.equal(record.ok, true, record.reason);
  assert.deepEqual(seen.slice(0, 2).map((s) => s.kind), ['pluginsync', 'catalog']);
  assert.ok(seen[1]!.t - seen[0]!.t >= 2000, `catalog ${seen[1]!.t - seen[0]!.t} ms after pluginsync`);
  assert.ok((record.toCatalogMs ?? 0) >= 2000 + (record.catalogMs ?? 0), `to catalog ${record.toCatalogMs} ms`);
  assert.equal(typeof record.pluginsyncMs, 'number');

  const { seen: bare } = await oneRun({});
  assert.ok(bare[1]!.t - bare[0]!.t < 1000, 'without facts the catalog follows pluginsync at once');
  assert.throws(() => AgentFleet.start({ ...options(1, { runsPerAgent: 1 }), facts: { meanMs: -1, p99Ms: 0 } }, { clock: new ManualClock(0), random: seededRandom(1) }), /facts mean must be/);
});

test('an idle gap longer than the keep-alive timeout opens a new connection; shorter ones reuse it', async () => {
  // No sourced file: the whole 6 s apply is one idle gap before the report.
  const long = await oneRun({ apply: { meanMs: 6000, p99Ms: 6000 }, sourcedFiles: 0, keepAliveMs: 4000 });
  assert.equal(long.record.ok, true, long.record.reason);
  assert.deepEqual(long.seen.map((s) => [s.kind, s.connection]), [['pluginsync', 1], ['catalog', 1], ['report', 2]]);
  assert.deepEqual([long.record.connections, long.connections], [2, 2]);

  const kept = await oneRun({ apply: { meanMs: 6000, p99Ms: 6000 }, sourcedFiles: 0, keepAliveMs: 10_000 });
  assert.deepEqual(kept.seen.map((s) => s.connection), [1, 1, 1]);
  assert.deepEqual([kept.record.connections, kept.connections], [1, 1]);
});

test('apply options are checked', () => {
  const o = options(1, { runsPerAgent: 1 });
  const deps = { clock: new ManualClock(0), random: seededRandom(1) };
  assert.throws(() => AgentFleet.start({ ...o, apply: { meanMs: 1000, p99Ms: 500 } }, deps), /apply p99 \(500 ms\) must be at least the mean/);
  assert.throws(() => AgentFleet.start({ ...o, sourcedFiles: 1.5 }, deps), /sourced files must be a whole number/);
});

test('a front door that refuses connections fails runs with the cause; stop ends runs in flight', async (t) => {
  const refused = AgentFleet.start(options(1, { agents: 1, splayMs: 0, runsPerAgent: 1 }), { clock: systemClock, random: seededRandom(1) });
  await refused.done;
  assert.equal(refused.records[0]?.reason, 'pluginsync: ECONNREFUSED');

  const frozen = new ManualClock(0);
  const compiler = await tlsCompiler(frozen);
  t.after(() => compiler.close());
  const fleet = AgentFleet.start(options(compiler.port, { agents: 3, splayMs: 0, durationMs: 60_000 }), { clock: systemClock, random: seededRandom(1) });
  await waitFor('requests to hold the compiler', () => compiler.stats().busy + compiler.stats().queued === 3);
  await fleet.stop();
  assert.equal(fleet.records.length, 0);
  assert.equal(fleet.running, 0);
});

test('Retry-After is read as seconds or an HTTP date', () => {
  const now = Date.UTC(2026, 0, 1);
  assert.equal(retryAfterMs('7', now), 7000);
  assert.equal(retryAfterMs(new Date(now + 5000).toUTCString(), now), 5000);
  assert.equal(retryAfterMs(new Date(now - 5000).toUTCString(), now), 0);
  assert.equal(retryAfterMs('soon', now), undefined);
  assert.equal(retryAfterMs(undefined, now), undefined);
});
