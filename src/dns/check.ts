import { absoluteName, inZone, zoneName } from './names.ts';

// Cross-checks of the `dns.zones` section that one field's schema cannot make: names that refer
// to each other (hosts, pools), names that must lie in their zone, and duplicates that only show
// once names are made absolute. Run by the config schema, so `config check` lists them all.

type ZoneInput = {
  name: string;
  ns: string[];
  hosts: Record<string, { addresses: string[] }>;
  names: Record<string, { hosts: string[]; pools: string[] }>;
  srv: { service: string; domain: string; targets: ({ host: string } | { pool: string })[] }[];
};

export type ZoneProblem = { path: (string | number)[]; message: string };

export function dnsZoneProblems(zones: readonly ZoneInput[], pools: ReadonlySet<string>): ZoneProblem[] {
  const problems: ZoneProblem[] = [];
  const add = (path: (string | number)[], message: string): void => {
    problems.push({ path: ['zones', ...path], message });
  };
  const zoneNames = new Set<string>();
  zones.forEach((z, zi) => {
    if (z.name === '@') {
      add([zi, 'name'], 'a zone needs its full name, e.g. example.com');
      return;
    }
    const zone = zoneName(z.name);
    if (zoneNames.has(zone)) add([zi, 'name'], `zone ${zone} is configured twice`);
    zoneNames.add(zone);

    const hosts = new Map<string, { addresses: string[] }>();
    for (const [key, h] of Object.entries(z.hosts)) {
      const n = absoluteName(key, zone);
      if (hosts.has(n)) add([zi, 'hosts', key], `host ${n} is listed twice`);
      hosts.set(n, h);
      if (inZone(n, zone) && h.addresses.length === 0) add([zi, 'hosts', key], `host ${n} is in the zone: give its addresses, or nobody can resolve it`);
    }
    const hostRef = (path: (string | number)[], ref: string): void => {
      if (!hosts.has(absoluteName(ref, zone))) add(path, `no host named ${absoluteName(ref, zone)} in this zone's hosts`);
    };
    const poolRef = (path: (string | number)[], ref: string): void => {
      if (!pools.has(ref)) add(path, `no pool named ${ref}`);
    };

    z.ns.forEach((ns, i) => {
      const n = absoluteName(ns, zone);
      if (inZone(n, zone) && !hosts.has(n)) add([zi, 'ns', i], `name server ${n} is in the zone: list it under hosts with its addresses`);
    });

    const owners = new Set<string>();
    for (const [key, entry] of Object.entries(z.names)) {
      const n = absoluteName(key, zone);
      if (!inZone(n, zone)) add([zi, 'names', key], `${n} is not in zone ${zone}`);
      if (owners.has(n)) add([zi, 'names', key], `name ${n} is listed twice`);
      if ((hosts.get(n)?.addresses.length ?? 0) > 0) add([zi, 'names', key], `${n} is also a host with addresses; a name's addresses come from one place`);
      owners.add(n);
      if (entry.hosts.length + entry.pools.length === 0) add([zi, 'names', key], 'give at least one of hosts and pools');
      entry.hosts.forEach((h, i) => hostRef([zi, 'names', key, 'hosts', i], h));
      entry.pools.forEach((p, i) => poolRef([zi, 'names', key, 'pools', i], p));
    }

    const services = new Set<string>();
    z.srv.forEach((s, si) => {
      const domain = absoluteName(s.domain, zone);
      if (!inZone(domain, zone)) add([zi, 'srv', si, 'domain'], `${domain} is not in zone ${zone}`);
      const key = `_${s.service}._tcp.${domain}`;
      if (services.has(key)) add([zi, 'srv', si], `${key} is configured twice; put all its targets in one entry`);
      services.add(key);
      s.targets.forEach((t, ti) => {
        if ('host' in t) hostRef([zi, 'srv', si, 'targets', ti, 'host'], t.host);
        else poolRef([zi, 'srv', si, 'targets', ti, 'pool'], t.pool);
      });
    });
  });
  return problems;
}
