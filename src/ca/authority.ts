// The CA facade: the HTTP API, the CLI and the listener all go through it. Slightly over 500 lines
// on purpose: every write to the CA directory (signing, revocation, the CRL chain and its
// infrastructure copy) is sequenced here under the one directory lock; the rules themselves live
// in csr-policy.ts, crl.ts, infra-crl.ts and signing-queue.ts.

import { join } from 'node:path';
import { RingmasterError, errorMessage } from '../lib/errors.ts';
import type { Clock } from '../lib/clock.ts';
import type { Log } from '../observability/log.ts';
import type { Config } from '../config/load.ts';
import { CaStore, type InventoryEntry } from './store.ts';
import {
  parseCsr, parseCert, parseCertBundle, parseCrlBundle, loadSigner, generateKeyPair, createCaCertificate, createCrl,
  type ParsedCert, type ParsedCrl, type ParsedCsr, type Signer, type SubjectAltName,
} from './x509.ts';
import { validateCertname, checkSubmission, checkSigning, finalSubjectAltNames, type CsrPolicy } from './csr-policy.ts';
import { readCrlChain, nextCrlText, crlNeedsRenewal, revokedSerials, foreignCrlsExpiringSoon, withExternalCrls, type CrlChain, type CrlSettings } from './crl.ts';
import { ensureInfraCrl, infraCrlDue, revokeInInfraCrl, updateInfraExternalCrls, type InfraDeps } from './infra-crl.ts';
import { createAutosign, type AutosignDecision } from './autosign/autosign.ts';
import { TokenStore } from './autosign/tokens.ts';
import { certStatus, csrStatus, formatPuppetDate, type CertState, type CertStatus } from './status.ts';
import { SslDir } from './ssl-dir.ts';
import { SigningQueue, type SignRequest } from './signing-queue.ts';

const DAY = 86_400_000;
const standardExtensionOids = new Set(['2.5.29.14', '2.5.29.35', '2.5.29.19', '2.5.29.37', '2.5.29.15', '2.5.29.17', '2.16.840.1.113730.1.13']);

export type CaConfig = Config['ca'] & { stateDir: string; serverCertname: string };
export type AuthorityDeps = { clock: Clock; log: Log };

export type SubmitResult = { state: 'signed' | 'requested'; decision: AutosignDecision };
export type SignOutcome = { name: string; ok: true; cert: ParsedCert } | { name: string; ok: false; error: RingmasterError };

export class CertificateAuthority {
  readonly store: CaStore;
  readonly ssl: SslDir;
  readonly config: CaConfig;
  #clock: Clock;
  #log: Log;
  #signer: Signer;
  #caBundlePem: string;
  #chain: CrlChain;
  #crlText: string;
  #crlMtime = 0;
  #revoked: Set<bigint>;
  #autosign: ReturnType<typeof createAutosign>;
  #signing: SigningQueue;
  #changeListeners = new Set<() => void>();

  private constructor(config: CaConfig, deps: AuthorityDeps, store: CaStore, signer: Signer, caBundlePem: string, crlText: string, chain: CrlChain) {
    this.config = config;
    this.#clock = deps.clock;
    this.#log = deps.log;
    this.store = store;
    this.ssl = new SslDir(join(config.stateDir, 'ssl'));
    this.#signer = signer;
    this.#caBundlePem = caBundlePem;
    this.#crlText = crlText;
    this.#chain = chain;
    this.#revoked = revokedSerials(chain);
    this.#signing = new SigningQueue({ store, signer: () => this.#signer, clock: deps.clock, log: deps.log, allowDuplicateCerts: config.allowDuplicateCerts });
    const tokens = new TokenStore(join(config.stateDir, 'autosign-tokens.json'), { clock: deps.clock });
    this.#autosign = createAutosign(
      {
        all: config.autosign.all,
        allow: config.autosign.allow,
        ...(config.autosign.allowFile ? { allowFile: config.autosign.allowFile } : {}),
        ...(config.autosign.executable ? { executable: { path: config.autosign.executable.path, timeoutMs: config.autosign.executable.timeout } } : {}),
        tokens: config.autosign.tokens,
      },
      { tokens, clock: deps.clock },
    );
  }

  /** Creates a new CA in an empty directory (RM_CA_DIR_EXISTS if one is there). */
  static async create(config: CaConfig, deps: AuthorityDeps): Promise<CertificateAuthority> {
    const store = new CaStore(config.dir);
    if (await store.exists()) throw new RingmasterError('RM_CA_DIR_EXISTS', `a CA already exists in ${config.dir}`);
    const now = deps.clock.now();
    const keyPair = await generateKeyPair({ type: 'rsa', bits: config.keyLength });
    const name = config.name ?? `Puppet CA: ${config.serverCertname}`;
    const caCertPem = await createCaCertificate({ commonName: name, keyPair, serial: 1n, notBefore: new Date(now - DAY), notAfter: new Date(now + config.caTtl) });
    const signer = await loadSigner(caCertPem, keyPair.privateKeyPem);
    const crlPem = await createCrl({ signer, number: 0n, thisUpdate: new Date(now), nextUpdate: new Date(now + config.crl.ttl), revoked: [] });
    await store.initialize({ caCertPem, caKeyPem: keyPair.privateKeyPem, caPubPem: keyPair.publicKeyPem, crlPem, nextSerial: 2n });
    deps.log.info({ dir: config.dir, subject: `CN=${name}` }, 'created a new CA');
    return CertificateAuthority.open(config, deps);
  }

  /** Loads the CA directory, refusing it with the failing file's name when anything is missing or corrupt. */
  static async open(config: CaConfig, deps: AuthorityDeps): Promise<CertificateAuthority> {
    const store = new CaStore(config.dir);
    if (!(await store.exists())) throw new RingmasterError('RM_CA_NOT_INITIALISED', `no CA in ${config.dir}: run \`ringmaster ca setup\` or \`ringmaster ca import DIR\``);
    const file = (name: string) => join(config.dir, name);
    const invalid = (name: string, err: unknown) => new RingmasterError('RM_CA_DIR_INVALID', `${file(name)}: ${errorMessage(err)}`, { cause: err });
    const caBundlePem = await store.readFile('cert');
    const keyPem = await store.readFile('key');
    let certs: ParsedCert[];
    try {
      certs = parseCertBundle(caBundlePem);
      if (certs.length === 0) throw new Error('holds no certificate');
    } catch (err) {
      throw invalid('ca_crt.pem', err);
    }
    let signer: Signer | undefined;
    for (const cert of certs) {
      signer = await loadSigner(cert.pem, keyPem).catch(() => undefined);
      if (signer) break;
    }
    if (!signer) throw invalid('ca_key.pem', new Error('is not a private key matching any certificate in ca_crt.pem'));
    const crlText = await store.readFile('crl');
    let chain: CrlChain;
    try {
      chain = readCrlChain(crlText, signer);
    } catch (err) {
      throw invalid('ca_crl.pem', err);
    }
    try {
      await store.readNextSerial();
    } catch (err) {
      throw err instanceof RingmasterError ? err : invalid('serial', err);
    }
    const fixed = await store.withLock(() => store.repair());
    for (const f of fixed) deps.log.warn({ dir: config.dir }, `CA directory repaired: ${f}`);
    const ca = new CertificateAuthority(config, deps, store, signer, caBundlePem, crlText, chain);
    if (config.crl.infra && (await store.withLock(() => ensureInfraCrl(ca.#infraDeps)))) deps.log.info({ dir: config.dir }, 'created infra_crl.pem');
    ca.#crlMtime = await store.mtime('crl');
    await ca.ssl.publishCa(caBundlePem, crlText);
    return ca;
  }

  static async openOrCreate(config: CaConfig, deps: AuthorityDeps): Promise<{ ca: CertificateAuthority; created: boolean }> {
    const store = new CaStore(config.dir);
    if (await store.exists()) return { ca: await CertificateAuthority.open(config, deps), created: false };
    return { ca: await CertificateAuthority.create(config, deps), created: true };
  }

  get signingCert(): ParsedCert {
    return this.#signer.cert;
  }

  get caBundlePem(): string {
    return this.#caBundlePem;
  }

  get crlPem(): string {
    return this.#crlText;
  }

  isRevoked(serial: bigint): boolean {
    return this.#revoked.has(serial);
  }

  /** Called after the CRL changed, whichever process changed it. */
  onChange(fn: () => void): () => void {
    this.#changeListeners.add(fn);
    return () => this.#changeListeners.delete(fn);
  }

  /** Picks up a CRL written by another process (the CLI); cheap when nothing changed. */
  async refresh(): Promise<boolean> {
    const mtime = await this.store.mtime('crl').catch(() => this.#crlMtime);
    if (mtime === this.#crlMtime) return false;
    const text = await this.store.readFile('crl');
    this.#adoptCrl(text, mtime);
    return true;
  }

  #adoptCrl(text: string, mtime: number): void {
    const chain = readCrlChain(text, this.#signer);
    this.#chain = chain;
    this.#crlText = text;
    this.#crlMtime = mtime;
    this.#revoked = revokedSerials(chain);
    for (const fn of this.#changeListeners) fn();
  }

  get #crlSettings(): CrlSettings {
    return { ttlMs: this.config.crl.ttl, renewBeforeMs: this.config.crl.renewBefore };
  }

  get #infraDeps(): InfraDeps {
    return { store: this.store, signer: this.#signer, clock: this.#clock, settings: this.#crlSettings };
  }

  get #policy(): CsrPolicy {
    return { allowSubjectAltNames: this.config.allowSubjectAltNames, allowAuthorizationExtensions: this.config.allowAuthorizationExtensions };
  }

  // ---- requests -------------------------------------------------------------------------------

  async submitCsr(urlName: string, pem: string): Promise<SubmitResult> {
    validateCertname(urlName);
    if (Buffer.byteLength(pem) > this.config.maxCsrBytes) {
      throw new RingmasterError('RM_BODY_TOO_LARGE', `certificate request is larger than ${this.config.maxCsrBytes} bytes`);
    }
    const csr = parseCsr(pem);
    await checkSubmission(csr, urlName, this.#policy);
    await this.#refuseDuplicate(urlName);
    const decision = await this.#autosign.decide({ certname: urlName, csrPem: csr.pem, challengePassword: csr.challengePassword });
    this.#log.info({ certname: urlName, autosign: decision.mechanism, sign: decision.sign }, `certificate request: ${decision.reason}`);
    if (decision.sign) {
      try {
        checkSigning(csr, { ...this.#policy, allowDnsAltNames: false });
      } catch (err) {
        // As puppetserver does: the request stays pending for an operator, the agent hears why.
        await this.#storeRequest(urlName, csr);
        throw err;
      }
      await this.#signing.submit(this.#jobFromCsr(urlName, csr, { ttlMs: this.config.certTtl, fromRequest: false }));
      return { state: 'signed', decision };
    }
    await this.#storeRequest(urlName, csr);
    return { state: 'requested', decision };
  }

  async #refuseDuplicate(name: string): Promise<void> {
    if (this.config.allowDuplicateCerts) return;
    const signed = await this.store.getSigned(name);
    if (signed !== undefined) {
      const state = this.isRevoked(parseCert(signed).serial) ? 'revoked' : 'signed';
      throw new RingmasterError('RM_CA_CSR_DUPLICATE', `${name} already has a ${state} certificate; ignoring certificate request`);
    }
    if ((await this.store.getRequest(name)) !== undefined) {
      throw new RingmasterError('RM_CA_CSR_DUPLICATE', `${name} already has a requested certificate; ignoring certificate request`);
    }
  }

  async #storeRequest(name: string, csr: ParsedCsr): Promise<void> {
    await this.store.withLock(async () => {
      await this.#refuseDuplicate(name);
      await this.store.putRequest(name, csr.pem);
    });
  }

  async getRequest(name: string): Promise<string | undefined> {
    validateCertname(name);
    return this.store.getRequest(name);
  }

  async deleteRequest(name: string): Promise<boolean> {
    validateCertname(name);
    return this.store.withLock(() => this.store.deleteRequest(name));
  }

  async getCertificate(name: string): Promise<string | undefined> {
    if (name === 'ca') return this.#caBundlePem;
    validateCertname(name);
    return this.store.getSigned(name);
  }

  // ---- signing ----------------------------------------------------------------------------------

  #jobFromCsr(name: string, csr: ParsedCsr, o: { ttlMs: number; fromRequest: boolean }): SignRequest {
    return {
      certname: name,
      publicKeySpki: csr.publicKeySpki,
      subjectAltNames: finalSubjectAltNames(csr, name),
      extensions: csr.extensionRequests,
      ttlMs: o.ttlMs,
      cliAuth: false,
      replace: false,
      fromRequest: o.fromRequest,
    };
  }

  /** Signs pending requests by name (an operator's `sign`); results per name, never throws for one name. */
  async sign(names: string[], options: { allowDnsAltNames?: boolean; ttlMs?: number } = {}): Promise<SignOutcome[]> {
    return Promise.all(names.map((name) => this.#signOne(name, options)));
  }

  async #signOne(name: string, options: { allowDnsAltNames?: boolean; ttlMs?: number }): Promise<SignOutcome> {
    try {
      validateCertname(name);
      const pem = await this.store.getRequest(name);
      if (pem === undefined) throw new RingmasterError('RM_CA_NO_CSR', `Cannot sign certificate for host ${name} without a certificate request`);
      const csr = parseCsr(pem);
      checkSigning(csr, { ...this.#policy, allowDnsAltNames: options.allowDnsAltNames ?? false });
      const cert = await this.#signing.submit(this.#jobFromCsr(name, csr, { ttlMs: options.ttlMs ?? this.config.certTtl, fromRequest: true }));
      return { name, ok: true, cert };
    } catch (err) {
      return { name, ok: false, error: asCaError(err) };
    }
  }

  async pendingNames(): Promise<string[]> {
    return this.store.listRequests();
  }

  /** Issues a certificate for a key ringmaster generated itself (`ca generate`, its own server cert). */
  async issueForKey(p: { certname: string; publicKeyPem: string; subjectAltNames: SubjectAltName[]; cliAuth: boolean; replace: boolean; ttlMs?: number }): Promise<ParsedCert> {
    validateCertname(p.certname);
    const spki = new Uint8Array(Buffer.from(p.publicKeyPem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64'));
    const sans = p.subjectAltNames.some((s) => s.type === 'dns' && s.value === p.certname) ? p.subjectAltNames : [{ type: 'dns' as const, value: p.certname }, ...p.subjectAltNames];
    return this.#signing.submit({ certname: p.certname, publicKeySpki: spki, subjectAltNames: sans, extensions: [], ttlMs: p.ttlMs ?? this.config.certTtl, cliAuth: p.cliAuth, replace: p.replace, fromRequest: false });
  }

  /** POST certificate_renewal: same subject, key and extensions, a new serial and the renewal lifetime. */
  async renew(peer: ParsedCert): Promise<ParsedCert> {
    if (!this.config.autoRenewal.enabled) throw new RingmasterError('RM_CA_RENEWAL_DISABLED', 'Not Found');
    if (peer.authorityKeyId !== undefined && peer.authorityKeyId !== this.#signer.cert.subjectKeyId) {
      throw new RingmasterError('RM_CA_RENEWAL_FOREIGN', 'Certificate present, but does not match signature');
    }
    if (this.isRevoked(peer.serial)) throw new RingmasterError('RM_CA_RENEWAL_FOREIGN', 'Certificate present, but it is revoked');
    const name = peer.commonName ?? '';
    validateCertname(name);
    return this.#signing.submit({
      certname: name,
      publicKeySpki: peer.publicKeySpki,
      subjectAltNames: peer.subjectAltNames,
      extensions: peer.extensions.filter((e) => !standardExtensionOids.has(e.oid)),
      ttlMs: this.config.autoRenewal.certTtl,
      cliAuth: false,
      replace: true,
      fromRequest: false,
    });
  }

  async ensureServerCert(certname: string, dnsAltNames: string[]): Promise<{ certPem: string; keyPem: string }> {
    const sans: SubjectAltName[] = dnsAltNames.map((v) => ({ type: /^[0-9.]+$|:/.test(v) ? 'ip' : 'dns', value: v }));
    const existing = await this.ssl.read(certname);
    if (existing) {
      const cert = parseCert(existing.certPem);
      const wanted = new Set([certname, ...dnsAltNames]);
      const has = new Set(cert.subjectAltNames.map((s) => s.value));
      const fresh = cert.notAfter.getTime() - this.#clock.now() > 30 * DAY;
      const ours = cert.authorityKeyId === undefined || cert.authorityKeyId === this.#signer.cert.subjectKeyId;
      if (fresh && ours && !this.isRevoked(cert.serial) && [...wanted].every((n) => has.has(n))) return existing;
      this.#log.info({ certname }, 'issuing a new server certificate (names, issuer or expiry changed)');
    }
    const key = existing?.keyPem ? undefined : await generateKeyPair({ type: 'rsa', bits: this.config.keyLength });
    const keyPem = existing?.keyPem ?? key?.privateKeyPem ?? '';
    const publicKeyPem = key?.publicKeyPem ?? this.ssl.publicKeyOf(keyPem);
    const cert = await this.issueForKey({ certname, publicKeyPem, subjectAltNames: sans, cliAuth: false, replace: true });
    await this.ssl.write(certname, cert.pem, keyPem);
    return { certPem: cert.pem, keyPem };
  }

  // ---- revocation and cleaning ------------------------------------------------------------------

  /** Revokes the signed certificates of these names in one new CRL. */
  async revoke(names: string[]): Promise<{ revoked: string[]; missing: string[] }> {
    for (const n of names) validateCertname(n);
    return this.store.withLock(async () => {
      const serials: bigint[] = [];
      const revoked: string[] = [];
      const missing: string[] = [];
      for (const name of names) {
        const pem = await this.store.getSigned(name);
        if (pem === undefined) missing.push(name);
        else {
          serials.push(parseCert(pem).serial);
          revoked.push(name);
        }
      }
      if (serials.length > 0) await this.#writeCrlLocked(serials);
      if (revoked.length > 0) this.#log.info({ names: revoked }, 'revoked certificates');
      return { revoked, missing };
    });
  }

  async #writeCrlLocked(serials: bigint[]): Promise<void> {
    // Read from disk under the lock: another process may have revoked since we last looked.
    const chain = readCrlChain(await this.store.readFile('crl'), this.#signer);
    const text = await nextCrlText(chain, this.#signer, this.#clock, this.#crlSettings, serials);
    await this.store.writeCrl(text);
    if (this.config.crl.infra) await revokeInInfraCrl(this.#infraDeps, serials);
    await this.ssl.publishCa(this.#caBundlePem, text);
    this.#adoptCrl(text, await this.store.mtime('crl'));
  }

  /** Re-signs the CRL if it is within `crl.renewBefore` of its nextUpdate. Returns whether it did. */
  async renewCrlIfDue(): Promise<boolean> {
    await this.refresh();
    for (const c of foreignCrlsExpiringSoon(this.#chain, this.#clock.now(), this.#crlSettings)) {
      this.#log.warn({ issuer: c.issuerDn, nextUpdate: c.nextUpdate?.toISOString() }, 'a CRL in ca_crl.pem that ringmaster cannot re-sign expires soon; replace it');
    }
    const infraDue = this.config.crl.infra && (await infraCrlDue(this.#infraDeps));
    if (!crlNeedsRenewal(this.#chain.own, this.#clock.now(), this.#crlSettings) && !infraDue) return false;
    await this.store.withLock(async () => {
      const chain = readCrlChain(await this.store.readFile('crl'), this.#signer);
      if (!crlNeedsRenewal(chain.own, this.#clock.now(), this.#crlSettings)) {
        if (this.config.crl.infra && (await revokeInInfraCrl(this.#infraDeps, []))) this.#log.info('infra_crl.pem re-signed before its nextUpdate');
        return;
      }
      await this.#writeCrlLocked([]);
      this.#log.info({ nextUpdate: this.#chain.own.nextUpdate?.toISOString() }, 'CRL re-signed before its nextUpdate');
    });
    return true;
  }

  /** PUT /puppet-ca/v1/certificate_revocation_list: newer CRLs of the chain's external issuers (crl.ts). */
  async updateExternalCrls(text: string): Promise<{ replaced: ParsedCrl[]; kept: ParsedCrl[] }> {
    let incoming: ParsedCrl[];
    try {
      incoming = parseCrlBundle(text);
    } catch (err) {
      throw new RingmasterError('RM_CA_CRL_INVALID', `No valid CRLs submitted: ${errorMessage(err)}`);
    }
    if (incoming.length === 0) throw new RingmasterError('RM_CA_CRL_INVALID', 'No valid CRLs submitted.');
    return this.store.withLock(async () => {
      const chain = readCrlChain(await this.store.readFile('crl'), this.#signer);
      const caCerts = parseCertBundle(this.#caBundlePem);
      const r = await withExternalCrls(chain, incoming, caCerts, this.#clock.now());
      if (this.config.crl.infra) await updateInfraExternalCrls(this.#infraDeps, incoming, caCerts);
      if (r.replaced.length > 0) {
        await this.store.writeCrl(r.text);
        await this.ssl.publishCa(this.#caBundlePem, r.text);
        this.#adoptCrl(r.text, await this.store.mtime('crl'));
      }
      for (const c of r.replaced) this.#log.info({ issuer: c.issuerDn, number: c.number?.toString() }, 'CRL of an external issuer updated');
      for (const c of r.kept) this.#log.warn({ issuer: c.issuerDn }, 'CRLs were submitted for this issuer but none was newer than the one in the chain; keeping it');
      return { replaced: r.replaced, kept: r.kept };
    });
  }

  get crlNextUpdate(): Date | undefined {
    return this.#chain.own.nextUpdate;
  }

  get crlThisUpdate(): Date {
    return this.#chain.own.thisUpdate;
  }

  /** Certificates this process signed since it opened the CA (for metrics). */
  get signedCount(): number {
    return this.#signing.signed;
  }

  /** Deletes a name's certificate and request without revoking (puppetserver's DELETE certificate_status). */
  async remove(name: string): Promise<boolean> {
    validateCertname(name);
    return this.store.withLock(async () => {
      const a = await this.store.deleteSigned(name);
      const b = await this.store.deleteRequest(name);
      return a || b;
    });
  }

  /** Revokes (when signed and not yet revoked) then deletes certificates and requests. */
  async clean(names: string[]): Promise<{ cleaned: string[]; missing: string[] }> {
    for (const n of names) validateCertname(n);
    const toRevoke: string[] = [];
    for (const n of names) {
      const pem = await this.store.getSigned(n);
      if (pem !== undefined && !this.isRevoked(parseCert(pem).serial)) toRevoke.push(n);
    }
    if (toRevoke.length > 0) await this.revoke(toRevoke);
    return this.store.withLock(async () => {
      const cleaned: string[] = [];
      const missing: string[] = [];
      for (const n of names) {
        const a = await this.store.deleteSigned(n);
        const b = await this.store.deleteRequest(n);
        (a || b ? cleaned : missing).push(n);
      }
      return { cleaned, missing };
    });
  }

  // ---- status -----------------------------------------------------------------------------------

  async status(name: string): Promise<CertStatus | undefined> {
    validateCertname(name);
    await this.refresh();
    const signed = await this.store.getSigned(name);
    if (signed !== undefined) {
      const cert = parseCert(signed);
      return certStatus(name, cert, this.isRevoked(cert.serial));
    }
    const csr = await this.store.getRequest(name);
    return csr === undefined ? undefined : csrStatus(name, parseCsr(csr));
  }

  async list(state?: CertState): Promise<CertStatus[]> {
    await this.refresh();
    const out: CertStatus[] = [];
    if (state === undefined || state === 'requested') {
      for (const name of await this.store.listRequests()) {
        const pem = await this.store.getRequest(name);
        if (pem !== undefined) out.push(csrStatus(name, parseCsr(pem)));
      }
    }
    if (state !== 'requested') {
      for (const name of await this.store.listSigned()) {
        const pem = await this.store.getSigned(name);
        if (pem === undefined) continue;
        const cert = parseCert(pem);
        const s = certStatus(name, cert, this.isRevoked(cert.serial));
        if (state === undefined || s.state === state) out.push(s);
      }
    }
    return out;
  }

  expirations(): { 'ca-certs': Record<string, string>; crls: Record<string, string> } {
    const caCerts: Record<string, string> = {};
    for (const c of parseCertBundle(this.#caBundlePem)) caCerts[c.subjectDn] = formatPuppetDate(c.notAfter);
    const crls: Record<string, string> = {};
    for (const c of this.#chain.crls) if (c.nextUpdate) crls[c.issuerDn] = formatPuppetDate(c.nextUpdate);
    return { 'ca-certs': caCerts, crls };
  }

  async inventory(): Promise<InventoryEntry[]> {
    return this.store.readInventory();
  }
}

export function asCaError(err: unknown): RingmasterError {
  return err instanceof RingmasterError ? err : new RingmasterError('RM_INTERNAL', 'internal CA error', { cause: err });
}
