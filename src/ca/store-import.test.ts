import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CaStore } from './store.ts';
import { importCaDirectory } from './store-import.ts';
import { isRingmasterError } from '../lib/errors.ts';
import type { ErrorCode } from '../lib/error-codes.ts';
import {
  buildLeftovers,
  fakePuppetserverCaDir,
  pem,
  puppetserverCaSetup,
  puppetserverInstalled,
  tempDir,
} from '../../test/helpers/store-fixtures.ts';

const mode = async (path: string): Promise<number> => (await stat(path)).mode & 0o777;
const fails = (code: ErrorCode, text?: string) => (err: unknown) =>
  isRingmasterError(err, code) && (text === undefined || err.message.includes(text));

test('importCaDirectory copies a puppetserver CA directory', async (t) => {
  const root = await tempDir(t);
  const source = await fakePuppetserverCaDir(join(root, 'src'));
  const result = await importCaDirectory(source, join(root, 'state', 'ca'));
  assert.deepEqual(result, { files: 10, signed: 3, requests: 1 });
  const store = new CaStore(join(root, 'state', 'ca'));
  for (const name of await readdir(source)) {
    if (name === 'signed' || name === 'requests') continue;
    assert.equal(await readFile(join(store.dir, name), 'utf8'), await readFile(join(source, name), 'utf8'), name);
  }
  assert.equal(await mode(join(store.dir, 'ca_key.pem')), 0o640);
  assert.equal(await mode(store.dir), 0o750);
  assert.equal(await store.readNextSerial(), 4n);
  assert.equal((await store.readInventory()).length, 3);
  assert.deepEqual(await store.listSigned(), ['agent1.example.com', 'agent2.example.com', 'puppet.example.com']);
  assert.deepEqual(await store.listRequests(), ['agent3.example.com']);
  assert.deepEqual(await store.withLock(() => store.repair()), []);
  await assert.rejects(importCaDirectory(source, store.dir), fails('RM_CA_DIR_EXISTS'));
  await assert.rejects(importCaDirectory(source, join(source, 'x')), fails('RM_CA_IMPORT_INVALID'));
  assert.deepEqual(await buildLeftovers(join(root, 'state')), []);
});

test('importCaDirectory names each missing or empty required file and leaves nothing', async (t) => {
  const root = await tempDir(t);
  for (const missing of ['ca_crt.pem', 'ca_key.pem', 'ca_crl.pem', 'serial']) {
    const source = await fakePuppetserverCaDir(join(root, `without-${missing}`), [missing]);
    const target = join(root, 'state', `ca-${missing}`);
    await assert.rejects(importCaDirectory(source, target), fails('RM_CA_IMPORT_INVALID', `${missing} is missing`));
    assert.equal(existsSync(target), false);
    await writeFile(join(source, missing), '');
    await assert.rejects(importCaDirectory(source, target), fails('RM_CA_IMPORT_INVALID', `${missing} is empty`));
    assert.equal(existsSync(target), false);
  }
  const garbled = await fakePuppetserverCaDir(join(root, 'garbled'));
  await writeFile(join(garbled, 'serial'), 'twelve\n');
  await assert.rejects(importCaDirectory(garbled, join(root, 'state', 'g')), fails('RM_CA_IMPORT_INVALID', 'serial does not hold'));
  await assert.rejects(importCaDirectory(join(root, 'nowhere'), join(root, 'state', 'n')), fails('RM_CA_IMPORT_INVALID'));
  assert.deepEqual(await readdir(join(root, 'state')).catch(() => []), []);
});

test('importCaDirectory creates only an empty inventory and the folders when absent', async (t) => {
  const root = await tempDir(t);
  const source = await fakePuppetserverCaDir(join(root, 'src'), ['ca_pub.pem', 'inventory.txt', 'requests/agent3.example.com.pem']);
  await writeFile(join(source, '.lock'), '123\n');
  const target = join(root, 'ca');
  assert.deepEqual(await importCaDirectory(source, target), { files: 8, signed: 3, requests: 0 });
  assert.equal(await readFile(join(target, 'inventory.txt'), 'utf8'), '');
  assert.equal(existsSync(join(target, 'ca_pub.pem')), false);
  assert.equal(existsSync(join(target, '.lock')), false);
});

test('a CA directory made by `puppetserver ca setup` imports and works', { skip: !puppetserverInstalled && 'puppetserver is not installed', timeout: 180_000 }, async (t) => {
  const root = await tempDir(t);
  const cadir = await puppetserverCaSetup(join(root, 'puppet'), 'puppet.example.com');
  assert.equal(await readFile(join(cadir, 'serial'), 'utf8'), '002\n');
  const result = await importCaDirectory(cadir, join(root, 'ca'));
  assert.deepEqual(result, { files: 10, signed: 1, requests: 0 });
  const store = new CaStore(join(root, 'ca'));
  assert.deepEqual(
    (await readdir(store.dir)).sort(),
    ['ca_crl.pem', 'ca_crt.pem', 'ca_key.pem', 'ca_pub.pem', 'infra_crl.pem', 'infra_inventory.txt', 'infra_serials', 'inventory.txt', 'requests', 'root_key.pem', 'serial', 'signed'],
  );
  assert.equal(await store.readNextSerial(), 2n);
  const inventory = await store.readInventory();
  assert.equal(inventory.length, 1);
  assert.equal(inventory[0]?.serial, 1n);
  assert.equal(inventory[0]?.subject, '/CN=puppet.example.com');
  assert.deepEqual(await store.listSigned(), ['puppet.example.com']);
  assert.match(await store.readFile('cert'), /^(-----BEGIN CERTIFICATE-----[^]+?-----END CERTIFICATE-----\n){2}$/);
  assert.deepEqual(await store.withLock(() => store.repair()), []);
  assert.deepEqual(await store.withLock(() => store.allocateSerials(2)), [2n, 3n]);
  assert.equal(await readFile(join(store.dir, 'serial'), 'utf8'), '0004');
  await store.withLock(() => store.putRequest('agent1.example.com', pem('CERTIFICATE REQUEST', 'a')));
  assert.deepEqual(await store.listRequests(), ['agent1.example.com']);
});
