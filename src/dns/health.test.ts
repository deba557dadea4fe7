import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../lib/clock.ts';
import { seededRandom } from '../lib/random.ts';
import { silentLog } from '../observability/log.ts';
import { Pool } from '../pool/pool.ts';
import { advance, memberSpec, poolSpec, recordingLog, ScriptedProbe, settled } from '../pool/testing.ts';
import type { ProbeResult } from '../pool/member.ts';
import { LiveHealth } from './health.ts';
import { compileZones, snapshot, allHosts } from './zone.ts';
import { parsedConfig } from './testing.ts';

// Target health on the injected clock: probed hosts leave the answers within one interval and come
// back after `rise` good probes; pool members follow their pool (drain, health); this instance
// follows its gateway state; and a name whose targets are all down is logged once, not per query.

const interval = 5000;

function setup(o: { selfRunning?: () => boolean } = {}) {
  const clock = new ManualClock();
  const results = new Map<string, ProbeResult>();
  const calls: string[] = [];
  const poolProbe = new ScriptedProbe();
  const pool = new Pool(poolSpec({ members: [memberSpec('c1', { url: 'http://10.0.0.5:8141' }), memberSpec('c2', { url: 'http://10.0.0.6:8141' })], active: { interval, rise: 1, fall: 1 } }), {
    clock, random: seededRandom(1), log: silentLog, probe: poolProbe.probe,
  });
  const config = parsedConfig({
    pools: { compilers: { members: [{ name: 'c1', url: 'http://10.0.0.5:8141' }] } },
    dns: {
      zones: [{
        name: 'example.com', ns: ['ns1'],
        hosts: { ns1: { addresses: ['192.0.2.53'], check: 'none' }, rm1: { addresses: ['192.0.2.1'], check: 'self' }, rm2: { addresses: ['192.0.2.2'] }, rm3: { addresses: ['192.0.2.3'] } },
        srv: [{ service: 'x-puppet', targets: [{ host: 'rm1' }, { host: 'rm2' }, { host: 'rm3' }] }, { service: 'x-puppet', domain: 'compilers', targets: [{ pool: 'compilers' }] }],
      }],
      healthCheck: { interval: '5s', timeout: '2s', rise: 2, fall: 1 },
    },
  });
  const zones = compileZones(config.dns, 8140);
  const health = new LiveHealth(allHosts(zones), config.dns.healthCheck, {
    clock,
    log: silentLog,
    probe: (host) => {
      calls.push(host.name);
      return Promise.resolve(results.get(host.name) ?? { ok: true });
    },
    pools: () => new Map([['compilers', pool]]),
    selfRunning: o.selfRunning ?? (() => true),
  });
  let changes = 0;
  health.onChange(() => changes++);
  const srv = (domain = 'example.com'): string[] =>
    (zones.map((z) => snapshot(z, health))[0]?.owners.get(`_x-puppet._tcp.${domain}`)?.srv ?? []).map((s) => `${s.target}:${s.port}`);
  return { clock, results, calls, pool, poolProbe, health, srv, changes: () => changes };
}

test('a probed host leaves the answers within one interval and comes back after rise good probes', async () => {
  const { clock, results, health, srv, calls } = setup();
  health.start();
  await settled();
  assert.deepEqual(calls.sort(), ['rm2.example.com', 'rm3.example.com'], 'only check: status hosts are probed, each at once');
  assert.deepEqual(srv(), ['rm1.example.com:8140', 'rm2.example.com:8140', 'rm3.example.com:8140']);
  results.set('rm2.example.com', { ok: false, reason: 'connection refused' });
  await advance(clock, interval);
  assert.deepEqual(srv(), ['rm1.example.com:8140', 'rm3.example.com:8140'], 'gone after one interval (fall 1)');
  results.delete('rm2.example.com');
  await advance(clock, interval);
  assert.equal(srv().length, 2, 'one good probe is not enough (rise 2)');
  await advance(clock, interval);
  assert.equal(srv().length, 3);
  health.stop();
});

test('this instance follows its gateway state', () => {
  let running = true;
  const { srv } = setup({ selfRunning: () => running });
  assert.ok(srv().includes('rm1.example.com:8140'));
  running = false;
  assert.ok(!srv().includes('rm1.example.com:8140'));
});

test("pool members follow their pool: a drained or unhealthy member leaves, and the change is signalled", async () => {
  const { clock, pool, poolProbe, health, srv, changes } = setup();
  pool.start();
  health.start();
  await settled();
  assert.deepEqual(srv('compilers.example.com'), ['c1.compilers.example.com:8141', 'c2.compilers.example.com:8141']);
  const before = changes();
  pool.setDraining('c1', true);
  assert.ok(changes() > before, 'a drain is signalled at once');
  assert.deepEqual(srv('compilers.example.com'), ['c2.compilers.example.com:8141']);
  pool.setDraining('c1', false);
  poolProbe.set('c2', { ok: false, reason: 'refused' });
  await advance(clock, interval);
  assert.deepEqual(srv('compilers.example.com'), ['c1.compilers.example.com:8141'], 'unhealthy within one of its pool\'s intervals');
  pool.stop();
  health.stop();
});

test('the service logs a name whose targets are all down once, and again when it recovers', async () => {
  const { startDns } = await import('./service.ts');
  const clock = new ManualClock();
  const { log, records } = recordingLog();
  let running = true;
  const config = parsedConfig({
    dns: { address: '127.0.0.1', port: 0, zones: [{ name: 'example.com', ns: ['ns.example.net.'], hosts: { rm1: { addresses: ['127.0.0.1'], check: 'self' } }, srv: [{ service: 'x-puppet', targets: [{ host: 'rm1' }] }] }] },
  });
  const dns = await startDns(config.dns, { clock, log, probe: () => Promise.resolve({ ok: true }), pools: () => new Map(), selfRunning: () => running, selfPort: 8140 });
  try {
    running = false;
    clock.advance(1000);
    clock.advance(1000);
    const down = records.filter((r) => String(r.msg).startsWith('every target of this name is unhealthy'));
    assert.equal(down.length, 1);
    assert.equal(down[0]?.name, '_x-puppet._tcp.example.com');
    assert.equal(dns.stats().fallbackNames, 1);
    running = true;
    clock.advance(1000);
    assert.equal(records.filter((r) => String(r.msg).startsWith('this name has healthy targets again')).length, 1);
    assert.equal(dns.stats().fallbackNames, 0);
  } finally {
    await dns.close();
  }
  assert.equal(clock.pendingTimers(), 0, 'close cancels the refresh timer');
});
