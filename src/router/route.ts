import { resolveOid } from '../ca/oids.ts';
import type { QueryParams } from '../listener/path.ts';
import type { Peer } from '../listener/peer.ts';
import type { ParsedConfig } from '../config/schema.ts';
import { globMatcher, hashShare, type Matcher } from './glob.ts';

// A route compiled from configuration: every condition given must hold. Conditions on the
// certname or certificate extensions use only the verified peer certificate, so a request
// without one never matches them.

export type RouteConfig = ParsedConfig['routes'][number];
export type Target = { kind: 'pool'; pool: string } | { kind: 'service'; service: 'ca' | 'status' };

export type RouteInput = { method: string; path: string; query: QueryParams; peer: Peer };

export type Route = {
  name: string;
  target: Target;
  responseHeadTimeoutMs: number;
  maxBodyBytes: number;
  maxHeaderBytes: number | undefined;
  matches(input: RouteInput): boolean;
  /** The pool a request of this route goes to: the canary pool for chosen certnames. */
  poolFor(input: RouteInput): string | undefined;
};

export function compileRoute(config: RouteConfig, index: number): Route {
  const m = config.match;
  const tests: ((i: RouteInput) => boolean)[] = [];
  if (m.path !== undefined) {
    const prefix = m.path;
    tests.push((i) => i.path.startsWith(prefix));
  }
  if (m.pathPattern !== undefined) {
    const re = new RegExp(m.pathPattern);
    tests.push((i) => re.test(i.path));
  }
  if (m.methods) {
    const methods = new Set<string>(m.methods);
    tests.push((i) => methods.has(i.method));
  }
  if (m.environments) {
    const env = globMatcher(m.environments);
    tests.push((i) => {
      const e = i.query.get('environment');
      return e !== null && env(e);
    });
  }
  if (m.certnames) {
    const names = globMatcher(m.certnames);
    tests.push((i) => i.peer.kind === 'verified' && names(i.peer.certname));
  }
  if (m.certnamePattern !== undefined) {
    const re = new RegExp(m.certnamePattern);
    tests.push((i) => i.peer.kind === 'verified' && re.test(i.peer.certname));
  }
  if (m.extensions) {
    const wanted = Object.entries(m.extensions).map(([key, values]): [string, Matcher] => [resolveOid(key) ?? key, globMatcher(Array.isArray(values) ? values : [values])]);
    tests.push((i) => {
      const peer = i.peer;
      if (peer.kind !== 'verified') return false;
      return wanted.every(([oid, match]) => peer.cert.extensions.some((e) => e.oid === oid && e.text !== undefined && match(e.text)));
    });
  }

  const target: Target = 'pool' in config.to ? { kind: 'pool', pool: config.to.pool } : { kind: 'service', service: config.to.service };
  const canary = config.canary;
  const canaryNames = canary ? globMatcher(canary.certnames) : undefined;
  const canaryShare = canary ? Math.round(canary.percent * 100) : 0;
  return {
    name: config.name ?? `route${index}`,
    target,
    responseHeadTimeoutMs: config.timeouts.responseHead,
    maxBodyBytes: config.limits.maxBodyBytes,
    maxHeaderBytes: config.limits.maxHeaderBytes,
    matches: (i) => tests.every((t) => t(i)),
    poolFor(i) {
      if (target.kind !== 'pool') return undefined;
      if (canary && i.peer.kind === 'verified' && (canaryNames?.(i.peer.certname) || hashShare(i.peer.certname) < canaryShare)) return canary.pool;
      return target.pool;
    },
  };
}
