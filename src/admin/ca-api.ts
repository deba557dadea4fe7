import type { Clock } from '../lib/clock.ts';
import { parseDuration } from '../lib/duration.ts';
import { RingmasterError } from '../lib/errors.ts';
import type { CertificateAuthority } from '../ca/authority.ts';
import type { ExternalCaSummary } from '../ca/external.ts';
import type { CertState, CertStatus } from '../ca/status.ts';
import type { AdminAnswer, AdminCall } from './api.ts';
import { allow, isBoolean, isText, notFound, objectBody, onlyParams } from './call.ts';

// The CA through the admin API, for the dashboard and automation that would rather speak JSON
// than puppetserver's CA API: the CA's own dates and counts, requests and certificates (with how
// soon each expires), and sign, reject (delete a pending request), revoke and clean. These are the
// operations `ringmaster ca` performs, on the same CertificateAuthority and its lock. With an
// external CA there is nothing here to list or sign: the summary shows that CA as ringmaster uses
// it (its pool, the CRL in use, ringmaster's own certificate) and the rest answers RM_CA_EXTERNAL.

/** The external CA (`ca.enabled: false`): the pool it is reached through and what ringmaster holds from it. */
export type ExternalCaView = { pool: string; summary: () => ExternalCaSummary };

export type CaApiDeps = { ca: CertificateAuthority | undefined; external?: ExternalCaView | undefined; clock: Clock };

export type CertView = {
  name: string;
  state: CertState;
  fingerprint: string;
  serial: string | null;
  notBefore: string | null;
  notAfter: string | null;
  /** Whole days until notAfter (negative once expired); null for a request. */
  expiresInDays: number | null;
  dnsAltNames: string[];
  authorizationExtensions: Record<string, string>;
};

const day = 86_400_000;
const defaultSoon = 30 * day;
const states: readonly CertState[] = ['requested', 'signed', 'revoked'];

export function createCaAdminApi(deps: CaApiDeps): (call: AdminCall) => Promise<AdminAnswer> {
  return async (call) => {
    const [, , , collection, name, action, ...extra] = call.segments;
    if (extra.length > 0 || call.segments.includes('')) throw notFound(call);
    const ca = deps.ca;
    const now = deps.clock.now();
    if (!ca) {
      if (collection === undefined && deps.external) {
        allow(call, ['GET']);
        onlyParams(call, ['expiring']);
        return { status: 200, body: { ca: externalView(deps.external, now) } };
      }
      throw new RingmasterError('RM_CA_EXTERNAL', 'the CA is external (ca.enabled: false): manage certificates on it');
    }
    const view = (s: CertStatus) => certView(s, now);

    if (collection === undefined) {
      allow(call, ['GET']);
      const q = onlyParams(call, ['expiring']);
      const soon = durationParam(q.get('expiring'), defaultSoon);
      const all = (await ca.list()).map(view);
      const count = (s: CertState) => all.filter((c) => c.state === s).length;
      const signing = ca.signingCert;
      return {
        status: 200,
        body: {
          ca: {
            mode: 'internal',
            subject: signing.subjectDn,
            notAfter: signing.notAfter.toISOString(),
            expiresInDays: Math.floor((signing.notAfter.getTime() - now) / day),
            crlNextUpdate: ca.crlNextUpdate?.toISOString() ?? null,
            counts: { requested: count('requested'), signed: count('signed'), revoked: count('revoked') },
            expiringWithinDays: Math.round(soon / day),
            expiring: all.filter((c) => expiringWithin(c, now, soon)).length,
          },
        },
      };
    }
    if (collection !== 'certificates') throw notFound(call);

    if (name === undefined) {
      allow(call, ['GET']);
      const q = onlyParams(call, ['state', 'expiring']);
      const state = q.get('state');
      if (state !== null && !states.includes(state as CertState)) throw new RingmasterError('RM_ADMIN_BAD_REQUEST', `state: "${state}" is not requested, signed or revoked`);
      const expiring = q.get('expiring');
      let certs = (await ca.list((state ?? undefined) as CertState | undefined)).map(view);
      if (expiring !== null) {
        const within = durationParam(expiring, defaultSoon);
        certs = certs.filter((c) => expiringWithin(c, now, within)).sort((a, b) => (a.notAfter ?? '').localeCompare(b.notAfter ?? ''));
      }
      return { status: 200, body: { certificates: certs } };
    }

    if (action === undefined) {
      allow(call, ['GET']);
      onlyParams(call, []);
      return { status: 200, body: { certificate: view(await found(ca, name)) } };
    }
    allow(call, ['POST']);
    onlyParams(call, []);
    const by = call.who;
    if (action === 'sign') {
      const body = await objectBody(call, { ttl: isText, allowDnsAltNames: isBoolean });
      const ttlMs = body.ttl === undefined ? undefined : durationParam(body.ttl as string, 0);
      const [outcome] = await ca.sign([name], { allowDnsAltNames: body.allowDnsAltNames === true, ...(ttlMs ? { ttlMs } : {}) });
      if (!outcome || !outcome.ok) {
        const status = await ca.status(name);
        if (status === undefined) throw new RingmasterError('RM_CA_NOT_FOUND', `no certificate request for ${name}`);
        throw outcome?.error ?? new RingmasterError('RM_INTERNAL', `signing ${name} gave no outcome`);
      }
      return { status: 200, body: { certificate: view(await found(ca, name)), by } };
    }
    if (action === 'reject') {
      await objectBody(call, {});
      const status = await found(ca, name);
      if (status.state !== 'requested') throw new RingmasterError('RM_CA_NO_CSR', `${name} has no pending certificate request to reject (it is ${status.state})`);
      await ca.deleteRequest(name);
      return { status: 200, body: { name, rejected: true, by } };
    }
    if (action === 'revoke') {
      await objectBody(call, {});
      const status = await found(ca, name);
      if (status.state === 'requested') throw new RingmasterError('RM_CA_NOT_SIGNED', `${name} has no signed certificate to revoke (its request is pending)`);
      if (status.state === 'signed') await ca.revoke([name]);
      return { status: 200, body: { certificate: view(await found(ca, name)), by } };
    }
    if (action === 'clean') {
      await objectBody(call, {});
      const { missing } = await ca.clean([name]);
      if (missing.length > 0) throw new RingmasterError('RM_CA_NOT_FOUND', `no certificate or request for ${name}`);
      return { status: 200, body: { name, cleaned: true, by } };
    }
    throw notFound(call);
  };
}

async function found(ca: CertificateAuthority, name: string): Promise<CertStatus> {
  const status = await ca.status(name);
  if (status === undefined) throw new RingmasterError('RM_CA_NOT_FOUND', `no certificate or request for ${name}`);
  return status;
}

/** puppetserver's "2029-05-01T12:00:00UTC" as ISO 8601. */
function isoOf(puppetDate: string | undefined): string | null {
  if (puppetDate === undefined) return null;
  const ms = Date.parse(puppetDate.replace(/UTC$/, 'Z'));
  return Number.isFinite(ms) ? new Date(ms).toISOString() : null;
}

export function certView(s: CertStatus, now: number): CertView {
  const notAfter = isoOf(s.not_after);
  return {
    name: s.name,
    state: s.state,
    fingerprint: s.fingerprint,
    serial: s.serial_number === undefined ? null : String(s.serial_number),
    notBefore: isoOf(s.not_before),
    notAfter,
    expiresInDays: notAfter === null ? null : Math.floor((Date.parse(notAfter) - now) / day),
    dnsAltNames: s.dns_alt_names.map((n) => n.replace(/^DNS:/, '')),
    authorizationExtensions: s.authorization_extensions,
  };
}

function expiringWithin(c: CertView, now: number, withinMs: number): boolean {
  return c.state === 'signed' && c.notAfter !== null && Date.parse(c.notAfter) - now <= withinMs;
}

function durationParam(text: string | null, fallback: number): number {
  if (text === null) return fallback;
  const ms = parseDuration(text);
  if (ms === undefined || ms <= 0) throw new RingmasterError('RM_ADMIN_BAD_REQUEST', `"${text}" is not a duration such as 30d or 12h`);
  return ms;
}

function externalView(external: ExternalCaView, now: number): Record<string, unknown> {
  const s = external.summary();
  const days = (d: Date) => Math.floor((d.getTime() - now) / day);
  return {
    mode: 'external',
    pool: external.pool,
    subject: s.subject,
    notAfter: s.notAfter?.toISOString() ?? null,
    expiresInDays: s.notAfter ? days(s.notAfter) : null,
    crlThisUpdate: s.crlThisUpdate?.toISOString() ?? null,
    crlNextUpdate: s.crlNextUpdate?.toISOString() ?? null,
    crlRefreshFailures: s.crlRefreshFailures,
    revoked: s.revoked,
    certificate: { certname: s.certificate.certname, serial: String(s.certificate.serial), notAfter: s.certificate.notAfter.toISOString(), expiresInDays: days(s.certificate.notAfter) },
  };
}
