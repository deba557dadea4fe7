import { RingmasterError } from '../lib/errors.ts';
import type { AdminMemberBody, MemberOverlay } from '../config/schema.ts';
import type { GatewayConfig, PoolConfig } from '../gateway/config.ts';

// Run-time member changes (members added through the admin API, drain and enable) kept apart from
// the configuration file and laid over it, at start and on every reload, so that re-reading the
// file does not undo them. Pure functions: the file's pools and the overlay in, a new overlay out.
//
// Precedence, newest decision first:
// - a member the file defines belongs to the file: a run-time member of the same name is dropped
//   once the file has one, and the admin API refuses to add, replace or remove a file member;
// - a drain or enable of a file member is kept across reloads and restarts until the file's own
//   `drain:` for that member changes (that edit is the newer decision), or the member leaves the file;
// - everything of a pool the file no longer has is dropped.

type Pools = GatewayConfig['pools'];
export type MemberConfig = PoolConfig['members'][number];
export type MemberSource = 'config' | 'runtime';
export type Dropped = { pool: string; member: string; why: string };

export function emptyOverlay(): MemberOverlay {
  return { version: 1, pools: {} };
}

/**
 * The pools to run: the file's, with each pool's run-time members appended and the run-time drain
 * decisions applied. `overlay` is what is left once entries the file has overtaken are dropped;
 * `dropped` says which and why.
 */
export function mergeOverlay(pools: Pools, overlay: MemberOverlay): { pools: Pools; overlay: MemberOverlay; dropped: Dropped[] } {
  const dropped: Dropped[] = [];
  const kept = emptyOverlay();
  const merged: Pools = { ...pools };
  for (const [poolName, entry] of Object.entries(overlay.pools)) {
    const pool = pools[poolName];
    if (!pool) {
      for (const member of [...entry.members.map((m) => m.name), ...Object.keys(entry.drain)]) {
        dropped.push({ pool: poolName, member, why: 'its pool is no longer in the configuration file' });
      }
      continue;
    }
    const inFile = new Map(pool.members.map((m) => [m.name, m]));
    const seen = new Set<string>();
    const members = entry.members.filter((m) => {
      if (inFile.has(m.name)) {
        dropped.push({ pool: poolName, member: m.name, why: "the configuration file now defines a member of this name; the file's entry wins" });
        return false;
      }
      // Only a hand-edited file can hold a name twice; the first entry is the one kept.
      if (seen.has(m.name)) {
        dropped.push({ pool: poolName, member: m.name, why: 'a second run-time entry of the same name' });
        return false;
      }
      seen.add(m.name);
      return true;
    });
    const drain: MemberOverlay['pools'][string]['drain'] = {};
    for (const [name, decision] of Object.entries(entry.drain)) {
      const fileMember = inFile.get(name);
      if (!fileMember) {
        dropped.push({ pool: poolName, member: name, why: `its run-time ${decision.draining ? 'drain' : 'enable'} concerns a member no longer in the configuration file` });
      } else if (fileMember.drain !== decision.config) {
        dropped.push({ pool: poolName, member: name, why: `the configuration file changed its drain setting to ${fileMember.drain}, which replaces the run-time ${decision.draining ? 'drain' : 'enable'}` });
      } else {
        drain[name] = decision;
      }
    }
    if (members.length > 0 || Object.keys(drain).length > 0) kept.pools[poolName] = { members, drain };
    merged[poolName] = {
      ...pool,
      members: [...pool.members.map((m) => {
        const decision = drain[m.name];
        return decision ? { ...m, drain: decision.draining } : m;
      }), ...members],
    };
  }
  return { pools: merged, overlay: kept, dropped };
}

export function sourceOf(pools: Pools, overlay: MemberOverlay, pool: string, member: string): MemberSource | undefined {
  if (pools[pool]?.members.some((m) => m.name === member)) return 'config';
  if (overlay.pools[pool]?.members.some((m) => m.name === member)) return 'runtime';
  return undefined;
}

/** Records a drain (or enable) of a member of the file or of the overlay. */
export function withDrain(pools: Pools, overlay: MemberOverlay, pool: string, member: string, draining: boolean): MemberOverlay {
  const next = structuredClone(overlay);
  const entry = poolEntry(pools, next, pool);
  const fileMember = pools[pool]?.members.find((m) => m.name === member);
  if (fileMember) {
    // Back to what the file says: nothing left to remember.
    if (draining === fileMember.drain) delete entry.drain[member];
    else entry.drain[member] = { draining, config: fileMember.drain };
    return tidy(next, pool);
  }
  const runtime = entry.members.find((m) => m.name === member);
  if (!runtime) throw notFound(pool, member);
  runtime.drain = draining;
  return next;
}

/** Adds a run-time member, or replaces one; `drain` left out keeps a replaced member's drain. */
export function withMember(pools: Pools, overlay: MemberOverlay, pool: string, member: string, body: AdminMemberBody): { overlay: MemberOverlay; created: boolean } {
  const next = structuredClone(overlay);
  const entry = poolEntry(pools, next, pool);
  if (pools[pool]?.members.some((m) => m.name === member)) throw inConfig(pool, member, 'replaced');
  const index = entry.members.findIndex((m) => m.name === member);
  const previous = index === -1 ? undefined : entry.members[index];
  const spec: MemberConfig = { name: member, ...body, drain: body.drain ?? previous?.drain ?? false };
  if (index === -1) entry.members.push(spec);
  else entry.members[index] = spec;
  return { overlay: next, created: index === -1 };
}

export function withoutMember(pools: Pools, overlay: MemberOverlay, pool: string, member: string): MemberOverlay {
  const next = structuredClone(overlay);
  const entry = poolEntry(pools, next, pool);
  if (pools[pool]?.members.some((m) => m.name === member)) throw inConfig(pool, member, 'removed');
  const index = entry.members.findIndex((m) => m.name === member);
  if (index === -1) throw notFound(pool, member);
  entry.members.splice(index, 1);
  return tidy(next, pool);
}

function poolEntry(pools: Pools, overlay: MemberOverlay, pool: string): MemberOverlay['pools'][string] {
  if (!(pool in pools)) throw new RingmasterError('RM_NOT_FOUND', `no pool named ${pool}`);
  overlay.pools[pool] ??= { members: [], drain: {} };
  return overlay.pools[pool];
}

function tidy(overlay: MemberOverlay, pool: string): MemberOverlay {
  const entry = overlay.pools[pool];
  if (entry && entry.members.length === 0 && Object.keys(entry.drain).length === 0) delete overlay.pools[pool];
  return overlay;
}

function notFound(pool: string, member: string): RingmasterError {
  return new RingmasterError('RM_NOT_FOUND', `pool ${pool} has no member named ${member}`);
}

function inConfig(pool: string, member: string, what: string): RingmasterError {
  return new RingmasterError('RM_ADMIN_MEMBER_IN_CONFIG', `member ${member} of pool ${pool} is defined in the configuration file and cannot be ${what} at run time; change the file and run \`ringmaster reload\` (drain and enable work on it)`);
}
