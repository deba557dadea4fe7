import { RingmasterError } from '../lib/errors.ts';
import type { Clock } from '../lib/clock.ts';
import { parseCrlBundle, createCrl, verifyCrlSignature, type ParsedCert, type ParsedCrl, type Signer } from './x509.ts';

// The CA's CRL is the first CRL in ca_crl.pem whose issuer is the signing certificate; any others
// (an imported root's, say) are kept as they are, in their place, because agents with
// certificate_revocation=chain need one CRL per CA in the chain.

export type CrlSettings = { ttlMs: number; renewBeforeMs: number };

export type CrlChain = { crls: ParsedCrl[]; own: ParsedCrl; ownIndex: number };

export function readCrlChain(text: string, signer: Signer): CrlChain {
  const crls = parseCrlBundle(text);
  const ownIndex = crls.findIndex((c) => c.issuerDn === signer.cert.subjectDn && (c.authorityKeyId === undefined || signer.cert.subjectKeyId === undefined || c.authorityKeyId === signer.cert.subjectKeyId));
  const own = crls[ownIndex];
  if (!own) throw new RingmasterError('RM_CA_DIR_INVALID', `holds no CRL issued by ${signer.cert.subjectDn}`);
  return { crls, own, ownIndex };
}

/** Signs the next CRL of the chain with extra revoked serials; returns the new ca_crl.pem text. */
export async function nextCrlText(chain: CrlChain, signer: Signer, clock: Clock, settings: CrlSettings, revoke: bigint[]): Promise<string> {
  const now = new Date(clock.now());
  const known = new Set(chain.own.revoked.map((r) => r.serial));
  const added = [...new Set(revoke)].filter((s) => !known.has(s)).map((serial) => ({ serial, date: now, reason: 1 }));
  const pem = await createCrl({
    signer,
    number: (chain.own.number ?? 0n) + 1n,
    thisUpdate: now,
    nextUpdate: new Date(clock.now() + settings.ttlMs),
    revoked: [...chain.own.revoked, ...added],
  });
  const blocks = chain.crls.map((c) => c.pem.trim());
  blocks[chain.ownIndex] = pem.trim();
  return `${blocks.join('\n')}\n`;
}

export function crlNeedsRenewal(crl: ParsedCrl, now: number, settings: CrlSettings): boolean {
  return crl.nextUpdate === undefined || crl.nextUpdate.getTime() - now < settings.renewBeforeMs;
}

export function revokedSerials(chain: CrlChain): Set<bigint> {
  return new Set(chain.own.revoked.map((r) => r.serial));
}

/** The CRLs in the chain that expire soon and that ringmaster cannot re-sign (not its key). */
export function foreignCrlsExpiringSoon(chain: CrlChain, now: number, settings: CrlSettings): ParsedCrl[] {
  return chain.crls.filter((c, i) => i !== chain.ownIndex && c.nextUpdate !== undefined && c.nextUpdate.getTime() - now < settings.renewBeforeMs);
}

/**
 * The CRL chain with newer CRLs of its external issuers (PUT /puppet-ca/v1/certificate_revocation_list),
 * as puppetserver takes them: each CRL in the chain other than the CA's own is replaced by the one
 * with the highest CRL number among it and the submitted CRLs with the same authority key
 * identifier; submitted CRLs of issuers that have no CRL in the chain are ignored, and the CA's
 * own CRL is never replaced. The new chain must hold no delta CRL, every CRL must verify against
 * its issuer in `caCerts` and be current at `now`, and no certificate of `caCerts` may be revoked
 * by it. Refusals are RM_CA_CRL_INVALID, with puppetserver's messages.
 */
export async function withExternalCrls(chain: CrlChain, incoming: ParsedCrl[], caCerts: ParsedCert[], now: number): Promise<{ text: string; replaced: ParsedCrl[]; kept: ParsedCrl[] }> {
  const byKeyId = new Map<string, ParsedCrl[]>();
  for (const crl of incoming) {
    if (crl.authorityKeyId === undefined) throw invalidCrls('One or more submitted CRLs do not have an authority key identifier.');
    const same = byKeyId.get(crl.authorityKeyId) ?? [];
    if (!same.some((c) => c.pem === crl.pem)) same.push(crl);
    byKeyId.set(crl.authorityKeyId, same);
  }
  const replaced: ParsedCrl[] = [];
  const kept: ParsedCrl[] = [];
  const next = chain.crls.map((current, i) => {
    const offered = i === chain.ownIndex || current.authorityKeyId === undefined ? undefined : byKeyId.get(current.authorityKeyId);
    if (!offered) return current;
    const newest = newestOf([current, ...offered.filter((c) => c.pem !== current.pem)]);
    if (newest === current) kept.push(current);
    else replaced.push(newest);
    return newest;
  });
  await validateChain(next, caCerts, now);
  return { text: `${next.map((c) => c.pem.trim()).join('\n')}\n`, replaced, kept };
}

function newestOf(crls: ParsedCrl[]): ParsedCrl {
  const numberOf = (c: ParsedCrl) => c.number ?? -1n;
  const top = crls.reduce((a, b) => (numberOf(b) > numberOf(a) ? b : a));
  if (crls.filter((c) => numberOf(c) === numberOf(top)).length > 1) throw invalidCrls('Could not determine newest CRL.');
  return top;
}

async function validateChain(crls: ParsedCrl[], caCerts: ParsedCert[], now: number): Promise<void> {
  if (crls.some((c) => c.delta)) throw invalidCrls('Cannot support delta CRL.');
  for (const crl of crls) {
    const issuer = caCerts.find((c) => c.subjectDn === crl.issuerDn && (crl.authorityKeyId === undefined || c.subjectKeyId === undefined || c.subjectKeyId === crl.authorityKeyId));
    if (!issuer || !(await verifyCrlSignature(crl, issuer))) throw invalidCrls(`Invalid certs and/or CRLs: the CRL of ${crl.issuerDn} does not verify against a certificate of the CA chain`);
    if (crl.thisUpdate.getTime() > now || (crl.nextUpdate !== undefined && crl.nextUpdate.getTime() < now)) {
      throw invalidCrls(`Invalid certs and/or CRLs: the CRL of ${crl.issuerDn} is not current (thisUpdate ${crl.thisUpdate.toISOString()}, nextUpdate ${crl.nextUpdate?.toISOString() ?? 'none'})`);
    }
  }
  for (const cert of caCerts) {
    const crl = crls.find((c) => c.issuerDn === cert.issuerDn && (c.authorityKeyId === undefined || cert.authorityKeyId === undefined || c.authorityKeyId === cert.authorityKeyId));
    if (crl?.revoked.some((r) => r.serial === cert.serial)) throw invalidCrls(`Invalid certs and/or CRLs: ${cert.subjectDn} of the CA chain is revoked by the CRL of ${crl.issuerDn}`);
  }
}

function invalidCrls(message: string): RingmasterError {
  return new RingmasterError('RM_CA_CRL_INVALID', message);
}
