import { isIP } from 'node:net';

// Domain names as the DNS config writes them and as queries ask for them. Inside src/dns every
// name is absolute, lower case and without the trailing dot ("site-a.example.com"); the root is "".
// Config names follow zone-file habits: "@" is the zone itself, a trailing dot makes a name
// absolute, and so does a name that already ends in the zone's name; any other name is relative.

const label = /^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$/;

/** Whether `value` is a DNS name as the config may write it (relative or absolute, or "@"). */
export function isConfigName(value: string): boolean {
  if (value === '@') return true;
  const bare = value.endsWith('.') ? value.slice(0, -1) : value;
  if (bare === '' || bare.length > 253) return false;
  return bare.toLowerCase().split('.').every((l) => label.test(l));
}

/** The absolute form of a config name within `zone` (itself absolute). */
export function absoluteName(value: string, zone: string): string {
  if (value === '@') return zone;
  const v = value.toLowerCase();
  if (v.endsWith('.')) return v.slice(0, -1);
  if (v === zone || v.endsWith(`.${zone}`)) return v;
  return zone === '' ? v : `${v}.${zone}`;
}

/** Whether `name` is `zone` or a name under it. */
export function inZone(name: string, zone: string): boolean {
  return zone === '' || name === zone || name.endsWith(`.${zone}`);
}

/** The names between `name` and `zone` (both included): a name's ancestors exist too (RFC 8020). */
export function namesUpTo(name: string, zone: string): string[] {
  const out: string[] = [];
  let n = name;
  for (;;) {
    out.push(n);
    if (n === zone || n === '') break;
    const dot = n.indexOf('.');
    if (dot < 0) break;
    n = n.slice(dot + 1);
  }
  return out;
}

/** The host of a member URL as a name or an address (brackets of IPv6 removed). */
export function urlHost(url: string): string {
  const h = new URL(url).hostname.toLowerCase();
  return h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h;
}

export const isAddress = (value: string): boolean => isIP(value) !== 0;

/** The SRV owner name of an agent service in a domain, e.g. `_x-puppet-ca._tcp.example.com`. */
export function srvOwner(service: string, domain: string): string {
  return `_${service}._tcp.${domain}`;
}

/** A zone name from the config: absolute whether or not it ends with a dot. */
export function zoneName(value: string): string {
  const v = value.toLowerCase();
  return v.endsWith('.') ? v.slice(0, -1) : v;
}
