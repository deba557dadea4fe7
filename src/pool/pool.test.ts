import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../lib/clock.ts';
import { seededRandom } from '../lib/random.ts';
import { silentLog } from '../observability/log.ts';
import { ineligibleReason } from './member.ts';
import { Pool, type PoolEvent, type PoolSpec } from './pool.ts';
import { advance, memberSpec, poolSpec, recordingLog, ScriptedProbe, settled } from './testing.ts';

function setup(spec: PoolSpec = poolSpec({ active: { enabled: false } })) {
  const clock = new ManualClock(0);
  const probe = new ScriptedProbe();
  const pool = new Pool(spec, { clock, random: seededRandom(1), log: silentLog, probe: probe.probe });
  const events: PoolEvent[] = [];
  pool.onChange((e) => events.push(e));
  const m = (name: string) => {
    const member = pool.member(name);
    assert.ok(member, `no member ${name}`);
    return member;
  };
  return { clock, probe, pool, events, m };
}

const tiered = () =>
  poolSpec({
    active: { enabled: false },
    members: [memberSpec('a'), memberSpec('b'), memberSpec('c', { priority: 1 }), memberSpec('d', { priority: 2 })],
  });

describe('selection', () => {
  test('uses the lowest tier with an eligible member, and returns to it once one recovers', () => {
    const { pool } = setup(tiered());
    const picks = new Set(Array.from({ length: 6 }, () => pool.select({})?.name));
    assert.deepEqual([...picks].sort(), ['a', 'b']);
    pool.setDraining('a', true);
    pool.setDraining('b', true);
    assert.equal(pool.select({})?.name, 'c');
    pool.setDraining('c', true);
    assert.equal(pool.select({})?.name, 'd');
    pool.setDraining('b', false);
    assert.equal(pool.select({})?.name, 'b');
    assert.equal(pool.select({})?.name, 'b');
  });

  test('exclude skips members already tried, falling back to the next tier', () => {
    const { pool } = setup(tiered());
    assert.equal(pool.select({ exclude: new Set(['a']) })?.name, 'b');
    assert.equal(pool.select({ exclude: new Set(['a', 'b']) })?.name, 'c');
    assert.equal(pool.select({ exclude: new Set(['a', 'b', 'c', 'd']) }), undefined);
  });

  test('returns undefined and hasEligible() is false when nothing is eligible', () => {
    const { pool } = setup(poolSpec({ active: { enabled: false }, members: [memberSpec('a')] }));
    assert.equal(pool.hasEligible(), true);
    pool.setDraining('a', true);
    assert.equal(pool.select({}), undefined);
    assert.equal(pool.hasEligible(), false);
    assert.equal(new Pool(poolSpec({ members: [] }), { clock: new ManualClock(0), random: seededRandom(1), log: silentLog, probe: new ScriptedProbe().probe }).select({}), undefined);
  });

  test('passes the certname to the policy', () => {
    const { pool } = setup(poolSpec({ active: { enabled: false }, policy: 'consistent-hash', members: ['a', 'b', 'c', 'd'].map((n) => memberSpec(n)) }));
    const first = pool.select({ key: 'agent1.example.com' })?.name;
    for (let i = 0; i < 5; i++) assert.equal(pool.select({ key: 'agent1.example.com' })?.name, first);
  });
});

describe('capacity', () => {
  test('a member at maxInFlight is full until a lease is released', () => {
    const { pool, events, m, clock } = setup(poolSpec({ active: { enabled: false }, members: [memberSpec('a', { maxInFlight: 2 })] }));
    const first = pool.acquire(m('a'));
    const second = pool.acquire(m('a'));
    assert.equal(m('a').inFlight, 2);
    assert.equal(ineligibleReason(m('a'), clock.now()), 'full');
    assert.equal(pool.select({}), undefined);
    first.release();
    assert.equal(pool.select({})?.name, 'a');
    assert.deepEqual(events, [{ type: 'capacity', pool: 'compilers', member: 'a' }]);
    second.release();
    assert.equal(events.length, 1, 'only full → not full is announced');
  });

  test('releasing a lease twice releases it once', () => {
    const { pool, m } = setup();
    const one = pool.acquire(m('a'));
    pool.acquire(m('a'));
    one.release();
    one.release();
    assert.equal(m('a').inFlight, 1);
  });

  test('idle() resolves once the last request is released', async () => {
    const { pool, m } = setup();
    const lease = pool.acquire(m('a'));
    let idle = false;
    void m('a').idle().then(() => (idle = true));
    await settled();
    assert.equal(idle, false);
    lease.release();
    await settled();
    assert.equal(idle, true);
  });
});

describe('drain', () => {
  test('a draining member gets no new requests; unknown names return false', () => {
    const { pool, events, m, clock } = setup();
    assert.equal(pool.setDraining('nope', true), false);
    assert.equal(pool.setDraining('a', true), true);
    assert.equal(ineligibleReason(m('a'), clock.now()), 'draining');
    for (let i = 0; i < 4; i++) assert.equal(pool.select({})?.name, 'b');
    assert.equal(pool.setDraining('a', true), true);
    pool.setDraining('a', false);
    assert.deepEqual(
      events.map((e) => (e.type === 'draining' ? `${e.member}:${e.draining}` : e.type)),
      ['a:true', 'a:false'],
    );
  });

  test('a member can start drained from its spec', () => {
    const { pool } = setup(poolSpec({ active: { enabled: false }, members: [memberSpec('a', { drain: true }), memberSpec('b')] }));
    assert.equal(pool.select({})?.name, 'b');
    assert.equal(pool.select({})?.name, 'b');
  });
});

describe('passive health', () => {
  test('ejects after `failures` consecutive failures; a success resets the count', () => {
    const { pool, m, clock, events } = setup(poolSpec({ active: { enabled: false }, passive: { failures: 3 } }));
    pool.start();
    pool.recordFailure(m('a'), { kind: 'connect' });
    pool.recordFailure(m('a'), { kind: 'timeout' });
    pool.recordSuccess(m('a'));
    pool.recordFailure(m('a'), { kind: 'connect' });
    pool.recordFailure(m('a'), { kind: 'status', status: 502 });
    assert.equal(ineligibleReason(m('a'), clock.now()), undefined);
    pool.recordFailure(m('a'), { kind: 'status', status: 504 });
    assert.equal(ineligibleReason(m('a'), clock.now()), 'ejected');
    assert.equal(m('a').ejectedUntil, 30_000);
    assert.deepEqual(events[0], { type: 'ejected', pool: 'compilers', member: 'a', until: 30_000, failure: 'status 504' });
    pool.stop();
  });

  test('after the cool-off the member is tried again; one failure then ejects it at once', () => {
    const { pool, m, clock, events } = setup(poolSpec({ active: { enabled: false }, passive: { failures: 3, coolOff: 10_000 } }));
    pool.start();
    for (let i = 0; i < 3; i++) pool.recordFailure(m('a'), { kind: 'connect' });
    // Failures of requests sent before the ejection do not extend it.
    clock.advance(5000);
    pool.recordFailure(m('a'), { kind: 'connect' });
    assert.equal(m('a').ejectedUntil, 10_000);
    for (let i = 0; i < 4; i++) assert.equal(pool.select({})?.name, 'b');
    clock.advance(5000);
    assert.equal(ineligibleReason(m('a'), clock.now()), undefined);
    assert.equal(pool.snapshot().members[0]?.probation, true);
    assert.ok(events.some((e) => e.type === 'ejection-ended' && e.member === 'a'));
    pool.recordFailure(m('a'), { kind: 'connect' });
    assert.equal(ineligibleReason(m('a'), clock.now()), 'ejected');
    assert.equal(m('a').ejectedUntil, 20_000);
    clock.advance(10_000);
    pool.recordSuccess(m('a'));
    assert.equal(m('a').onProbation(clock.now()), false);
    // Proven again: back to needing `failures` in a row.
    pool.recordFailure(m('a'), { kind: 'connect' });
    assert.equal(ineligibleReason(m('a'), clock.now()), undefined);
    pool.stop();
    assert.equal(clock.pendingTimers(), 0);
  });

  test('an ejection ends early once the probes saw the member go down and come back (a restart)', async () => {
    const spec = poolSpec({ active: { enabled: true, interval: 1000, rise: 1, fall: 1 }, passive: { coolOff: 60_000 } });
    const { pool, m, clock, probe } = setup(spec);
    pool.start();
    await settled();
    pool.recordFailure(m('a'), { kind: 'connect' });
    assert.equal(ineligibleReason(m('a'), clock.now()), 'ejected');
    probe.set('a', { ok: false, reason: 'connection refused' });
    await advance(clock, 1000);
    assert.equal(m('a').health, 'unhealthy');
    probe.set('a', { ok: true });
    await advance(clock, 1000);
    assert.equal(m('a').health, 'healthy');
    assert.equal(ineligibleReason(m('a'), clock.now()), undefined, 'back at 2 s, not after the 60 s cool-off');
    // Probes that never saw it down do not lift an ejection: it waits out its cool-off.
    pool.recordFailure(m('b'), { kind: 'connect' });
    await advance(clock, 5000);
    assert.equal(ineligibleReason(m('b'), clock.now()), 'ejected');
    pool.stop();
  });

  test('statuses not in the list, and any failure with passive checks off, do not eject', () => {
    const { pool, m, clock } = setup();
    for (const status of [500, 503, 404]) pool.recordFailure(m('a'), { kind: 'status', status });
    assert.equal(ineligibleReason(m('a'), clock.now()), undefined);
    pool.recordFailure(m('a'), { kind: 'status', status: 502 });
    assert.equal(ineligibleReason(m('a'), clock.now()), 'ejected');

    const off = setup(poolSpec({ active: { enabled: false }, passive: { enabled: false } }));
    off.pool.recordFailure(off.m('a'), { kind: 'connect' });
    assert.equal(ineligibleReason(off.m('a'), off.clock.now()), undefined);
  });

  test('logs an ejection at warn with the failure', () => {
    const { log, records } = recordingLog();
    const clock = new ManualClock(0);
    const pool = new Pool(poolSpec({ active: { enabled: false } }), { clock, random: seededRandom(1), log, probe: new ScriptedProbe().probe });
    const a = pool.member('a');
    assert.ok(a);
    pool.recordFailure(a, { kind: 'connect' });
    assert.equal(records.length, 1);
    assert.equal(records[0]?.level, 40);
    assert.equal(records[0]?.pool, 'compilers');
    assert.equal(records[0]?.member, 'a');
    assert.equal(records[0]?.failure, 'connect');
  });
});

describe('update', () => {
  test('keeps the state of members with the same name and url, replaces one whose url changed', async () => {
    const { pool, probe, clock, m, events } = setup(poolSpec({ members: [memberSpec('a'), memberSpec('b'), memberSpec('c')] }));
    probe.set('b', { ok: false, reason: 'down' });
    pool.start();
    await settled();
    const oldA = m('a');
    const oldB = m('b');
    const oldC = m('c');
    pool.acquire(oldA);
    pool.setDraining('a', true);
    pool.recordFailure(oldA, { kind: 'connect' });
    assert.equal(oldB.health, 'unhealthy');

    const next = poolSpec({
      policy: 'least-in-flight',
      members: [memberSpec('a', { weight: 3 }), memberSpec('b'), memberSpec('c', { url: 'http://10.0.0.9:8140' }), memberSpec('e')],
    });
    const callsBefore = probe.calls.length;
    const result = pool.update(next);
    assert.deepEqual(result.kept, ['a', 'b']);
    assert.deepEqual(result.added, ['c', 'e']);
    assert.deepEqual(result.removed, [oldC]);
    assert.equal(pool.policy, 'least-in-flight');
    assert.equal(m('a'), oldA);
    assert.equal(oldA.weight, 3);
    assert.equal(oldA.inFlight, 1);
    assert.equal(oldA.draining, true, 'a run-time drain survives a reload that leaves `drain` alone');
    assert.equal(oldA.isEjected(clock.now()), true);
    assert.equal(oldB.health, 'unhealthy');
    assert.notEqual(m('c'), oldC);
    assert.equal(m('c').health, 'unknown');
    assert.equal(m('c').url, 'http://10.0.0.9:8140');
    // New members are probed at once, without waiting for the interval.
    assert.deepEqual(probe.calls.slice(callsBefore).map((c) => c.member), ['c', 'e']);
    assert.deepEqual(events.at(-1), { type: 'updated', pool: 'compilers', added: ['c', 'e'], removed: ['c'], kept: ['a', 'b'] });
    pool.stop();
  });

  test('removed members are no longer probed or selected, and their late results are ignored', async () => {
    const { pool, probe, clock } = setup(poolSpec({ members: [memberSpec('a'), memberSpec('b')] }));
    pool.start();
    await settled();
    const { removed } = pool.update(poolSpec({ members: [memberSpec('a')] }));
    assert.deepEqual(removed.map((r) => r.name), ['b']);
    const [b] = removed;
    assert.ok(b);
    pool.recordFailure(b, { kind: 'connect' });
    assert.equal(b.ejectedUntil, undefined);
    await advance(clock, 60_000);
    assert.equal(probe.callsOf('b'), 1);
    assert.ok(probe.callsOf('a') >= 10);
    for (let i = 0; i < 3; i++) assert.equal(pool.select({})?.name, 'a');
    pool.stop();
  });

  test('a changed `drain` in the spec applies; a changed interval restarts the probes', async () => {
    const { pool, probe, clock, m } = setup(poolSpec());
    pool.start();
    await settled();
    assert.equal(probe.calls.length, 2);
    pool.update(poolSpec({ members: [memberSpec('a', { drain: true }), memberSpec('b')], active: { interval: 1000 } }));
    assert.equal(m('a').draining, true);
    assert.equal(m('a').health, 'healthy', 'health survives a probe restart');
    await settled();
    assert.equal(probe.calls.length, 4, 'restarted probes run at once');
    clock.advance(1000);
    await settled();
    assert.equal(probe.calls.length, 6);
    pool.update(poolSpec({ members: [memberSpec('a', { drain: true }), memberSpec('b')], active: { interval: 1000 } }));
    assert.equal(probe.calls.length, 6, 'an unchanged spec does not restart probes');
    pool.setDraining('a', false);
    pool.update(poolSpec({ members: [memberSpec('a', { drain: true }), memberSpec('b')], active: { interval: 1000 } }));
    assert.equal(m('a').draining, false, 'the same `drain` again does not override the run-time undrain');
    pool.stop();
    assert.equal(clock.pendingTimers(), 0);
  });

  test('turning passive checks off lifts ejections; a spec for another pool is refused', () => {
    const { pool, m, clock } = setup();
    pool.recordFailure(m('a'), { kind: 'connect' });
    pool.update(poolSpec({ active: { enabled: false }, passive: { enabled: false } }));
    assert.equal(ineligibleReason(m('a'), clock.now()), undefined);
    assert.throws(() => pool.update({ ...poolSpec(), name: 'other' }), /update with a spec for pool "other"/);
  });
});

describe('snapshot and observers', () => {
  test('snapshot is plain JSON with every field', () => {
    const { pool, m } = setup(poolSpec({ active: { enabled: false }, members: [memberSpec('a', { maxInFlight: 1, weight: 2 }), memberSpec('b', { priority: 1 })] }));
    pool.acquire(m('a'));
    const snap = pool.snapshot();
    assert.deepEqual(JSON.parse(JSON.stringify(snap)), snap);
    assert.equal(snap.eligible, 1);
    assert.deepEqual(snap.members[0], {
      name: 'a', url: 'http://a.example.com:8140', priority: 0, weight: 2, maxInFlight: 1, inFlight: 1, draining: false,
      health: 'unknown', activeChecks: false, lastProbeError: null, ejectedUntil: null, probation: false, eligible: false, reason: 'full',
      compiles: 0, compileSlots: null, usableSlots: null, slotsFrom: null, compileMs: null, rampUntil: null,
    });
    assert.equal(snap.queued, 0);
    assert.equal(snap.oldestWaitMs, 0);
    assert.equal(snap.members[1]?.reason, null);
  });

  test('a throwing listener does not stop the others; unsubscribe works', () => {
    const { pool } = setup();
    const seen: string[] = [];
    pool.onChange(() => {
      throw new Error('boom');
    });
    const off = pool.onChange((e) => seen.push(e.type));
    pool.setDraining('a', true);
    off();
    pool.setDraining('a', false);
    assert.deepEqual(seen, ['draining']);
  });
});
