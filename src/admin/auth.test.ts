import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isRingmasterError } from '../lib/errors.ts';
import { silentLog } from '../observability/log.ts';
import { oids } from '../ca/oids.ts';
import type { ParsedCert } from '../ca/x509.ts';
import type { Peer } from '../listener/peer.ts';
import { createAdminAuth, tokenFileOf } from './auth.ts';

// Who the admin API admits. The TLS verification itself (chain, CRL) is OpenSSL's and is covered
// through a real listener in test/integration/admin.test.ts; here: the decision on a verified peer.

const verified = (certname: string, cliAuth = false): Peer => ({
  kind: 'verified',
  certname,
  // Only the extensions matter to the decision.
  cert: { extensions: cliAuth ? [{ oid: oids.ppCliAuth, critical: false, der: new Uint8Array(), text: 'true' }] : [] } as unknown as ParsedCert,
});
const none: Peer = { kind: 'none' };
const code = (c: string) => (err: unknown) => isRingmasterError(err) && err.code === c;

const tokens = new Map([['/etc/rm/token', '  s3cret-token\n'], ['/etc/rm/empty', '\n']]);
const readToken = (path: string) => {
  const t = tokens.get(path);
  return t === undefined ? Promise.reject(new Error('ENOENT')) : Promise.resolve(t);
};
const auth = (tokenFile?: string) => createAdminAuth({ ownCertname: 'ringmaster.example.com', allow: ['ops.example.com', '*.admins.example.com'], tokenFile }, silentLog, readToken);

test("ringmaster's own certificate, admin.allow (globs) and pp_cli_auth are admitted", async () => {
  const a = auth();
  assert.equal(await a({ peer: verified('ringmaster.example.com'), authorization: undefined }), 'ringmaster.example.com');
  assert.equal(await a({ peer: verified('ops.example.com'), authorization: undefined }), 'ops.example.com');
  assert.equal(await a({ peer: verified('jo.admins.example.com'), authorization: undefined }), 'jo.admins.example.com');
  assert.equal(await a({ peer: verified('operator.example.com', true), authorization: undefined }), 'operator.example.com');
});

test('an agent certificate is forbidden, no credential at all needs authentication, a rejected certificate is refused', async () => {
  const a = auth('/etc/rm/token');
  await assert.rejects(a({ peer: verified('agent1.example.com'), authorization: undefined }), code('RM_AUTH_FORBIDDEN'));
  await assert.rejects(a({ peer: none, authorization: undefined }), code('RM_ADMIN_AUTH_REQUIRED'));
  await assert.rejects(a({ peer: { kind: 'rejected', reason: 'certificate revoked', certname: 'ringmaster.example.com' }, authorization: 'Bearer s3cret-token' }), code('RM_TLS_PEER_REJECTED'));
});

test('a bearer token equal to the trimmed file content is admitted; anything else is RM_ADMIN_TOKEN_INVALID', async () => {
  const a = auth('/etc/rm/token');
  assert.equal(await a({ peer: none, authorization: 'Bearer s3cret-token' }), 'token');
  assert.equal(await a({ peer: verified('agent1.example.com'), authorization: 'bearer s3cret-token' }), 'token');
  for (const authorization of ['Bearer s3cret-toke', 'Bearer s3cret-token-and-more', 'Basic czNjcmV0', 'Bearer ']) {
    await assert.rejects(a({ peer: none, authorization }), code('RM_ADMIN_TOKEN_INVALID'), authorization);
  }
  await assert.rejects(auth()({ peer: none, authorization: 'Bearer s3cret-token' }), code('RM_ADMIN_TOKEN_INVALID'), 'no tokenFile: tokens are not accepted');
  await assert.rejects(auth('/etc/rm/empty')({ peer: none, authorization: 'Bearer ' }), code('RM_ADMIN_TOKEN_INVALID'), 'an empty file admits nobody');
  await assert.rejects(auth('/etc/rm/missing')({ peer: none, authorization: 'Bearer s3cret-token' }), code('RM_ADMIN_TOKEN_INVALID'));
});

test('tokenFile is relative to the config file', () => {
  assert.equal(tokenFileOf({ admin: { enabled: true, address: '127.0.0.1', port: 8150, allow: [], tokenFile: 'admin-token' }, configFile: '/etc/ringmaster/ringmaster.yaml' }), '/etc/ringmaster/admin-token');
  assert.equal(tokenFileOf({ admin: { enabled: true, address: '127.0.0.1', port: 8150, allow: [] }, configFile: undefined }), undefined);
});
