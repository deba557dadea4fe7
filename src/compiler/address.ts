import { isIP } from 'node:net';
import type { SubjectAltName } from '../ca/x509.ts';

// Host names and listen addresses as an operator types them on the command line. Each parser
// returns a problem string instead of throwing, so the caller can report every bad option at once.

export type ListenAddress = {
  host: string;
  port: number;
  kind: 'ipv4' | 'ipv6' | 'dns';
  /** 0.0.0.0 or ::: no single name to dial, and no name to put in a certificate. */
  wildcard: boolean;
};

const hostLabel = /^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?$/i;

export function isHostName(value: string): boolean {
  if (value.length === 0 || value.length > 253) return false;
  return value.replace(/\.$/, '').split('.').every((l) => l.length <= 63 && hostLabel.test(l));
}

/** `HOST:PORT`, with an IPv6 host in brackets (`[::1]:8141`). */
export function parseListen(value: string): ListenAddress | string {
  const shown = JSON.stringify(value);
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d+)$/.exec(value.trim());
  if (!m) return `${shown} is not HOST:PORT (an IPv6 address goes in brackets: [::1]:8141)`;
  const host = (m[1] ?? m[2] ?? '').toLowerCase();
  const port = Number(m[3]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) return `${shown}: the port must be between 1 and 65535`;
  const ip = isIP(host);
  if (m[1] !== undefined && ip !== 6) return `${shown}: only an IPv6 address goes in brackets`;
  if (ip === 4) return { host, port, kind: 'ipv4', wildcard: host === '0.0.0.0' };
  if (ip === 6) return { host, port, kind: 'ipv6', wildcard: /^[0:]+$/.test(host) };
  if (!isHostName(host)) return `${shown}: ${JSON.stringify(host)} is neither an IP address nor a host name`;
  return { host, port, kind: 'dns', wildcard: false };
}

/** The host part of a URL: IPv6 addresses need brackets there. */
export function urlHost(host: string): string {
  return isIP(host) === 6 ? `[${host}]` : host;
}

/** `a,b,IP:10.0.0.5,DNS:c` as `ringmaster ca generate --dns-alt-names` reads it. */
export function parseAltNames(value: string): { names: SubjectAltName[]; problems: string[] } {
  const names: SubjectAltName[] = [];
  const problems: string[] = [];
  for (const raw of value.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    const prefixed = /^(DNS|IP):(.*)$/i.exec(raw);
    const v = (prefixed?.[2] ?? raw).toLowerCase();
    const asked = prefixed?.[1]?.toUpperCase();
    if (isIP(v) !== 0 && asked !== 'DNS') names.push({ type: 'ip', value: v });
    else if (isHostName(v) && asked !== 'IP') names.push({ type: 'dns', value: v });
    else problems.push(`${JSON.stringify(raw)} is neither an IP address nor a host name`);
  }
  return { names, problems };
}

export function altNameOf(host: string): SubjectAltName {
  return { type: isIP(host) === 0 ? 'dns' : 'ip', value: host };
}

/** Adds names not already present (DNS names compare case-insensitively, as in certificates). */
export function mergeAltNames(list: SubjectAltName[], more: SubjectAltName[]): SubjectAltName[] {
  const out = [...list];
  for (const n of more) {
    if (!out.some((o) => o.type === n.type && o.value.toLowerCase() === n.value.toLowerCase())) out.push(n);
  }
  return out;
}
