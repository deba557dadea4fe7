import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, resolveConfig } from './load.ts';
import { isRingmasterError } from '../lib/errors.ts';
import { renderConfigReference } from './reference.ts';

test('an empty configuration gives the embedded default under ./var', () => {
  const c = resolveConfig({}, { cwd: '/srv/rm' });
  assert.equal(c.stateDir, '/srv/rm/var');
  assert.equal(c.ca.dir, '/srv/rm/var/ca');
  assert.equal(c.listeners[0]?.port, 8140);
  assert.equal(c.ca.keyLength, 4096);
  assert.equal(c.ca.certTtl, 5 * 365 * 86400_000);
  assert.equal(c.ca.caTtl, 15 * 365 * 86400_000);
  assert.ok(c.server.dnsAltNames.includes('puppet'));
});

test('--state-dir wins over the file, and the file\'s stateDir is relative to the file', () => {
  assert.equal(resolveConfig({ stateDir: 'state' }, { configFile: '/etc/rm/rm.yaml', cwd: '/' }).stateDir, '/etc/rm/state');
  assert.equal(resolveConfig({ stateDir: 'state' }, { configFile: '/etc/rm/rm.yaml', stateDir: 'other', cwd: '/tmp' }).stateDir, '/tmp/other');
});

test('every problem is reported at once, each with its path', () => {
  try {
    resolveConfig({ listeners: [{ port: 70000 }, { address: 5 }], ca: { certTtl: 'forever', autosign: { allow: 'x' }, nope: true }, extra: 1 });
    assert.fail('expected RM_CONFIG_INVALID');
  } catch (err) {
    assert.ok(isRingmasterError(err, 'RM_CONFIG_INVALID'));
    const problems = (err.details?.problems ?? []) as { path: string }[];
    const paths = problems.map((p) => p.path).sort();
    assert.deepEqual(paths, ['(root)', 'ca', 'ca.autosign.allow', 'ca.certTtl', 'listeners[0].port', 'listeners[1].address'].sort());
  }
});

test('an external CA: needs ca.enabled false and a configured pool; its caFile is relative to the file', () => {
  const problems = (input: unknown): string[] => {
    try {
      resolveConfig(input);
      return [];
    } catch (err) {
      assert.ok(isRingmasterError(err, 'RM_CONFIG_INVALID'));
      return ((err.details?.problems ?? []) as { path: string; message: string }[]).map((p) => `${p.path}: ${p.message}`);
    }
  };
  assert.deepEqual(problems({ ca: { enabled: false } }), ['ca.external: ca.enabled: false needs ca.external (the pool of the external CA and its certificate file)']);
  assert.deepEqual(problems({ ca: { enabled: false, external: { pool: 'puppetca', caFile: 'ca.pem' } } }), ['ca.external.pool: no pool named puppetca']);
  assert.deepEqual(problems({ ca: { external: { pool: 'ca', caFile: 'ca.pem' } }, pools: { ca: { members: [] } } }), ['ca.external: ca.external is only used with ca.enabled: false']);
  const c = resolveConfig({ ca: { enabled: false, external: { pool: 'ca', caFile: 'ssl/ca.pem' } }, pools: { ca: { members: [{ name: 'ca1', url: 'https://puppet-ca:8140' }] } } }, { configFile: '/etc/rm/rm.yaml', cwd: '/' });
  assert.equal(c.ca.external?.caFile, '/etc/rm/ssl/ca.pem');
  assert.equal(c.ca.external?.crlRefresh, 5 * 60_000);
});

test('a file that is not YAML is refused with RM_CONFIG_UNREADABLE and its position', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'rm-config-'));
  const file = join(dir, 'bad.yaml');
  await writeFile(file, 'listeners:\n  - port: [1,\n');
  await assert.rejects(loadConfig({ configFile: file }), (err: unknown) => isRingmasterError(err, 'RM_CONFIG_UNREADABLE') && /line/.test(err.message));
  await assert.rejects(loadConfig({ configFile: join(dir, 'missing.yaml') }), (err: unknown) => isRingmasterError(err, 'RM_CONFIG_UNREADABLE'));
});

test('the complete example in docs/configuration.md is valid, and the reference table is the generated one', async () => {
  const doc = await readFile(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
  const example = /```yaml\n([\s\S]*?)```/.exec(doc)?.[1];
  assert.ok(example, 'docs/configuration.md has a yaml example');
  const { parse } = await import('yaml');
  const c = resolveConfig(parse(example), { cwd: '/' });
  assert.equal(c.ca.autosign.executable?.timeout, 10_000);
  assert.ok(doc.includes(renderConfigReference()), 'docs/configuration.md reference is stale: run npm run docs:config');
});
