import { RingmasterError } from '../lib/errors.ts';
import type { Clock } from '../lib/clock.ts';
import { parseCrlBundle, createCrl, type ParsedCrl, type Signer } from './x509.ts';

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
