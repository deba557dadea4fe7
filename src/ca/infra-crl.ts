import type { Clock } from '../lib/clock.ts';
import type { CaStore } from './store.ts';
import { crlNeedsRenewal, nextCrlText, readCrlChain, withExternalCrls, type CrlSettings } from './crl.ts';
import { createCrl, parseCert, type ParsedCert, type ParsedCrl, type Signer } from './x509.ts';

// The infrastructure CRL (puppetserver's enable-infra-crl, `ca.crl.infra`): infra_crl.pem holds
// only the revocations of the certnames listed in infra_inventory.txt (compilers, ringmaster
// itself), with the chain's other CRLs as in ca_crl.pem. It is what clients download from
// /puppet-ca/v1/certificate_revocation_list: agents only check servers' certificates, and a
// fleet's full CRL can run to megabytes. The listeners keep checking agents against the full CRL.
// Every function here runs inside the CA directory's lock.

export type InfraDeps = { store: CaStore; signer: Signer; clock: Clock; settings: CrlSettings };

/** The serials of the current certificates of the certnames in infra_inventory.txt. */
export async function infraSerials(store: CaStore): Promise<Set<bigint>> {
  const serials = new Set<bigint>();
  for (const name of await store.readInfraInventory()) {
    const pem = await store.getSigned(name).catch(() => undefined);
    if (pem !== undefined) serials.add(parseCert(pem).serial);
  }
  return serials;
}

/** Creates infra_crl.pem when it is missing, from the full CRL's revocations of infrastructure certificates. */
export async function ensureInfraCrl(d: InfraDeps): Promise<boolean> {
  if (await d.store.hasInfraCrl()) return false;
  const full = readCrlChain(await d.store.readFile('crl'), d.signer);
  const infra = await infraSerials(d.store);
  const now = d.clock.now();
  const own = await createCrl({ signer: d.signer, number: 0n, thisUpdate: new Date(now), nextUpdate: new Date(now + d.settings.ttlMs), revoked: full.own.revoked.filter((r) => infra.has(r.serial)) });
  const blocks = full.crls.map((c) => c.pem.trim());
  blocks[full.ownIndex] = own.trim();
  await d.store.writeInfraCrl(`${blocks.join('\n')}\n`);
  return true;
}

/**
 * After `serials` were revoked in the full CRL: those of infrastructure certificates are revoked in
 * infra_crl.pem too. With none, it is re-signed only when due. Returns whether it was written.
 */
export async function revokeInInfraCrl(d: InfraDeps, serials: readonly bigint[]): Promise<boolean> {
  const chain = readCrlChain(await d.store.readFile('infraCrl'), d.signer);
  const infra = serials.length === 0 ? new Set<bigint>() : await infraSerials(d.store);
  const add = serials.filter((s) => infra.has(s));
  if (add.length === 0 && !crlNeedsRenewal(chain.own, d.clock.now(), d.settings)) return false;
  await d.store.writeInfraCrl(await nextCrlText(chain, d.signer, d.clock, d.settings, add));
  return true;
}

/** Whether infra_crl.pem is within `renewBefore` of its nextUpdate. */
export async function infraCrlDue(d: InfraDeps): Promise<boolean> {
  return crlNeedsRenewal(readCrlChain(await d.store.readFile('infraCrl'), d.signer).own, d.clock.now(), d.settings);
}

/** PUT certificate_revocation_list applies to infra_crl.pem's external CRLs as to the full chain's. */
export async function updateInfraExternalCrls(d: InfraDeps, incoming: ParsedCrl[], caCerts: ParsedCert[]): Promise<void> {
  const chain = readCrlChain(await d.store.readFile('infraCrl'), d.signer);
  const r = await withExternalCrls(chain, incoming, caCerts, d.clock.now());
  if (r.replaced.length > 0) await d.store.writeInfraCrl(r.text);
}
