import type { ParsedConfig } from '../config/schema.ts';
import { staticHealth } from './health.ts';
import { compileZones, snapshot, type ZoneSnapshot } from './zone.ts';

// `ringmaster dns zonefile`: the zones of the config as a BIND zone file, or as dnsmasq lines,
// for operators who keep their own DNS. Every target is listed (health is not known offline), the
// pools with the members of the config file that are not drained.

const fqdn = (name: string): string => `${name}.`;

function bindZone(z: ZoneSnapshot): string {
  const s = z.soa;
  const lines = [
    `$ORIGIN ${fqdn(z.apex)}`,
    `$TTL ${z.ttl}`,
    `${fqdn(z.apex)} IN SOA ${fqdn(s.mname)} ${fqdn(s.rname)} ( ${s.serial} ${s.refresh} ${s.retry} ${s.expire} ${s.minimum} )`,
    ...z.ns.map((ns) => `${fqdn(z.apex)} IN NS ${fqdn(ns)}`),
  ];
  for (const name of [...z.owners.keys()].sort()) {
    const o = z.owners.get(name)!;
    for (const a of o.a) lines.push(`${fqdn(name)} IN A ${a}`);
    for (const a of o.aaaa) lines.push(`${fqdn(name)} IN AAAA ${a}`);
    for (const r of o.srv) lines.push(`${fqdn(name)} IN SRV ${r.priority} ${r.weight} ${r.port} ${fqdn(r.target)}`);
  }
  return `${lines.join('\n')}\n`;
}

function dnsmasqLines(z: ZoneSnapshot): string {
  const lines = [`# zone ${z.apex}: dnsmasq answers these names from its own configuration (srv-host, host-record)`];
  for (const name of [...z.owners.keys()].sort()) {
    const o = z.owners.get(name)!;
    for (const a of [...o.a, ...o.aaaa]) lines.push(`host-record=${name},${a},${z.ttl}`);
    for (const r of o.srv) lines.push(`srv-host=${name},${r.target},${r.port},${r.priority},${r.weight}`);
  }
  return `${lines.join('\n')}\n`;
}

export type ZonefileFormat = 'bind' | 'dnsmasq';

/** The text for each configured zone (apex → text), in config order. */
export function renderZonefiles(config: Pick<ParsedConfig, 'dns' | 'pools'>, format: ZonefileFormat = 'bind'): { zone: string; text: string }[] {
  const health = staticHealth(config.pools);
  return compileZones(config.dns).map((c) => {
    const z = snapshot(c, health);
    return { zone: z.apex, text: format === 'bind' ? bindZone(z) : dnsmasqLines(z) };
  });
}
