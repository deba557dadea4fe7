import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AdminMemberView, AdminPoolView } from './api.ts';
import { poolState } from './state-api.ts';

const now = 1_000_000;
const m = (name: string, o: Partial<AdminMemberView> = {}): AdminMemberView => ({
  name, url: `http://10.0.0.1:8140`, priority: 0, weight: 1, maxInFlight: null, inFlight: 0, draining: false, health: 'healthy', activeChecks: true,
  lastProbeError: null, ejectedUntil: null, probation: false, eligible: true, reason: null, compiles: 0, compileSlots: null, usableSlots: null,
  slotsFrom: null, compileMs: null, rampUntil: null, source: 'config', ...o,
});
const pool = (members: AdminMemberView[], o: Partial<AdminPoolView> = {}): AdminPoolView => ({ name: 'compilers', policy: 'least-in-flight', eligible: members.filter((x) => x.eligible).length, queued: 0, oldestWaitMs: 0, members, ...o });

test('ok when every member that should serve can; a drained member is no problem', () => {
  const s = poolState(pool([m('a'), m('b', { draining: true, eligible: false, reason: 'draining' })]), now);
  assert.equal(s.status, 'ok');
  assert.deepEqual(s.problems, []);
});

test('degraded with the reasons in words; down when nothing can serve; empty without members', () => {
  const degraded = poolState(pool([m('a'), m('b', { health: 'unhealthy', eligible: false, reason: 'unhealthy', lastProbeError: 'connection refused' }), m('c', { ejectedUntil: now + 29_500, eligible: false, reason: 'ejected' })], { queued: 3, oldestWaitMs: 2100 }), now);
  assert.equal(degraded.status, 'degraded');
  assert.deepEqual(degraded.problems, ['b: unhealthy (connection refused)', 'c: ejected after failed requests for another 30 s', '3 request(s) queued for a compile slot, the oldest for 2.1 s']);
  const down = poolState(pool([m('a', { inFlight: 4, maxInFlight: 4, eligible: false, reason: 'full' })]), now);
  assert.equal(down.status, 'down');
  assert.deepEqual(down.problems, ['no member can take a request', 'a: full: 4 in flight of 4']);
  assert.equal(poolState(pool([]), now).status, 'empty');
});
