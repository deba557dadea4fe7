import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isRingmasterError } from '../lib/errors.ts';
import { resolveConfig } from '../config/load.ts';
import type { ReloadStatus } from '../runtime-files.ts';
import type { AdminCall } from './api.ts';
import { createConfigApi, redact, redacted } from './config-api.ts';

const call = (method: string, path: string, body?: unknown): AdminCall => ({
  method, segments: path.split('/').slice(1), json: () => Promise.resolve(body), signal: new AbortController().signal, who: 'test', query: new URLSearchParams(),
});

test('redact: secret-named values and URL credentials go; everything else stays', () => {
  const out = redact({ admin: { tokenFile: '/etc/t', allow: ['ops'] }, ca: { keyLength: 4096, autosign: { tokens: true } }, x: { password: 'p', apiKey: 'k', privateKey: 'pk', url: 'https://u:pw@host/x', plain: 'https://host/' }, missing: undefined }) as Record<string, Record<string, unknown>>;
  assert.deepEqual(out, { admin: { tokenFile: redacted, allow: ['ops'] }, ca: { keyLength: 4096, autosign: { tokens: true } }, x: { password: redacted, apiKey: redacted, privateKey: redacted, url: `https://${redacted}@host/x`, plain: 'https://host/' } });
});

test('GET /admin/v1/config: the running configuration, with admin.tokenFile redacted', async () => {
  const config = resolveConfig({ admin: { tokenFile: 'secret-token' } }, { stateDir: '/tmp/x' });
  const api = createConfigApi({ config: () => config });
  const answer = await api(call('GET', '/admin/v1/config'));
  assert.equal(answer.status, 200);
  const body = answer.body as { config: { admin: { tokenFile: string }; stateDir: string } };
  assert.equal(body.config.admin.tokenFile, redacted);
  assert.equal(body.config.stateDir, '/tmp/x');
  assert.ok(!JSON.stringify(body).includes('secret-token'));
});

test('POST /admin/v1/reload: the serve reload outcome, 500 RM_RELOAD_FAILED when refused, unavailable without one', async () => {
  const config = resolveConfig({}, { stateDir: '/tmp/x' });
  let next: ReloadStatus = { generation: 1, ok: true, at: '2026-01-01T00:00:00.000Z', message: 'routes and pools applied', needsRestart: [] };
  const api = createConfigApi({ config: () => config, reload: () => Promise.resolve(next) });
  assert.deepEqual(await api(call('POST', '/admin/v1/reload')), { status: 200, body: { reload: next } });
  next = { ...next, generation: 2, ok: false, message: 'pools.x: bad' };
  const refused = await api(call('POST', '/admin/v1/reload'));
  assert.equal(refused.status, 500);
  assert.deepEqual((refused.body as { error: unknown }).error, { code: 'RM_RELOAD_FAILED', message: 'pools.x: bad' });
  await assert.rejects(api(call('POST', '/admin/v1/reload', { force: true })), (e) => isRingmasterError(e, 'RM_ADMIN_BAD_REQUEST'));
  await assert.rejects(api(call('GET', '/admin/v1/reload')), (e) => isRingmasterError(e, 'RM_METHOD_NOT_ALLOWED'));
  await assert.rejects(createConfigApi({ config: () => config })(call('POST', '/admin/v1/reload')), (e) => isRingmasterError(e, 'RM_ADMIN_UNAVAILABLE'));
});
