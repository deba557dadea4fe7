import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isRingmasterError } from '../lib/errors.ts';
import { readCrlChain, withExternalCrls } from './crl.ts';
import { createCaCertificate, createCrl, generateKeyPair, loadSigner, parseCert, parseCrl, type RevokedEntry, type Signer } from './x509.ts';

// PUT certificate_revocation_list's rules, on a chain of two CAs: A, whose CRL is the CA's own,
// and B, an external issuer whose CRL ringmaster can only replace with a newer one B signed.

const day = 86_400_000;
const now = Date.UTC(2026, 10, 22);

async function ca(name: string): Promise<{ signer: Signer; pem: string }> {
  const keyPair = await generateKeyPair({ type: 'rsa', bits: 2048 });
  const pem = await createCaCertificate({ commonName: name, keyPair, serial: 1n, notBefore: new Date(now - day), notAfter: new Date(now + 365 * day) });
  return { signer: await loadSigner(pem, keyPair.privateKeyPem), pem };
}

const crlOf = (signer: Signer, number: bigint, o: { revoked?: RevokedEntry[]; thisUpdate?: number; nextUpdate?: number } = {}) =>
  createCrl({ signer, number, thisUpdate: new Date(o.thisUpdate ?? now - day), nextUpdate: new Date(o.nextUpdate ?? now + 30 * day), revoked: o.revoked ?? [] });

const [a, b, c] = await Promise.all([ca('Puppet CA: a.test'), ca('Org Root CA'), ca('Somebody else')]);
const certs = [parseCert(a.pem), parseCert(b.pem)];
const ownCrl = await crlOf(a.signer, 4n);
const rootCrl = await crlOf(b.signer, 7n);
const chain = readCrlChain(`${ownCrl}${rootCrl}`, a.signer);
const refused = (message: RegExp) => (err: unknown) => isRingmasterError(err, 'RM_CA_CRL_INVALID') && message.test((err as Error).message);

test('a newer CRL of the external issuer replaces its CRL in place; the CA\'s own CRL is kept as it is', async () => {
  const newer = await crlOf(b.signer, 8n, { revoked: [{ serial: 99n, date: new Date(now) }] });
  const r = await withExternalCrls(chain, [parseCrl(newer)], certs, now);
  assert.equal(r.text, `${ownCrl.trim()}\n${newer.trim()}\n`);
  assert.deepEqual(r.replaced.map((x) => x.number), [8n]);
  assert.deepEqual(r.kept, []);
});

test('an older or equal CRL is not taken; neither is a newer CRL of the CA itself or of an issuer outside the chain', async () => {
  const older = parseCrl(await crlOf(b.signer, 6n));
  const ownNewer = parseCrl(await crlOf(a.signer, 40n, { revoked: [{ serial: 2n, date: new Date(now) }] }));
  const stranger = parseCrl(await crlOf(c.signer, 50n));
  const r = await withExternalCrls(chain, [older, parseCrl(rootCrl), ownNewer, stranger], certs, now);
  assert.equal(r.text, `${ownCrl.trim()}\n${rootCrl.trim()}\n`);
  assert.deepEqual(r.replaced, []);
  assert.deepEqual(r.kept.map((x) => x.issuerDn), [certs[1]!.subjectDn]);
});

test('two different CRLs with the same highest number are refused: which is newest cannot be told', async () => {
  const one = parseCrl(await crlOf(b.signer, 9n));
  const other = parseCrl(await crlOf(b.signer, 9n, { revoked: [{ serial: 5n, date: new Date(now) }] }));
  await assert.rejects(withExternalCrls(chain, [one, other], certs, now), refused(/^Could not determine newest CRL\.$/));
  // The same CRL twice is one CRL.
  assert.equal((await withExternalCrls(chain, [one, one], certs, now)).replaced.length, 1);
});

test('a CRL whose signature does not verify, one that is not current, and one that revokes a CA of the chain are refused', async () => {
  const good = await crlOf(b.signer, 10n);
  const der = Buffer.from(good.replace(/-----[^-]+-----|\s/g, ''), 'base64');
  der.writeUInt8(der.readUInt8(der.length - 1) ^ 0x01, der.length - 1);
  const forged = `-----BEGIN X509 CRL-----\n${der.toString('base64').replace(/.{64}/g, '$&\n')}\n-----END X509 CRL-----\n`;
  await assert.rejects(withExternalCrls(chain, [parseCrl(forged)], certs, now), refused(/^Invalid certs and\/or CRLs: the CRL of .*Org Root CA does not verify/));
  const expired = parseCrl(await crlOf(b.signer, 11n, { thisUpdate: now - 30 * day, nextUpdate: now - day }));
  await assert.rejects(withExternalCrls(chain, [expired], certs, now), refused(/not current/));
  const future = parseCrl(await crlOf(b.signer, 12n, { thisUpdate: now + day }));
  await assert.rejects(withExternalCrls(chain, [future], certs, now), refused(/not current/));
  const revokesItself = parseCrl(await crlOf(b.signer, 13n, { revoked: [{ serial: certs[1]!.serial, date: new Date(now) }] }));
  await assert.rejects(withExternalCrls(chain, [revokesItself], certs, now), refused(/Org Root CA of the CA chain is revoked/));
});
