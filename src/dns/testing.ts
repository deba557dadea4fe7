import { validateConfig, type ConfigInput, type ParsedConfig } from '../config/schema.ts';
import type { PoolMemberView, TargetHealth } from './health.ts';
import { decodeMessage, encodeQuery, rrType, type DecodedMessage, type QueryOptions } from './wire.ts';

// Helpers for the DNS tests: configs through the real schema, health the test sets by hand, and
// queries in and replies out as plain values.

export function parsedConfig(input: ConfigInput): ParsedConfig {
  const r = validateConfig(input);
  if (!r.ok) throw new Error(`invalid test config: ${JSON.stringify(r.problems)}`);
  return r.config;
}

/** The seeds' example: site A with two servers weighted 75/25 and site B as priority-1 fallback; site B prefers its own server. */
export const seedZone = {
  name: 'example.com',
  ns: ['ns1'],
  hosts: {
    ns1: { addresses: ['192.0.2.53'], check: 'none' as const },
    'server-1.site-a': { addresses: ['192.0.2.11'] },
    'server-2.site-a': { addresses: ['192.0.2.12', '2001:db8::12'] },
    'server.site-b': { addresses: ['192.0.2.21'] },
  },
  names: { puppet: { hosts: ['server-1.site-a', 'server-2.site-a', 'server.site-b'] } },
  srv: [
    {
      domain: 'site-a',
      service: 'x-puppet' as const,
      targets: [{ host: 'server-1.site-a', weight: 75 }, { host: 'server-2.site-a', weight: 25 }, { host: 'server.site-b', priority: 1, weight: 5 }],
    },
    {
      domain: 'site-b',
      service: 'x-puppet' as const,
      targets: [{ host: 'server.site-b', weight: 5 }, { host: 'server-1.site-a', priority: 1, weight: 75 }, { host: 'server-2.site-a', priority: 1, weight: 25 }],
    },
    { service: 'x-puppet-ca' as const, targets: [{ host: 'server-1.site-a' }] },
    { service: 'x-puppet' as const, targets: [{ pool: 'compilers', port: 8140 }] },
  ],
};

/** Health set by hand: hosts by name (default healthy), pool members as given. */
export class FakeHealth implements TargetHealth {
  down = new Set<string>();
  members = new Map<string, PoolMemberView[]>();
  host(name: string): boolean {
    return !this.down.has(name);
  }
  poolMembers(pool: string): readonly PoolMemberView[] {
    return this.members.get(pool) ?? [];
  }
}

export function member(name: string, host: string, extra: Partial<PoolMemberView> = {}): PoolMemberView {
  return { member: name, host, port: 8141, weight: 1, priority: 0, healthy: true, ...extra };
}

/** A query as bytes, for `DnsResponder.handle`. */
export function query(name: string, type: keyof typeof rrType | number, o: QueryOptions = {}): Buffer {
  return encodeQuery(name, { id: 4242, ...o, type: typeof type === 'number' ? type : rrType[type] });
}

export function reply(buf: Buffer | undefined): DecodedMessage {
  if (!buf) throw new Error('expected a reply, got silence');
  return decodeMessage(buf);
}

/** Answer data of one type, as strings, for comparisons. */
export function rdata(m: DecodedMessage, type: string, section: 'answers' | 'additionals' | 'authorities' = 'answers'): string[] {
  return (m[section] ?? [])
    .filter((a) => a.type === type)
    .map((a) => {
      const d = (a as { data: unknown }).data;
      if (type === 'SRV') {
        const s = d as { priority: number; weight: number; port: number; target: string };
        return `${s.priority} ${s.weight} ${s.port} ${s.target}`;
      }
      return typeof d === 'string' ? d : JSON.stringify(d);
    });
}
