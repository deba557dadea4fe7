import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Clock, TimerHandle } from '../lib/clock.ts';
import { errorMessage, RingmasterError } from '../lib/errors.ts';
import type { Log } from '../observability/log.ts';
import { SslDir } from './ssl-dir.ts';
import {
  createCsr, generateKeyPair, parseCert, parseCertBundle, parseCrlBundle, verifyCertSignature, verifyCrlSignature,
  type ParsedCert, type ParsedCrl, type SubjectAltName,
} from './x509.ts';

// An external CA (a puppetserver or OpenVox server with its CA on) in place of the built-in one.
// ringmaster trusts only the CA certificates of `caFile`, which it never takes from the network.
// Through the CA's pool it gets its own certificate the way `puppet ssl bootstrap` does (a key
// kept in <stateDir>/ssl, a request, then polling until the CA signs it) and fetches the CRL
// every `crlRefresh`. A certificate or CRL that does not verify against `caFile` is refused, and a
// CRL older than the one in use is ignored, so a stale or wrong member cannot undo a revocation.

export type ExternalCaSettings = {
  caFile: string;
  crlRefreshMs: number;
  waitForCertMs: number;
  certname: string;
  dnsAltNames: string[];
  keyLength: number;
  stateDir: string;
};

export type ExternalCaSummary = {
  subject: string;
  notAfter: Date | undefined;
  crlThisUpdate: Date | undefined;
  crlNextUpdate: Date | undefined;
  crlRefreshFailures: number;
  /** Serials the CRL in use revokes. */
  revoked: number;
  /** ringmaster's own certificate from that CA. */
  certificate: { certname: string; serial: bigint; notAfter: Date };
};

/** One request to the external CA's pool; rejects when no member could be reached. */
export type CaFetch = (r: { method: 'GET' | 'PUT'; path: string; body?: string; contentType?: string }) => Promise<{ status: number; body: string }>;

const crlPath = '/puppet-ca/v1/certificate_revocation_list/ca';
const pollEveryMs = 2000;

export class ExternalCa {
  readonly caBundlePem: string;
  readonly serverCert: { certPem: string; keyPem: string };
  #cas: ParsedCert[];
  #settings: ExternalCaSettings;
  #deps: { clock: Clock; log: Log; fetch: CaFetch };
  #ssl: SslDir;
  #crlPem: string;
  #crls: ParsedCrl[];
  /** Serials revoked by the CA that signs agents (the issuer of ringmaster's own certificate). */
  #revoked: Set<bigint>;
  #issuerDn: string;
  #listeners = new Set<() => void>();
  #timer: TimerHandle | undefined;
  #refreshFailures = 0;

  private constructor(settings: ExternalCaSettings, deps: { clock: Clock; log: Log; fetch: CaFetch }, cas: ParsedCert[], caBundlePem: string, serverCert: { certPem: string; keyPem: string }, crl: { pem: string; crls: ParsedCrl[] }) {
    this.#settings = settings;
    this.#deps = deps;
    this.#ssl = new SslDir(join(settings.stateDir, 'ssl'));
    this.#cas = cas;
    this.caBundlePem = caBundlePem;
    this.serverCert = serverCert;
    this.#issuerDn = parseCert(serverCert.certPem).issuerDn;
    this.#crlPem = crl.pem;
    this.#crls = crl.crls;
    this.#revoked = this.#revokedOf(crl.crls);
  }

  /**
   * Reads `caFile`, then makes sure ringmaster has a certificate from the CA (requesting one
   * and waiting up to `waitForCertMs` at the first start) and a CRL (fetched, or the last one
   * kept when the CA cannot be reached).
   */
  static async open(settings: ExternalCaSettings, deps: { clock: Clock; log: Log; fetch: CaFetch }): Promise<ExternalCa> {
    const { caBundlePem, cas } = await readCaFile(settings.caFile);
    const ssl = new SslDir(join(settings.stateDir, 'ssl'));
    const serverCert = await ensureCertificate(settings, deps, ssl, cas);
    const crl = await initialCrl(deps, ssl, cas);
    await ssl.publishCa(caBundlePem, crl.pem);
    const external = new ExternalCa(settings, deps, cas, caBundlePem, serverCert, crl);
    deps.log.info({ certname: settings.certname, crls: crl.crls.length, revoked: external.#revoked.size }, 'using the external CA');
    return external;
  }

  get crlPem(): string {
    return this.#crlPem;
  }

  /** The CA that signs agents (the issuer of ringmaster's own certificate), and that certificate, for the admin API. */
  get summary(): ExternalCaSummary {
    const own = parseCert(this.serverCert.certPem);
    const signer = this.#cas.find((c) => c.subjectDn === this.#issuerDn);
    return {
      subject: this.#issuerDn,
      notAfter: signer?.notAfter,
      crlThisUpdate: this.crlThisUpdate,
      crlNextUpdate: this.crlNextUpdate,
      crlRefreshFailures: this.#refreshFailures,
      revoked: this.#revoked.size,
      certificate: { certname: this.#settings.certname, serial: own.serial, notAfter: own.notAfter },
    };
  }

  get crlThisUpdate(): Date | undefined {
    return this.#crls.find((c) => c.issuerDn === this.#issuerDn)?.thisUpdate;
  }

  get crlNextUpdate(): Date | undefined {
    return this.#crls.find((c) => c.issuerDn === this.#issuerDn)?.nextUpdate;
  }

  isRevoked(serial: bigint): boolean {
    return this.#revoked.has(serial);
  }

  onChange(fn: () => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** Fetches the CRL every `crlRefreshMs` until `stop`. */
  start(): void {
    const tick = (): void => {
      this.refreshCrl().catch((err: unknown) => this.#deps.log.warn({ err: errorMessage(err) }, 'cannot refresh the CRL from the external CA; keeping the one in use'));
      this.#timer = this.#deps.clock.setTimeout(tick, this.#settings.crlRefreshMs);
    };
    this.#timer = this.#deps.clock.setTimeout(tick, this.#settings.crlRefreshMs);
  }

  stop(): void {
    this.#timer?.cancel();
  }

  /** CRL fetches that failed: the CA unreachable or refusing, or a CRL that did not verify. */
  get crlRefreshFailures(): number {
    return this.#refreshFailures;
  }

  /** Takes the CA's current CRL when it verifies and is newer; true when it changed what is revoked or its dates. */
  async refreshCrl(): Promise<boolean> {
    try {
      return await this.#refreshCrl();
    } catch (err) {
      this.#refreshFailures++;
      throw err;
    }
  }

  async #refreshCrl(): Promise<boolean> {
    const res = await this.#deps.fetch({ method: 'GET', path: crlPath });
    if (res.status !== 200) throw new RingmasterError('RM_CA_EXTERNAL_UNAVAILABLE', `the external CA answered ${res.status} for its CRL`);
    const crls = await verifiedCrls(res.body, this.#cas);
    if (res.body === this.#crlPem) return false;
    for (const next of crls) {
      const current = this.#crls.find((c) => c.issuerDn === next.issuerDn);
      if (current && isOlder(next, current)) {
        this.#deps.log.warn({ issuer: next.issuerDn, thisUpdate: next.thisUpdate.toISOString(), inUse: current.thisUpdate.toISOString() }, 'the external CA served a CRL older than the one in use; ignored');
        return false;
      }
    }
    if (!crls.some((c) => c.issuerDn === this.#issuerDn)) throw new RingmasterError('RM_CA_EXTERNAL_INVALID', `the external CA's CRL has no list from ${this.#issuerDn}`);
    const before = this.#revoked.size;
    this.#crlPem = res.body;
    this.#crls = crls;
    this.#revoked = this.#revokedOf(crls);
    await this.#ssl.publishCa(this.caBundlePem, res.body);
    this.#deps.log.info({ revoked: this.#revoked.size, newlyRevoked: this.#revoked.size - before }, 'CRL refreshed from the external CA');
    for (const fn of this.#listeners) fn();
    return true;
  }

  #revokedOf(crls: ParsedCrl[]): Set<bigint> {
    return new Set(crls.filter((c) => c.issuerDn === this.#issuerDn).flatMap((c) => c.revoked.map((r) => r.serial)));
  }
}

async function readCaFile(path: string): Promise<{ caBundlePem: string; cas: ParsedCert[] }> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new RingmasterError('RM_CONFIG_INVALID', `ca.external.caFile ${path} cannot be read: ${errorMessage(err)}`);
  }
  let cas: ParsedCert[];
  try {
    cas = parseCertBundle(text).filter((c) => c.isCa);
  } catch (err) {
    throw new RingmasterError('RM_CONFIG_INVALID', `ca.external.caFile ${path} is not a PEM bundle of certificates: ${errorMessage(err)}`);
  }
  if (cas.length === 0) throw new RingmasterError('RM_CONFIG_INVALID', `ca.external.caFile ${path} holds no CA certificate`);
  return { caBundlePem: `${cas.map((c) => c.pem.trim()).join('\n')}\n`, cas };
}

/** The issuer in `cas` whose key signed `pem`'s certificate, or undefined. */
async function issuerOf(cert: ParsedCert, cas: ParsedCert[]): Promise<ParsedCert | undefined> {
  for (const ca of cas) {
    if (ca.subjectDn === cert.issuerDn && (await verifyCertSignature(cert, ca))) return ca;
  }
  return undefined;
}

async function verifiedCrls(text: string, cas: ParsedCert[]): Promise<ParsedCrl[]> {
  let crls: ParsedCrl[];
  try {
    crls = parseCrlBundle(text);
  } catch (err) {
    throw new RingmasterError('RM_CA_EXTERNAL_INVALID', `the external CA's CRL cannot be parsed: ${errorMessage(err)}`);
  }
  if (crls.length === 0) throw new RingmasterError('RM_CA_EXTERNAL_INVALID', "the external CA's CRL is empty");
  for (const crl of crls) {
    let ok = false;
    for (const ca of cas) if (ca.subjectDn === crl.issuerDn && (await verifyCrlSignature(crl, ca))) ok = true;
    if (!ok) throw new RingmasterError('RM_CA_EXTERNAL_INVALID', `a CRL from ${crl.issuerDn} does not verify against ca.external.caFile`);
  }
  return crls;
}

function isOlder(next: ParsedCrl, current: ParsedCrl): boolean {
  if (next.number !== undefined && current.number !== undefined) return next.number < current.number;
  return next.thisUpdate.getTime() < current.thisUpdate.getTime();
}

/** ringmaster's certificate: the one kept if it is the CA's, fresh and for the configured names; else a new request. */
async function ensureCertificate(s: ExternalCaSettings, deps: { clock: Clock; log: Log; fetch: CaFetch }, ssl: SslDir, cas: ParsedCert[]): Promise<{ certPem: string; keyPem: string }> {
  const wanted = [s.certname, ...s.dnsAltNames];
  let keyPem = await ssl.readKey(s.certname);
  const kept = await ssl.read(s.certname);
  if (kept && keyPem !== undefined) {
    const cert = parseCert(kept.certPem);
    const names = new Set([cert.commonName, ...cert.subjectAltNames.map((n) => n.value)]);
    const usable = cert.notAfter.getTime() > deps.clock.now() && (await issuerOf(cert, cas)) !== undefined
      && sameKey(cert, ssl.publicKeyOf(keyPem)) && wanted.every((n) => names.has(n));
    if (usable) return { certPem: kept.certPem, keyPem };
    deps.log.warn({ certname: s.certname }, 'the certificate in the ssl directory is not usable with the external CA (issuer, key, names or expiry); requesting a new one');
  }
  if (keyPem === undefined) {
    keyPem = (await generateKeyPair({ type: 'rsa', bits: s.keyLength })).privateKeyPem;
    await ssl.writeKey(s.certname, keyPem);
  }
  const sans: SubjectAltName[] = s.dnsAltNames.map((v) => ({ type: /^[0-9.]+$|:/.test(v) ? 'ip' : 'dns', value: v }));
  const csr = await createCsr({ commonName: s.certname, keyPair: { privateKeyPem: keyPem, publicKeyPem: ssl.publicKeyOf(keyPem) }, subjectAltNames: sans });
  const certPath = `/puppet-ca/v1/certificate/${encodeURIComponent(s.certname)}`;
  const sent = await reach(() => deps.fetch({ method: 'PUT', path: `/puppet-ca/v1/certificate_request/${encodeURIComponent(s.certname)}`, body: csr, contentType: 'text/plain' }));
  // 400 is also what a CA answers when this name's request is already waiting (a restart while waiting).
  if (sent.status !== 200 && sent.status !== 400) {
    throw new RingmasterError('RM_CA_EXTERNAL_UNAVAILABLE', `the external CA refused ringmaster's certificate request: ${sent.status} ${sent.body.slice(0, 200)}`);
  }
  deps.log.info({ certname: s.certname, waitForCertMs: s.waitForCertMs }, 'certificate request sent to the external CA; waiting for it to be signed');
  const deadline = deps.clock.now() + s.waitForCertMs;
  for (;;) {
    const got = await reach(() => deps.fetch({ method: 'GET', path: certPath }));
    if (got.status === 200) {
      const cert = parseCertOrThrow(got.body);
      if (!sameKey(cert, ssl.publicKeyOf(keyPem)) || (await issuerOf(cert, cas)) === undefined) {
        throw new RingmasterError('RM_CA_EXTERNAL_INVALID', `the certificate the external CA returned for ${s.certname} does not match ringmaster's key or does not verify against ca.external.caFile`);
      }
      await ssl.write(s.certname, got.body, keyPem);
      deps.log.info({ certname: s.certname, serial: cert.serial.toString(16) }, 'certificate signed by the external CA');
      return { certPem: got.body, keyPem };
    }
    if (deps.clock.now() >= deadline) {
      // A 400 is either "already requested" or a refusal (alternative names not allowed, …): say which.
      const answer = sent.status === 400 ? ` (it answered the request with 400: ${sent.body.trim().slice(0, 200)})` : '';
      throw new RingmasterError('RM_CA_EXTERNAL_UNAVAILABLE', `the external CA did not sign ${s.certname}'s request within ca.external.waitForCert${answer}; sign it there (puppetserver ca sign --certname ${s.certname}) and start ringmaster again`);
    }
    await new Promise<void>((resolve) => deps.clock.setTimeout(resolve, pollEveryMs));
  }
}

async function initialCrl(deps: { log: Log; fetch: CaFetch }, ssl: SslDir, cas: ParsedCert[]): Promise<{ pem: string; crls: ParsedCrl[] }> {
  try {
    const res = await deps.fetch({ method: 'GET', path: crlPath });
    if (res.status !== 200) throw new RingmasterError('RM_CA_EXTERNAL_UNAVAILABLE', `the external CA answered ${res.status} for its CRL`);
    return { pem: res.body, crls: await verifiedCrls(res.body, cas) };
  } catch (err) {
    if (err instanceof RingmasterError && err.code === 'RM_CA_EXTERNAL_INVALID') throw err;
    const kept = await ssl.readCrl();
    if (kept === undefined) throw new RingmasterError('RM_CA_EXTERNAL_UNAVAILABLE', `no CRL: the external CA could not give one (${errorMessage(err)}) and none was kept from before`);
    deps.log.warn({ err: errorMessage(err) }, 'cannot fetch the CRL from the external CA; starting with the one kept from before');
    return { pem: kept, crls: await verifiedCrls(kept, cas) };
  }
}

/** Network failures of a CA request become RM_CA_EXTERNAL_UNAVAILABLE. */
async function reach<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (err) {
    if (err instanceof RingmasterError) throw err;
    throw new RingmasterError('RM_CA_EXTERNAL_UNAVAILABLE', `the external CA cannot be reached: ${errorMessage(err)}`);
  }
}

function parseCertOrThrow(pem: string): ParsedCert {
  try {
    return parseCert(pem);
  } catch (err) {
    throw new RingmasterError('RM_CA_EXTERNAL_INVALID', `the external CA returned something that is not a certificate: ${errorMessage(err)}`);
  }
}

function sameKey(cert: ParsedCert, publicKeyPem: string): boolean {
  const spki = Buffer.from(publicKeyPem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
  return Buffer.compare(spki, Buffer.from(cert.publicKeySpki)) === 0;
}
