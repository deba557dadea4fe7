import type { ParsedConfig } from '../config/schema.ts';
import { absoluteName, inZone, isAddress, namesUpTo, srvOwner, zoneName } from './names.ts';
import type { TargetHealth } from './health.ts';
import { rcodes, rrClass, rrType, type Question, type Rcode, type ResourceRecord } from './wire.ts';

// The zones as configured (`compileZones`), their records as health has them now (`snapshot`),
// and the answer to one question (`answer`). A snapshot is rebuilt when health changes, so a
// query only looks things up; what changes per query is the rotation of address answers.

export type DnsConfig = ParsedConfig['dns'];
type ZoneConfig = DnsConfig['zones'][number];

export type HostCheck = 'status' | 'self' | 'none';
export type HostSpec = { name: string; addresses: string[]; port: number; check: HostCheck };

type SrvTargetSpec =
  | { kind: 'host'; host: string; priority: number; weight: number; port: number | undefined }
  | { kind: 'pool'; pool: string; priority: number; weight: number | undefined; port: number | undefined };

export type CompiledZone = {
  apex: string;
  ttl: number;
  soa: Extract<ResourceRecord, { type: 'SOA' }>;
  ns: string[];
  hosts: Map<string, HostSpec>;
  names: Map<string, { hosts: string[]; pools: string[] }>;
  srv: Map<string, SrvTargetSpec[]>;
};

const seconds = (ms: number): number => Math.floor(ms / 1000);

/** 32-bit FNV-1a: a serial that instances sharing one configuration agree on. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h === 0 ? 1 : h;
}

/** `selfPort`: the port of ringmaster's first listener, for `check: self` hosts without one. */
export function compileZones(dns: DnsConfig, selfPort?: number): CompiledZone[] {
  return dns.zones.map((z: ZoneConfig) => {
    const apex = zoneName(z.name);
    const abs = (n: string): string => absoluteName(n, apex);
    const hosts = new Map<string, HostSpec>();
    for (const [key, h] of Object.entries(z.hosts)) {
      hosts.set(abs(key), { name: abs(key), addresses: h.addresses, check: h.check, port: h.port ?? (h.check === 'self' ? (selfPort ?? 8140) : 8140) });
    }
    const ns = z.ns.map(abs);
    const ttl = seconds(z.ttl);
    return {
      apex,
      ttl,
      ns,
      hosts,
      soa: {
        name: apex, ttl, type: 'SOA', mname: abs(z.soa.mname ?? z.ns[0] ?? 'ns'), rname: abs(z.soa.rname), serial: z.soa.serial ?? fnv1a(JSON.stringify(z)),
        refresh: seconds(z.soa.refresh), retry: seconds(z.soa.retry), expire: seconds(z.soa.expire), minimum: seconds(z.soa.minimum),
      },
      names: new Map(Object.entries(z.names).map(([k, v]) => [abs(k), { hosts: v.hosts.map(abs), pools: v.pools }])),
      srv: new Map(
        z.srv.map((s) => [
          srvOwner(s.service, abs(s.domain)),
          s.targets.map((t): SrvTargetSpec => ('host' in t ? { kind: 'host', host: abs(t.host), priority: t.priority, weight: t.weight, port: t.port } : { kind: 'pool', pool: t.pool, priority: t.priority, weight: t.weight, port: t.port })),
        ]),
      ),
    };
  });
}

/** Every host of every zone once (a host named in two zones is probed once). */
export function allHosts(zones: readonly CompiledZone[]): HostSpec[] {
  const out = new Map<string, HostSpec>();
  for (const z of zones) for (const h of z.hosts.values()) if (!out.has(h.name)) out.set(h.name, h);
  return [...out.values()];
}

type Srv = { priority: number; weight: number; port: number; target: string };
type Owner = { a: string[]; aaaa: string[]; srv: Srv[] };
/** A name whose healthy targets are none, so it is answered with all of them. */
export type Fallback = { name: string; type: 'SRV' | 'A/AAAA'; targets: number };

export type ZoneSnapshot = {
  apex: string;
  ttl: number;
  soa: Extract<ResourceRecord, { type: 'SOA' }>;
  ns: string[];
  owners: Map<string, Owner>;
  /** Names with records and the names above them up to the zone (empty non-terminals exist). */
  exists: Set<string>;
  fallbacks: Fallback[];
  fallbackNames: Set<string>;
};

const owner = (owners: Map<string, Owner>, name: string): Owner => {
  let o = owners.get(name);
  if (!o) owners.set(name, (o = { a: [], aaaa: [], srv: [] }));
  return o;
};

function addAddresses(o: Owner, addresses: readonly string[]): void {
  for (const a of addresses) {
    const list = a.includes(':') ? o.aaaa : o.a;
    if (!list.includes(a)) list.push(a);
  }
}

/** Healthy ones, or all of them when none is (an empty answer is worse than a slow one). */
function healthyOrAll<T extends { healthy: boolean }>(items: T[]): { items: T[]; fallback: boolean } {
  const healthy = items.filter((i) => i.healthy);
  return healthy.length > 0 || items.length === 0 ? { items: healthy, fallback: false } : { items, fallback: true };
}

/** The zone's records as health has them now. */
export function snapshot(z: CompiledZone, health: TargetHealth): ZoneSnapshot {
  const owners = new Map<string, Owner>();
  const fallbacks: Fallback[] = [];
  for (const h of z.hosts.values()) if (inZone(h.name, z.apex)) addAddresses(owner(owners, h.name), h.addresses);
  // A pool member named by an IP address gets a name in the zone, so SRV can point at it.
  const members = (pool: string) =>
    health.poolMembers(pool).map((m) => {
      const target = isAddress(m.host) ? `${m.member.toLowerCase()}.${pool.toLowerCase()}.${z.apex}` : m.host;
      if (isAddress(m.host)) addAddresses(owner(owners, target), [m.host]);
      return { ...m, target };
    });

  for (const [name, spec] of z.names) {
    const targets = [
      ...spec.hosts.map((h) => ({ addresses: z.hosts.get(h)?.addresses ?? [], healthy: health.host(h) })),
      ...spec.pools.flatMap((p) => members(p).map((m) => ({ addresses: isAddress(m.host) ? [m.host] : [], healthy: m.healthy }))),
    ];
    const chosen = healthyOrAll(targets);
    if (chosen.fallback) fallbacks.push({ name, type: 'A/AAAA', targets: targets.length });
    addAddresses(owner(owners, name), chosen.items.flatMap((t) => t.addresses));
  }
  for (const [name, specs] of z.srv) {
    const records = specs.flatMap((t) => {
      if (t.kind === 'host') {
        const h = z.hosts.get(t.host);
        return [{ priority: t.priority, weight: t.weight, port: t.port ?? h?.port ?? 8140, target: t.host, healthy: health.host(t.host) }];
      }
      return members(t.pool).map((m) => ({ priority: Math.min(65535, t.priority + m.priority), weight: t.weight ?? m.weight, port: t.port ?? m.port, target: m.target, healthy: m.healthy }));
    });
    const chosen = healthyOrAll(records);
    if (chosen.fallback) fallbacks.push({ name, type: 'SRV', targets: records.length });
    owner(owners, name).srv = chosen.items.map(({ priority, weight, port, target }) => ({ priority, weight, port, target })).sort((a, b) => a.priority - b.priority);
  }
  const exists = new Set<string>([z.apex]);
  for (const name of owners.keys()) for (const n of namesUpTo(name, z.apex)) exists.add(n);
  return { apex: z.apex, ttl: z.ttl, soa: z.soa, ns: z.ns, owners, exists, fallbacks, fallbackNames: new Set(fallbacks.map((f) => f.name)) };
}

export type Answer = {
  rcode: Rcode;
  aa: boolean;
  answers: ResourceRecord[];
  authorities: ResourceRecord[];
  additionals: ResourceRecord[];
};

const refused: Answer = { rcode: rcodes.REFUSED, aa: false, answers: [], authorities: [], additionals: [] };

/** The zone a name belongs to: the longest one that contains it. */
export function zoneOf(zones: readonly ZoneSnapshot[], name: string): ZoneSnapshot | undefined {
  let best: ZoneSnapshot | undefined;
  for (const z of zones) if (inZone(name, z.apex) && (!best || z.apex.length > best.apex.length)) best = z;
  return best;
}

/**
 * Answers one question. `turn` rotates address answers: each query of a name starts one address
 * further, so clients that take the first address spread over all of them.
 */
export function answer(zones: readonly ZoneSnapshot[], q: Question, turn: (name: string) => number): Answer {
  if (q.class !== rrClass.IN && q.class !== rrClass.ANY) return refused;
  const z = zoneOf(zones, q.name);
  if (!z) return refused;
  // Zone transfers are for the operator's own DNS servers: `ringmaster dns zonefile` gives them the zone.
  if (q.type === rrType.AXFR || q.type === rrType.IXFR) return refused;
  const negative = (rcode: Rcode): Answer => ({ rcode, aa: true, answers: [], authorities: [{ ...z.soa, ttl: Math.min(z.ttl, z.soa.minimum) }], additionals: [] });
  if (!z.exists.has(q.name)) return negative(rcodes.NXDOMAIN);
  const o = z.owners.get(q.name);
  const any = q.type === rrType.ANY;
  const ttl = z.ttl;
  const answers: ResourceRecord[] = [];
  const additionals: ResourceRecord[] = [];
  const glue = (name: string): void => {
    const g = inZone(name, z.apex) ? z.owners.get(name) : undefined;
    if (!g) return;
    for (const address of g.a) additionals.push({ name, ttl, type: 'A', address });
    for (const address of g.aaaa) additionals.push({ name, ttl, type: 'AAAA', address });
  };
  if (q.name === z.apex && (any || q.type === rrType.SOA)) answers.push(z.soa);
  if (q.name === z.apex && (any || q.type === rrType.NS)) {
    for (const host of z.ns) answers.push({ name: z.apex, ttl, type: 'NS', host });
    if (!any) for (const host of z.ns) glue(host);
  }
  if (o) {
    const rotated = (list: string[]): string[] => {
      if (list.length < 2) return list;
      const k = turn(q.name) % list.length;
      return [...list.slice(k), ...list.slice(0, k)];
    };
    if (any || q.type === rrType.A) for (const address of rotated(o.a)) answers.push({ name: q.name, ttl, type: 'A', address });
    if (any || q.type === rrType.AAAA) for (const address of rotated(o.aaaa)) answers.push({ name: q.name, ttl, type: 'AAAA', address });
    if (any || q.type === rrType.SRV) {
      for (const s of o.srv) answers.push({ name: q.name, ttl, type: 'SRV', ...s });
      if (!any) for (const target of new Set(o.srv.map((s) => s.target))) glue(target);
    }
  }
  if (answers.length === 0) return negative(rcodes.NOERROR);
  return { rcode: rcodes.NOERROR, aa: true, answers, authorities: [], additionals };
}
