import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../lib/clock.ts';
import { seededRandom } from '../lib/random.ts';
import { silentLog, type Log } from '../observability/log.ts';
import { ActiveHealthChecker } from './health.ts';
import { ineligibleReason, Member } from './member.ts';
import { Pool, type PoolEvent, type PoolSpec } from './pool.ts';
import { advance, down, memberSpec, poolSpec, recordingLog, ScriptedProbe, settled, up } from './testing.ts';

function setup(spec: PoolSpec = poolSpec(), log: Log = silentLog) {
  const clock = new ManualClock(0);
  const probe = new ScriptedProbe();
  const pool = new Pool(spec, { clock, random: seededRandom(1), log, probe: probe.probe });
  const events: PoolEvent[] = [];
  pool.onChange((e) => events.push(e));
  const m = (name: string): Member => {
    const member = pool.member(name);
    assert.ok(member, `no member ${name}`);
    return member;
  };
  return { clock, probe, pool, events, m };
}

describe('active health checks', () => {
  test('a member is eligible while unknown, before its first probe answers', () => {
    const { pool, probe, m, clock } = setup();
    assert.equal(m('a').health, 'unknown');
    assert.equal(ineligibleReason(m('a'), clock.now()), undefined);
    probe.set('a', 'hang');
    pool.start();
    assert.equal(m('a').health, 'unknown');
    assert.notEqual(pool.select({}), undefined);
    pool.stop();
  });

  test('start() probes every member at once with the path and timeout, then every interval', async () => {
    const { pool, probe, clock } = setup();
    pool.start();
    assert.deepEqual(probe.calls, [
      { member: 'a', timeoutMs: 2000, path: '/status/v1/simple' },
      { member: 'b', timeoutMs: 2000, path: '/status/v1/simple' },
    ]);
    await settled();
    await advance(clock, 4900);
    assert.equal(probe.calls.length, 2);
    await advance(clock, 100);
    assert.equal(probe.calls.length, 4);
    await advance(clock, 5000);
    assert.equal(probe.calls.length, 6);
    pool.stop();
  });

  test('the first probe decides at once, either way', async () => {
    const { pool, probe, m, events } = setup();
    probe.set('b', down);
    pool.start();
    await settled();
    assert.equal(m('a').health, 'healthy');
    assert.equal(m('b').health, 'unhealthy');
    assert.equal(m('b').lastProbeError, 'connection refused');
    assert.deepEqual(events, [
      { type: 'health', pool: 'compilers', member: 'a', from: 'unknown', to: 'healthy', reason: undefined },
      { type: 'health', pool: 'compilers', member: 'b', from: 'unknown', to: 'unhealthy', reason: 'connection refused' },
    ]);
    pool.stop();
  });

  test('afterwards it takes `fall` failures and `rise` successes in a row', async () => {
    const { pool, probe, m, clock } = setup(poolSpec({ members: [memberSpec('a')], active: { rise: 2, fall: 3 } }));
    const round = async (script: typeof up) => {
      probe.set('a', script);
      await advance(clock, 5000);
    };
    pool.start();
    await settled();
    assert.equal(m('a').health, 'healthy');
    await round(down);
    await round(down);
    await round(up); // resets the count of failures
    await round(down);
    await round(down);
    assert.equal(m('a').health, 'healthy');
    await round(down);
    assert.equal(m('a').health, 'unhealthy');
    assert.equal(ineligibleReason(m('a'), clock.now()), 'unhealthy');
    await round(up);
    await round(down);
    await round(up);
    assert.equal(m('a').health, 'unhealthy');
    await round(up);
    assert.equal(m('a').health, 'healthy');
    assert.equal(m('a').lastProbeError, undefined);
    pool.stop();
  });

  test('a probe not answered within the timeout (on the clock) fails; its late answer is ignored', async () => {
    const { pool, probe, m, clock } = setup(poolSpec({ members: [memberSpec('a')] }));
    probe.set('a', 'hang');
    pool.start();
    clock.advance(1999);
    await settled();
    assert.equal(m('a').health, 'unknown');
    clock.advance(1);
    assert.equal(m('a').health, 'unhealthy');
    assert.equal(m('a').lastProbeError, 'probe timed out after 2000 ms');
    probe.settle('a', up);
    await settled();
    assert.equal(m('a').health, 'unhealthy');
    pool.stop();
  });

  test('a hanging probe never overlaps the next; each missed round counts as a failure', async () => {
    const { pool, probe, m, clock } = setup(poolSpec({ members: [memberSpec('a')], active: { rise: 1 } }));
    pool.start();
    await settled();
    assert.equal(m('a').health, 'healthy');
    probe.set('a', 'hang');
    await advance(clock, 5000); // second probe starts and hangs
    assert.equal(probe.calls.length, 2);
    await advance(clock, 30_000);
    assert.equal(probe.calls.length, 2, 'no second probe while one is still running');
    assert.equal(m('a').health, 'unhealthy');
    assert.match(m('a').lastProbeError ?? '', /previous probe still running/);
    probe.set('a', up);
    probe.settle('a', up);
    await settled();
    assert.equal(m('a').health, 'unhealthy', 'the late answer itself does not count');
    await advance(clock, 5000);
    assert.equal(probe.calls.length, 3);
    assert.equal(m('a').health, 'healthy');
    pool.stop();
  });

  test('a probe that rejects or throws is a failure with its message', async () => {
    const clock = new ManualClock(0);
    const throwing = new Pool(poolSpec({ members: [memberSpec('t')] }), {
      clock,
      random: seededRandom(1),
      log: silentLog,
      probe: () => {
        throw new Error('bad probe');
      },
    });
    throwing.start();
    await settled();
    assert.equal(throwing.member('t')?.lastProbeError, 'bad probe');
    throwing.stop();

    const probe = new ScriptedProbe();
    probe.set('a', new Error('ECONNRESET'));
    const rejecting = new Pool(poolSpec({ members: [memberSpec('a')] }), { clock, random: seededRandom(1), log: silentLog, probe: probe.probe });
    rejecting.start();
    await settled();
    assert.equal(rejecting.member('a')?.health, 'unhealthy');
    assert.equal(rejecting.member('a')?.lastProbeError, 'ECONNRESET');
    rejecting.stop();
  });

  test('tier fallback follows health: tier 0 all unhealthy → tier 1; back once one recovers', async () => {
    const spec = poolSpec({ members: [memberSpec('a'), memberSpec('b'), memberSpec('c', { priority: 1 })], active: { rise: 2 } });
    const { pool, probe, clock } = setup(spec);
    probe.set('a', down);
    probe.set('b', down);
    pool.start();
    await settled();
    assert.equal(pool.select({})?.name, 'c');
    probe.set('b', up);
    await advance(clock, 5000);
    assert.equal(pool.select({})?.name, 'c', 'one success is not `rise`');
    await advance(clock, 5000);
    assert.equal(pool.select({})?.name, 'b');
    assert.equal(pool.select({})?.name, 'b');
    pool.stop();
  });

  test('with active checks off nothing is probed and health does not decide eligibility', async () => {
    const { pool, probe, m, clock } = setup(poolSpec({ active: { enabled: false } }));
    pool.start();
    await advance(clock, 20_000, 1000);
    assert.equal(probe.calls.length, 0);
    assert.equal(clock.pendingTimers(), 0);
    // Switching them on at run time starts probing; off again forgets the verdict.
    probe.set('a', down);
    pool.update(poolSpec());
    await settled();
    assert.equal(m('a').health, 'unhealthy');
    pool.update(poolSpec({ active: { enabled: false } }));
    assert.equal(m('a').health, 'unknown');
    assert.equal(ineligibleReason(m('a'), clock.now()), undefined);
    assert.equal(clock.pendingTimers(), 0);
    pool.stop();
  });

  test('transitions are logged: info to healthy, warn to unhealthy', async () => {
    const { log, records } = recordingLog();
    const { pool, probe, clock } = setup(poolSpec({ members: [memberSpec('a')], active: { fall: 1 } }), log);
    pool.start();
    await settled();
    probe.set('a', down);
    await advance(clock, 5000);
    pool.stop();
    const transitions = records.filter((r) => 'to' in r).map(({ level, pool: p, member, from, to, reason }) => ({ level, pool: p, member, from, to, reason }));
    assert.deepEqual(transitions, [
      { level: 30, pool: 'compilers', member: 'a', from: 'unknown', to: 'healthy', reason: undefined },
      { level: 40, pool: 'compilers', member: 'a', from: 'healthy', to: 'unhealthy', reason: 'connection refused' },
    ]);
  });
});

describe('stop', () => {
  test('leaves no pending timers and no probe runs or counts afterwards', async () => {
    const { pool, probe, m, clock } = setup(poolSpec({ passive: { coolOff: 60_000 } }));
    probe.set('b', 'hang');
    pool.start();
    await settled();
    pool.recordFailure(m('a'), { kind: 'connect' });
    assert.ok(clock.pendingTimers() > 0);
    pool.stop();
    assert.equal(clock.pendingTimers(), 0);
    probe.settle('b', down);
    await advance(clock, 120_000, 5000);
    assert.equal(probe.calls.length, 2);
    assert.equal(m('b').health, 'unknown');
  });

  test('start() after stop() probes again', async () => {
    const { pool, probe } = setup();
    pool.start();
    pool.start();
    assert.equal(probe.calls.length, 2, 'a second start() is a no-op');
    pool.stop();
    pool.start();
    await settled();
    assert.equal(probe.calls.length, 4);
    pool.stop();
  });
});

describe('ActiveHealthChecker', () => {
  test('remove() stops probing one member and drops its pending result', async () => {
    const clock = new ManualClock(0);
    const probe = new ScriptedProbe();
    const results: string[] = [];
    const checker = new ActiveHealthChecker({ path: '/x', interval: 1000, timeout: 500 }, { clock, probe: probe.probe, onResult: (member, r) => results.push(`${member.name}:${r.ok}`) });
    const a = new Member(memberSpec('a'));
    const b = new Member(memberSpec('b'));
    probe.set('b', 'hang');
    checker.start([a, b]);
    checker.remove(b);
    probe.settle('b', up);
    await settled();
    await advance(clock, 2000);
    assert.deepEqual(results, ['a:true', 'a:true', 'a:true']);
    assert.equal(probe.callsOf('b'), 1);
    checker.stop();
    assert.equal(checker.running, false);
    assert.equal(clock.pendingTimers(), 0);
  });
});
