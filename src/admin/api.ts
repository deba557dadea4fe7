import type { Clock } from '../lib/clock.ts';
import { formatDuration } from '../lib/duration.ts';
import { RingmasterError } from '../lib/errors.ts';
import type { ErrorCode } from '../lib/error-codes.ts';
import { isName, validateAdminMember, validateDrainRequest, type ConfigProblem } from '../config/schema.ts';
import type { Pool } from '../pool/pool.ts';
import type { Member } from '../pool/member.ts';
import type { MemberSnapshot, PoolSnapshot } from '../pool/snapshot.ts';
import type { MemberSource } from './overlay.ts';
import type { RuntimeMembers } from './runtime-members.ts';
import type { ReportStore } from '../reports/store.ts';
import { createReportsApi } from './reports-api.ts';
import { createRuntimeEndpoints, type RuntimeDeps } from './endpoints.ts';

// The admin API's endpoints under /admin/v1, as a function of an authenticated request: the
// pools as the gateway sees them, drain and enable, and members added and removed at run time.
// Answers are JSON; refusals are RingmasterErrors that the server turns into
// `{ "error": { "code", "message" } }`.

export type AdminCall = {
  method: string;
  /** The checked path's segments, e.g. ['admin', 'v1', 'pools']. */
  segments: string[];
  /** The parsed JSON body; undefined when there is none. */
  json(): Promise<unknown>;
  /** Aborted when the client goes away or the server stops. */
  signal: AbortSignal;
  /** The certname or "token" that was admitted. */
  who: string;
  /** The query string's parameters; absent means none. */
  query?: URLSearchParams;
};
export type AdminAnswer = { status: number; body: unknown };
export type AdminApi = (call: AdminCall) => Promise<AdminAnswer>;
export type AdminApiDeps = { pools: () => ReadonlyMap<string, Pool>; members: RuntimeMembers; clock: Clock; reports?: ReportStore | undefined } & RuntimeDeps;

export type AdminMemberView = MemberSnapshot & { source: MemberSource | null };
export type AdminPoolView = Omit<PoolSnapshot, 'members'> & { members: AdminMemberView[] };

export function createAdminApi(deps: AdminApiDeps): AdminApi {
  const poolView = (pool: Pool): AdminPoolView => {
    const snap = pool.snapshot();
    return { ...snap, members: snap.members.map((m) => ({ ...m, source: deps.members.sourceOf(pool.name, m.name) ?? null })) };
  };
  const findPool = (name: string): Pool => {
    const pool = deps.pools().get(name);
    if (!pool) throw new RingmasterError('RM_NOT_FOUND', `no pool named ${name}`);
    return pool;
  };
  /** null when the member was removed meanwhile (a drain with wait can outlast it). */
  const memberView = (poolName: string, member: Member): AdminMemberView | null => {
    const pool = deps.pools().get(poolName);
    return (pool && pool.member(member.name) === member ? poolView(pool).members.find((m) => m.name === member.name) : undefined) ?? null;
  };

  const reportsApi = createReportsApi({ reports: deps.reports, clock: deps.clock });
  const runtime = createRuntimeEndpoints(deps, poolView);
  return async (call) => {
    const [admin, version, collection, poolName, sub, memberName, action, ...extra] = call.segments;
    if (admin === 'admin' && version === 'v1' && (collection === 'reports' || collection === 'nodes')) return reportsApi(call);
    const endpoint = admin === 'admin' && version === 'v1' && collection !== undefined && Object.hasOwn(runtime, collection) ? runtime[collection] : undefined;
    if (endpoint) return endpoint(call);
    if (admin !== 'admin' || version !== 'v1' || collection !== 'pools' || extra.length > 0 || call.segments.includes('')) throw notFound(call);
    if (poolName === undefined) {
      allow(call, ['GET']);
      return { status: 200, body: { pools: [...deps.pools().values()].map(poolView) } };
    }
    checkName('pool', poolName);
    if (sub === undefined) {
      allow(call, ['GET']);
      return { status: 200, body: { pool: poolView(findPool(poolName)) } };
    }
    if (sub !== 'members' || memberName === undefined) throw notFound(call);
    checkName('member', memberName);
    const by = { by: call.who };

    if (action === undefined) {
      allow(call, ['GET', 'PUT', 'DELETE']);
      if (call.method === 'GET') {
        const member = findPool(poolName).member(memberName);
        if (!member) throw new RingmasterError('RM_NOT_FOUND', `pool ${poolName} has no member named ${memberName}`);
        return { status: 200, body: { pool: poolName, member: memberView(poolName, member) } };
      }
      if (call.method === 'PUT') {
        const input = await call.json();
        if (input === undefined) throw new RingmasterError('RM_ADMIN_BAD_REQUEST', 'PUT needs a JSON body such as {"url": "http://10.0.0.7:8141"}');
        const body = valid(validateAdminMember(input));
        const { member, created } = await deps.members.put(poolName, memberName, body, by);
        return { status: created ? 201 : 200, body: { pool: poolName, member: memberView(poolName, member), created } };
      }
      const removed = await deps.members.remove(poolName, memberName, by);
      return { status: 200, body: { pool: poolName, member: memberName, removed: true, inFlight: removed?.inFlight ?? 0 } };
    }

    if (action !== 'drain' && action !== 'enable') throw notFound(call);
    allow(call, ['POST']);
    const request = action === 'drain' ? valid(validateDrainRequest(await call.json())) : { wait: false, timeout: 0 };
    const member = await deps.members.drain(poolName, memberName, action === 'drain', by);
    if (!request.wait) return { status: 200, body: { pool: poolName, member: memberView(poolName, member), idle: member.inFlight === 0 } };
    const outcome = await waitIdle(member, request.timeout, call.signal, deps.clock);
    const body = { pool: poolName, member: memberView(poolName, member), idle: outcome === 'idle' };
    if (outcome === 'idle') return { status: 200, body };
    const code: ErrorCode = outcome === 'timeout' ? 'RM_ADMIN_DRAIN_TIMEOUT' : 'RM_SHUTTING_DOWN';
    const message = outcome === 'timeout'
      ? `member ${memberName} of pool ${poolName} still has ${member.inFlight} request(s) in flight after ${formatDuration(request.timeout)}; it stays draining`
      : 'stopped waiting: the request was cancelled or ringmaster is stopping; the member stays draining';
    return { status: outcome === 'timeout' ? 504 : 503, body: { error: { code, message }, ...body } };
  };
}

/** Resolves once nothing is in flight on the member, the timeout passed, or the call was aborted. */
function waitIdle(member: Member, timeoutMs: number, signal: AbortSignal, clock: Clock): Promise<'idle' | 'timeout' | 'aborted'> {
  if (member.inFlight === 0) return Promise.resolve('idle');
  if (signal.aborted) return Promise.resolve('aborted');
  return new Promise((resolve) => {
    const finish = (outcome: 'idle' | 'timeout' | 'aborted') => {
      timer.cancel();
      signal.removeEventListener('abort', onAbort);
      resolve(outcome);
    };
    const onAbort = () => finish('aborted');
    const timer = clock.setTimeout(() => finish('timeout'), timeoutMs);
    signal.addEventListener('abort', onAbort, { once: true });
    void member.idle().then(() => finish('idle'));
  });
}

function allow(call: AdminCall, methods: string[]): void {
  if (!methods.includes(call.method)) {
    throw new RingmasterError('RM_METHOD_NOT_ALLOWED', `${call.method} is not allowed on /${call.segments.join('/')} (allowed: ${methods.join(', ')})`, { details: { allow: methods.join(', ') } });
  }
}

function checkName(what: string, value: string): void {
  if (!isName(value)) throw new RingmasterError('RM_ADMIN_BAD_REQUEST', `"${value}" is not a valid ${what} name (letters, digits, ".", "-", "_")`);
}

function valid<T>(result: { ok: true; value: T } | { ok: false; problems: ConfigProblem[] }): T {
  if (result.ok) return result.value;
  const problems = result.problems.map((p) => `${p.path}: ${p.message}`).join('; ');
  throw new RingmasterError('RM_ADMIN_BAD_REQUEST', `invalid request body: ${problems}`, { details: { problems: result.problems } });
}

function notFound(call: AdminCall): RingmasterError {
  return new RingmasterError('RM_NOT_FOUND', `no admin endpoint at /${call.segments.join('/')}`);
}
