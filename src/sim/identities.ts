import type { CertificateAuthority } from '../ca/authority.ts';
import { generateKeyPair } from '../ca/x509.ts';

// Agent identities for a simulated fleet. Thousands of agents share a smaller set of certificates
// (agent i presents identity i mod k): every certificate is as real as an agent's, issued by the
// CA the front door trusts, but making thousands of keys would only slow the start. EC P-256 keys
// take a fraction of a millisecond each, and ringmaster's CA (RSA) signs them like any other.

export type SimIdentity = { certname: string; cert: string; key: string };

/** Upper bound on certificates made for one fleet. */
export const maxIdentities = 200;

export async function issueSimIdentities(ca: CertificateAuthority, count: number, options: { domain?: string } = {}): Promise<SimIdentity[]> {
  const domain = options.domain ?? 'sim.test';
  const n = Math.max(1, Math.min(maxIdentities, Math.floor(count)));
  return Promise.all(
    Array.from({ length: n }, async (_, k) => {
      const certname = `agent-${k}.${domain}`;
      const pair = await generateKeyPair({ type: 'ec', curve: 'P-256' });
      const cert = await ca.issueForKey({ certname, publicKeyPem: pair.publicKeyPem, subjectAltNames: [], cliAuth: false, replace: false });
      return { certname, cert: cert.pem, key: pair.privateKeyPem };
    }),
  );
}
