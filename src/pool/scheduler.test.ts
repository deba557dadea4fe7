import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../lib/clock.ts';
import { RingmasterError } from '../lib/errors.ts';
import { seededRandom } from '../lib/random.ts';
import { silentLog } from '../observability/log.ts';
import { Pool, type CompileGrant, type PoolSpec } from './pool.ts';
import { advance, memberSpec, poolSpec, ScriptedProbe, settled } from './testing.ts';

// The compile scheduler: slots per member by ringmaster's own count, a FIFO queue with
// deadlines, slow start, overload answers, drain. All on the injected clock.

function setup(spec: PoolSpec) {
  const clock = new ManualClock(0);
  const probe = new ScriptedProbe();
  const pool = new Pool(spec, { clock, random: seededRandom(7), log: silentLog, probe: probe.probe });
  pool.start();
  return { clock, probe, pool };
}

const slotted = (o: { slots?: number; members?: string[]; capacity?: Partial<PoolSpec['capacity']>; policy?: PoolSpec['policy'] } = {}) =>
  poolSpec({
    active: { enabled: false },
    policy: o.policy ?? 'least-time',
    members: (o.members ?? ['a', 'b']).map((n) => memberSpec(n)),
    capacity: { compileSlots: o.slots ?? 2, slowStart: 0, ...o.capacity },
  });

/** Starts `n` compiles and collects their grants in the order they are granted. */
function request(pool: Pool, n: number, granted: { id: number; grant: CompileGrant }[], failed: { id: number; err: Error }[] = [], from = 0): void {
  for (let i = 0; i < n; i++) {
    const id = from + i;
    pool.acquireCompile({ key: `node${id}` }).then(
      (grant) => {
        assert.ok(grant, 'a pool with members grants or queues');
        granted.push({ id, grant });
      },
      (err: Error) => failed.push({ id, err }),
    );
  }
}

const running = (pool: Pool) => Object.fromEntries(pool.members().map((m) => [m.name, m.compiles]));

describe('compile scheduler', () => {
  test('compileNow takes a free slot at once, and none while every slot is busy or a compile waits', async () => {
    const { pool } = setup(slotted({ slots: 1 }));
    const first = pool.compileNow({ key: 'node0', exclude: new Set(['b']) });
    const second = pool.compileNow({ key: 'node1', exclude: new Set(['a']) });
    assert.equal(first?.member.name, 'a');
    assert.equal(second?.member.name, 'b');
    assert.equal(pool.compileNow({ key: 'node2' }), undefined, 'every slot is busy');
    // A retry that may not go back to a waits for b.
    const granted: { id: number; grant: CompileGrant }[] = [];
    pool.acquireCompile({ key: 'node3', exclude: new Set(['a']) }).then((grant) => granted.push({ id: 3, grant: grant! }), () => undefined);
    await settled();
    first.lease.release({ compileMs: 1000 });
    await settled();
    assert.equal(pool.queued, 1, "a's slot is free, and the compile in line waits for b");
    assert.deepEqual(running(pool), { a: 0, b: 1 });
    assert.equal(pool.compileNow({ key: 'node4' }), undefined, 'a newcomer does not jump the line');
    second.lease.release({ compileMs: 1000 });
    await settled();
    assert.deepEqual(granted.map((g) => [g.id, g.grant.member.name]), [[3, 'b']]);
    assert.equal(pool.compileNow({ key: 'node5' })?.member.name, 'a', 'with the line empty, the free slot is taken at once');
  });

  test('capacity.reserve keeps JRubies free of compiles for other requests, but never the last compile slot', async () => {
    const { pool } = setup(slotted({ slots: 4, capacity: { reserve: 1 } }));
    const granted: { id: number; grant: CompileGrant }[] = [];
    request(pool, 8, granted);
    await settled();
    assert.deepEqual(running(pool), { a: 3, b: 3 }, 'three of four JRubies compile on each member');
    assert.equal(pool.queued, 2);
    // A request that is not a compile still finds a member: it is not held back by the reserve.
    assert.ok(pool.select({}));
    const tight = setup(slotted({ slots: 2, capacity: { reserve: 5 } }));
    const few: { id: number; grant: CompileGrant }[] = [];
    request(tight.pool, 3, few);
    await settled();
    assert.deepEqual(running(tight.pool), { a: 1, b: 1 }, 'a reserve as large as the JRubies still leaves one compile slot');
  });

  test('never sends a member more compiles than its slots; the rest wait and are served first come first served', async () => {
    const { pool } = setup(slotted({ slots: 2 }));
    const granted: { id: number; grant: CompileGrant }[] = [];
    request(pool, 7, granted);
    await settled();
    assert.deepEqual(running(pool), { a: 2, b: 2 });
    assert.equal(granted.length, 4);
    assert.equal(pool.queued, 3);
    // Release in an arbitrary order: each freed slot goes to the oldest waiter.
    const order: number[] = [];
    for (const g of [granted[2]!, granted[0]!, granted[3]!]) {
      const before: number = granted.length;
      g.grant.lease.release({ compileMs: 1000 });
      await settled();
      assert.equal(granted.length, before + 1);
      order.push(granted.at(-1)!.id);
      for (const m of pool.members()) assert.ok(m.compiles <= 2, `${m.name} runs ${m.compiles} compiles`);
    }
    assert.deepEqual(order, [4, 5, 6]);
    assert.equal(pool.queued, 0);
  });

  test('a compile that waits past queueTimeout gets 503 RM_QUEUE_TIMEOUT with a Retry-After in the configured range', async () => {
    const { pool, clock } = setup(slotted({ slots: 1, members: ['a'], capacity: { queueTimeout: 30_000, retryAfter: { min: 20, max: 40 } } }));
    const granted: { id: number; grant: CompileGrant }[] = [];
    const failed: { id: number; err: Error }[] = [];
    request(pool, 4, granted, failed);
    await settled();
    clock.advance(29_999);
    await settled();
    assert.equal(failed.length, 0);
    clock.advance(1);
    await settled();
    assert.equal(failed.length, 3);
    for (const f of failed) {
      assert.ok(f.err instanceof RingmasterError && f.err.code === 'RM_QUEUE_TIMEOUT', String(f.err));
      const retryAfter = f.err.details?.retryAfter as number;
      assert.ok(retryAfter >= 20 && retryAfter <= 40, `retryAfter ${retryAfter}`);
    }
    assert.equal(pool.queued, 0);
    // A slot freed after the deadline goes to nobody that already gave up.
    granted[0]!.grant.lease.release();
    await settled();
    assert.equal(granted.length, 1);
    assert.equal(pool.member('a')!.compiles, 0);
  });

  test('a full queue answers 503 RM_QUEUE_FULL at once; Retry-After values are spread, not one number', async () => {
    const { pool } = setup(slotted({ slots: 1, members: ['a'], capacity: { maxQueue: 2, retryAfter: { min: 10, max: 300 } } }));
    const granted: { id: number; grant: CompileGrant }[] = [];
    const failed: { id: number; err: Error }[] = [];
    request(pool, 40, granted, failed);
    await settled();
    assert.equal(granted.length, 1);
    assert.equal(pool.queued, 2);
    assert.equal(failed.length, 37);
    const values = failed.map((f) => {
      assert.ok(f.err instanceof RingmasterError && f.err.code === 'RM_QUEUE_FULL');
      return f.err.details?.retryAfter as number;
    });
    assert.ok(values.every((v) => v >= 10 && v <= 300));
    assert.ok(new Set(values).size > 20, `only ${new Set(values).size} distinct Retry-After values`);
  });

  test('other requests do not wait behind compiles: select still finds a member whose slots are all busy', async () => {
    const { pool } = setup(slotted({ slots: 1, members: ['a'] }));
    request(pool, 3, []);
    await settled();
    assert.equal(pool.queued, 2);
    assert.equal(pool.select({})?.name, 'a');
  });

  test('slow start: a member back from unhealthy takes one compile, then ramps to all its slots over slowStart while a warm member is there, and the queue is served as slots open', async () => {
    const spec = poolSpec({ active: { enabled: true, interval: 1000, rise: 1, fall: 1 }, policy: 'least-time', members: [memberSpec('a'), memberSpec('b', { compileSlots: 1 })], capacity: { compileSlots: 4, slowStart: 40_000 } });
    const { pool, clock, probe } = setup(spec);
    await settled();
    // b is warm and busy with a long compile the whole time, so the queue can only use a.
    const onB = await pool.acquireCompile({ exclude: new Set(['a']) });
    assert.equal(onB?.member.name, 'b');
    probe.set('a', { ok: false, reason: 'connection refused' });
    await advance(clock, 1000);
    assert.equal(pool.member('a')!.health, 'unhealthy');
    probe.set('a', { ok: true });
    await advance(clock, 1000);
    assert.equal(pool.member('a')!.health, 'healthy');
    const granted: { id: number; grant: CompileGrant }[] = [];
    request(pool, 5, granted);
    await settled();
    assert.equal(granted.length, 1, 'one compile right after coming back, to measure it');
    await advance(clock, 10_000, 1000);
    assert.equal(granted.length, 1, 'no second slot before the first compile time is known');
    // Its first compile was slow (cold): it is not warm yet, and ramps by time from here.
    granted[0]!.grant.lease.release({ compileMs: 9000 });
    await settled();
    assert.equal(granted.length, 2, 'a quarter of the way: floor(4 × 0.25) = 1 slot');
    await advance(clock, 10_000, 1000);
    assert.equal(granted.length, 3, 'half way: 2 slots');
    await advance(clock, 10_000, 1000);
    assert.equal(granted.length, 4);
    await advance(clock, 10_000, 1000);
    assert.equal(granted.length, 5);
    assert.equal(pool.member('a')!.compiles, 4);
    assert.equal(pool.snapshot().members[0]!.usableSlots, 4);
  });

  test('slow start ends early once the member compiles as fast as the warm members', async () => {
    const spec = slotted({ slots: 4, members: ['a'], capacity: { slowStart: 60_000 } });
    const { pool, clock } = setup(spec);
    (await pool.acquireCompile({}))!.lease.release({ compileMs: 1000 });
    pool.update({ ...spec, members: [memberSpec('a'), memberSpec('b')] });
    const grant = await pool.acquireCompile({ exclude: new Set(['a']) });
    assert.equal(grant?.member.name, 'b');
    assert.equal(pool.snapshot().members[1]!.usableSlots, 1);
    clock.advance(1100);
    grant.lease.release({ compileMs: 1100 });
    assert.equal(pool.member('b')!.readySince, undefined, 'within 25% of the warm average: warm');
    assert.equal(pool.snapshot().members[1]!.usableSlots, 4);
  });

  test('with no warm member to prefer, a member back from a restart gets all its slots at once', async () => {
    const spec = poolSpec({ active: { enabled: true, interval: 1000, rise: 1, fall: 1 }, policy: 'least-time', members: [memberSpec('a')], capacity: { compileSlots: 4, slowStart: 40_000 } });
    const { pool, clock, probe } = setup(spec);
    await settled();
    probe.set('a', { ok: false, reason: 'connection refused' });
    await advance(clock, 1000);
    probe.set('a', { ok: true });
    await advance(clock, 1000);
    assert.equal(pool.member('a')!.health, 'healthy');
    const granted: { id: number; grant: CompileGrant }[] = [];
    request(pool, 4, granted);
    await settled();
    assert.equal(granted.length, 4, 'holding slots back would only make compiles wait');
  });

  test('a member added to a running pool ramps up; the ones it joins keep their full share', async () => {
    const spec = slotted({ slots: 4, members: ['a'], capacity: { slowStart: 60_000 } });
    const { pool, clock } = setup(spec);
    (await pool.acquireCompile({}))!.lease.release({ compileMs: 1000 });
    pool.update({ ...spec, members: [memberSpec('a'), memberSpec('b')] });
    const snap = pool.snapshot();
    assert.deepEqual(snap.members.map((m) => [m.name, m.usableSlots]), [['a', 4], ['b', 1]]);
    const grant = await pool.acquireCompile({ exclude: new Set(['a']) });
    clock.advance(30_000);
    grant!.lease.release({ compileMs: 3000 });
    assert.equal(pool.snapshot().members[1]!.usableSlots, 2);
  });

  test('the JRuby count a member reports sets its slots, unless the member sets its own', async () => {
    const spec = poolSpec({ active: { enabled: true }, policy: 'least-time', members: [memberSpec('a'), memberSpec('b', { compileSlots: 1 })], capacity: { slowStart: 0 } });
    const { pool, probe } = setup(spec);
    probe.set('a', { ok: true, jrubies: 3 });
    probe.set('b', { ok: true, jrubies: 8 });
    pool.stop();
    pool.start();
    await settled();
    const members = Object.fromEntries(pool.snapshot().members.map((m) => [m.name, [m.compileSlots, m.slotsFrom]]));
    assert.deepEqual(members, { a: [3, 'reported'], b: [1, 'member'] });
    request(pool, 6, []);
    await settled();
    assert.deepEqual(running(pool), { a: 3, b: 1 });
    assert.equal(pool.queued, 2);
  });

  test('draining a member sends no new compile to it, lets its running compiles finish, and idle() resolves once they did', async () => {
    const { pool } = setup(slotted({ slots: 2 }));
    const granted: { id: number; grant: CompileGrant }[] = [];
    request(pool, 4, granted);
    await settled();
    pool.setDraining('a', true);
    const onA = granted.filter((g) => g.grant.member.name === 'a');
    assert.equal(onA.length, 2);
    let idle = false;
    void pool.member('a')!.idle().then(() => (idle = true));
    request(pool, 2, granted, [], 100);
    await settled();
    // The new ones wait for b (a has free slots only after its compiles end, and it is draining).
    onA[0]!.grant.lease.release();
    await settled();
    assert.equal(pool.member('a')!.compiles, 1, 'a freed slot on a draining member is not reused');
    assert.equal(pool.queued, 2);
    assert.equal(idle, false, 'still one compile running on a');
    onA[1]!.grant.lease.release();
    await settled();
    assert.equal(idle, true);
    granted.find((g) => g.grant.member.name === 'b')!.grant.lease.release();
    await settled();
    assert.equal(granted.at(-1)!.grant.member.name, 'b');
  });

  test('compiles that wait when every member goes away are answered 503 RM_POOL_UNAVAILABLE, not left to time out', async () => {
    const { pool } = setup(slotted({ slots: 1, members: ['a'] }));
    const failed: { id: number; err: Error }[] = [];
    request(pool, 3, [], failed);
    await settled();
    pool.setDraining('a', true);
    await settled();
    assert.deepEqual(failed.map((f) => (f.err as RingmasterError).code), ['RM_POOL_UNAVAILABLE', 'RM_POOL_UNAVAILABLE']);
  });

  test('an agent that goes away while its compile waits leaves the queue', async () => {
    const { pool } = setup(slotted({ slots: 1, members: ['a'] }));
    const first = await pool.acquireCompile({});
    const gone = new AbortController();
    const waiting = pool.acquireCompile({ signal: gone.signal });
    assert.equal(pool.queued, 1);
    gone.abort();
    await assert.rejects(waiting, /went away/);
    assert.equal(pool.queued, 0);
    first!.lease.release();
    assert.equal(pool.member('a')!.compiles, 0);
  });

  test('least-time gives a compiler twice as fast about twice the compiles', async () => {
    const spec = slotted({ slots: 4, members: ['fast', 'slow'] });
    const { pool, clock } = setup(spec);
    const speed: Record<string, number> = { fast: 1000, slow: 2000 };
    const done: Record<string, number> = { fast: 0, slow: 0 };
    // 12 agents in closed loops for 200 s of simulated time (more than the 8 slots, as at full load); each compile ends after its member's time.
    const loop = async (): Promise<void> => {
      while (clock.now() < 200_000) {
        const grant = await pool.acquireCompile({});
        assert.ok(grant);
        const ms = speed[grant.member.name]!;
        await new Promise<void>((resolve) => clock.setTimeout(resolve, ms));
        done[grant.member.name]!++;
        grant.lease.release({ compileMs: ms });
      }
    };
    const loops = Array.from({ length: 12 }, () => loop());
    await advance(clock, 210_000, 250);
    await Promise.all(loops);
    const ratio = done.fast! / done.slow!;
    assert.ok(ratio > 1.6 && ratio < 2.6, `fast ${done.fast} slow ${done.slow}`);
  });
});

describe('finish first (least-time)', () => {
  /** fast: 1 s compiles, slow: 3 s, 2 slots each; both slots of fast busy since `now`. */
  async function busyFast() {
    const { pool, clock } = setup(slotted({ slots: 2, members: ['fast', 'slow'] }));
    // Teach the pool their speeds.
    for (const [name, ms] of [['fast', 1000], ['slow', 3000]] as const) {
      const g = await pool.acquireCompile({ exclude: new Set([name === 'fast' ? 'slow' : 'fast']) });
      g!.lease.release({ compileMs: ms });
    }
    const onFast = [await pool.acquireCompile({}), await pool.acquireCompile({})];
    assert.deepEqual(onFast.map((g) => g!.member.name), ['fast', 'fast']);
    return { pool, clock, onFast: onFast.map((g) => g!) };
  }

  test('a compile waits for a faster member that frees up soon rather than take a slow member\'s free slot', async () => {
    const { pool, clock, onFast } = await busyFast();
    clock.advance(600);
    const granted: { id: number; grant: CompileGrant }[] = [];
    request(pool, 1, granted);
    await settled();
    assert.equal(granted.length, 0, 'fast frees in ~0.4 s and compiles in 1 s: 1.4 s beats 3 s on slow');
    assert.equal(pool.member('slow')!.compiles, 0);
    onFast[0]!.lease.release({ compileMs: 1000 });
    await settled();
    assert.equal(granted[0]!.grant.member.name, 'fast');
  });

  test('when the line is long, the compiles further back take the slow member\'s free slots', async () => {
    const { pool } = await busyFast();
    const granted: { id: number; grant: CompileGrant }[] = [];
    request(pool, 6, granted);
    await settled();
    // In line: 1st and 2nd finish in ~2 s on fast, 3rd and 4th in ~3 s; the slow member's two
    // slots finish in 3 s, as soon as waiting, so two go there now and the rest wait for fast.
    assert.equal(pool.member('slow')!.compiles, 2);
    assert.equal(pool.queued, 4);
  });

  test('a waiting compile goes to the slow member after all when the fast ones run long', async () => {
    const { pool, clock } = await busyFast();
    const granted: { id: number; grant: CompileGrant }[] = [];
    request(pool, 1, granted);
    await settled();
    assert.equal(granted.length, 0);
    // The fast compiles do not end: past their average they are expected to go on for half
    // their age, so by ~4 s waiting (2 s + 1 s) is worse than 3 s on the slow member.
    await advance(clock, 8000, 100);
    assert.equal(granted.length, 1);
    assert.equal(granted[0]!.grant.member.name, 'slow');
  });

  test('requests other than compiles go to a member with a free JRuby when there is one', async () => {
    const { pool } = await busyFast();
    for (let i = 0; i < 5; i++) {
      const m = pool.select({});
      assert.equal(m?.name, 'slow');
      pool.acquire(m);
    }
  });
});
