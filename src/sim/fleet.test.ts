import { test } from 'node:test';
import assert from 'node:assert/strict';
import { systemClock } from '../lib/clock.ts';
import { seededRandom } from '../lib/random.ts';
import { SimCompiler } from './compiler.ts';
import { killAt, runFleet } from './fleet.ts';
import type { FrontDoorFactory } from './front-door.ts';
import { testCa } from './testing.ts';

// runFleet with a front door other than ringmaster: agents straight to one compiler's own TLS
// (what an L4 passthrough door amounts to), on compilers the caller keeps across two runs.

test('a caller-supplied front door and shared compilers: each run counts only its own work', async (t) => {
  const ca = await testCa(2);
  t.after(() => ca.cleanup());
  const compiler = await SimCompiler.start(
    { name: 'direct-1', slots: 2, compile: { meanMs: 10, p99Ms: 30 }, requestMs: 1, tls: { key: ca.server.key, cert: ca.server.cert, ca: ca.caPem } },
    { clock: systemClock, random: seededRandom(5) },
  );
  t.after(() => compiler.close());
  let stops = 0;
  const direct: FrontDoorFactory = ({ compilers }) => Promise.resolve({
    name: 'direct',
    target: { port: compilers[0]!.port, servername: 'localhost', ca: ca.caPem },
    identities: ca.identities,
    stop: () => {
      stops += 1;
      return Promise.resolve();
    },
  });
  const options = { agents: 4, compilers: 1, slots: 2, compile: { meanMs: 10, p99Ms: 30 }, intervalMs: 400, splayMs: 100, durationMs: 700, drainMs: 3000, frontDoor: direct, sharedCompilers: [compiler],
    apply: { meanMs: 40, p99Ms: 80 }, sourcedFiles: 2 };
  const first = await runFleet(options);
  const second = await runFleet({ ...options, seed: 2 });
  assert.equal(stops, 2);
  for (const r of [first, second]) {
    assert.equal(r.parameters.frontDoor, 'direct');
    assert.equal(r.runs.failed, 0, JSON.stringify(r.runs.failureReasons));
    assert.equal(r.members[0]?.catalogs, r.catalog.count);
    assert.equal(r.members[0]?.requests.catalog, r.catalog.count);
    assert.equal(r.members[0]?.requests.file_metadata, 2 * r.runs.ok);
    assert.equal(r.apply.count, r.runs.ok);
    assert.ok((r.apply.p50Ms ?? 0) >= 20, `apply p50 ${r.apply.p50Ms}`);
    assert.deepEqual([r.parameters.apply, r.parameters.sourcedFiles, r.parameters.keepAliveMs], [{ meanMs: 40, p99Ms: 80 }, 2, 4000]);
    assert.deepEqual(r.connectionsPerRun, { mean: 1, max: 1 });
    assert.ok(r.samples.every((s) => s.doorQueued === 0 && s.util.every((u) => u >= 0 && u <= 1)));
  }
  assert.equal(compiler.stats().catalogs, first.catalog.count + second.catalog.count);
  assert.equal(compiler.state, 'up', 'a shared compiler is left running');

  // A scenario that kills the only compiler: runs fail with the cause, and the run still ends.
  const killed = await runFleet({ ...options, durationMs: 900, scenario: [killAt(300, 'direct-1')] });
  assert.ok(killed.runs.failed > 0);
  assert.ok(Object.keys(killed.runs.failureReasons).every((r) => /ECONNREFUSED|ECONNRESET/.test(r)), JSON.stringify(killed.runs.failureReasons));
  assert.deepEqual(killed.events.map((e) => e.name), ['kill direct-1']);
});
