import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, mkdir, readFile, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CaStore, type InventoryEntry } from './store.ts';
import { isRingmasterError } from '../lib/errors.ts';
import type { ErrorCode } from '../lib/error-codes.ts';
import {
  buildLeftovers,
  deadPid,
  fakeCaFiles,
  pem,
  runAllocator,
  startHolder,
  tempDir,
} from '../../test/helpers/store-fixtures.ts';

const mode = async (path: string): Promise<number> => (await stat(path)).mode & 0o777;
const fails = (code: ErrorCode, text?: string) => (err: unknown) =>
  isRingmasterError(err, code) && (text === undefined || err.message.includes(text));

async function newStore(t: Parameters<typeof tempDir>[0], nextSerial = 1n): Promise<CaStore> {
  const store = new CaStore(join(await tempDir(t), 'ca'), { lockTimeoutMs: 20_000 });
  await store.initialize(fakeCaFiles(nextSerial));
  return store;
}

function entry(serial: bigint, name = `agent${serial}.example.com`): InventoryEntry {
  return { serial, notBefore: new Date('2024-05-01T12:00:00Z'), notAfter: new Date('2029-05-01T12:00:00Z'), subject: `/CN=${name}` };
}

test('initialize lays out the puppetserver CA directory with its modes', async (t) => {
  const parent = await tempDir(t);
  const store = new CaStore(join(parent, 'ca'));
  assert.equal(await store.exists(), false);
  await store.initialize(fakeCaFiles(1n));
  assert.equal(await store.exists(), true);
  assert.deepEqual((await readdir(store.dir)).sort(), ['ca_crl.pem', 'ca_crt.pem', 'ca_key.pem', 'ca_pub.pem', 'inventory.txt', 'requests', 'serial', 'signed']);
  assert.equal(await mode(store.dir), 0o750);
  assert.equal(await mode(join(store.dir, 'ca_key.pem')), 0o640);
  assert.equal(await mode(join(store.dir, 'ca_crt.pem')), 0o644);
  assert.ok((await stat(join(store.dir, 'requests'))).isDirectory());
  assert.ok((await stat(join(store.dir, 'signed'))).isDirectory());
  assert.equal(await readFile(join(store.dir, 'serial'), 'utf8'), '0001');
  assert.equal(await readFile(join(store.dir, 'inventory.txt'), 'utf8'), '');
  assert.equal(await store.readFile('key'), fakeCaFiles().caKeyPem);
  assert.deepEqual(await buildLeftovers(parent), []);
});

test('initialize refuses a CA that is already there and changes nothing', async (t) => {
  const store = await newStore(t, 5n);
  await assert.rejects(store.initialize(fakeCaFiles(1n)), fails('RM_CA_DIR_EXISTS', store.dir));
  assert.equal(await store.readNextSerial(), 5n);
  assert.deepEqual(await buildLeftovers(join(store.dir, '..')), []);
});

test('initialize that fails after building leaves nothing behind', async (t) => {
  const parent = await tempDir(t);
  // The pre-check sees no ca_crt.pem, so the whole tree is built and only the final rename fails.
  await mkdir(join(parent, 'ca'));
  await writeFile(join(parent, 'ca', 'notes.txt'), 'keep me');
  await assert.rejects(new CaStore(join(parent, 'ca')).initialize(fakeCaFiles()), fails('RM_CA_DIR_EXISTS'));
  assert.deepEqual(await readdir(join(parent, 'ca')), ['notes.txt']);
  await writeFile(join(parent, 'file'), 'x');
  await assert.rejects(new CaStore(join(parent, 'file')).initialize(fakeCaFiles()), fails('RM_CA_DIR_EXISTS'));
  assert.deepEqual(await buildLeftovers(parent), []);
  // An empty directory in the way is replaced.
  await mkdir(join(parent, 'empty'));
  await new CaStore(join(parent, 'empty')).initialize(fakeCaFiles());
  assert.equal(await new CaStore(join(parent, 'empty')).exists(), true);
});

test('missing or empty CA files are named in the error', async (t) => {
  const store = await newStore(t);
  await writeFile(join(store.dir, 'ca_pub.pem'), '  \n');
  await assert.rejects(store.readFile('pub'), fails('RM_CA_DIR_INVALID', `${store.dir}/ca_pub.pem is empty`));
  await writeFile(join(store.dir, 'ca_crl.pem'), '');
  await assert.rejects(store.readFile('crl'), fails('RM_CA_DIR_INVALID', 'ca_crl.pem'));
  const absent = new CaStore(join(store.dir, 'nope'));
  await assert.rejects(absent.readFile('cert'), fails('RM_CA_DIR_INVALID', `${absent.dir}/ca_crt.pem is missing`));
  await assert.rejects(absent.mtime('crl'), fails('RM_CA_DIR_INVALID', 'ca_crl.pem'));
  await assert.rejects(absent.withLock(() => Promise.resolve()), fails('RM_CA_NOT_INITIALISED'));
  assert.equal(await store.mtime('cert'), (await stat(join(store.dir, 'ca_crt.pem'))).mtimeMs);
});

test('the serial file is read in the puppetserver and the CLI format; garbage names the file', async (t) => {
  const store = await newStore(t);
  const serialPath = join(store.dir, 'serial');
  for (const [text, value] of [['002A', 42n], ['002\n', 2n], ['2a', 42n], ['10000\n', 0x10000n]] as const) {
    await writeFile(serialPath, text);
    assert.equal(await store.readNextSerial(), value, text);
  }
  for (const bad of ['', 'zz', '0x12', '12 13']) {
    await writeFile(serialPath, bad);
    await assert.rejects(store.readNextSerial(), fails('RM_CA_DIR_INVALID', serialPath));
  }
});

test('allocateSerials is monotonic, durable and upper-case', async (t) => {
  const store = await newStore(t, 0xfffen);
  await assert.rejects(store.allocateSerials(1), fails('RM_INTERNAL', 'outside withLock'));
  const first = await store.withLock(() => store.allocateSerials(3));
  assert.deepEqual(first, [0xfffen, 0xffffn, 0x10000n]);
  assert.equal(await readFile(join(store.dir, 'serial'), 'utf8'), '10001');
  // A second store on the same directory (or a restarted process) continues from the file.
  const again = new CaStore(store.dir);
  assert.deepEqual(await again.withLock(() => again.allocateSerials(1)), [0x10001n]);
  assert.deepEqual(await store.withLock(() => store.allocateSerials(0)), []);
  assert.equal(await store.readNextSerial(), 0x10002n);
  await writeFile(join(store.dir, 'serial'), '00ab\n');
  assert.deepEqual(await store.withLock(() => store.allocateSerials(2)), [0xabn, 0xacn]);
  assert.equal(await readFile(join(store.dir, 'serial'), 'utf8'), '00AD');
});

test('withLock is re-entrant and queues callers in this process', async (t) => {
  const store = await newStore(t);
  const twin = new CaStore(store.dir);
  const order: string[] = [];
  await Promise.all([
    store.withLock(async () => {
      order.push('a-in');
      await new Promise((r) => setTimeout(r, 30));
      assert.deepEqual(await store.withLock(() => store.allocateSerials(1)), [1n]);
      order.push('a-out');
    }),
    twin.withLock(async () => {
      order.push('b-in');
      await twin.allocateSerials(1);
      order.push('b-out');
    }),
  ]);
  assert.deepEqual(order, ['a-in', 'a-out', 'b-in', 'b-out']);
  assert.equal(existsSync(join(store.dir, '.lock')), false);
  // Work that escapes the lock's callback cannot write once the lock is released.
  let escaped: Promise<unknown> = Promise.resolve();
  await store.withLock(() => {
    escaped = new Promise((r) => setTimeout(r, 20)).then(() => store.putRequest('late', 'x'));
    return Promise.resolve();
  });
  await assert.rejects(escaped, fails('RM_INTERNAL'));
});

test('serials stay unique and contiguous across processes', async (t) => {
  const store = await newStore(t);
  const startAt = Date.now() + 1_500;
  const children = Array.from({ length: 4 }, () => runAllocator(store.dir, 50, startAt));
  const mine: bigint[] = [];
  await new Promise((r) => setTimeout(r, startAt - Date.now()));
  for (let i = 0; i < 50; i++) {
    await store.withLock(async () => {
      const [serial] = await store.allocateSerials(1);
      assert.ok(serial !== undefined);
      await store.appendInventory([entry(serial, `parent-${i}`)]);
      mine.push(serial);
    });
  }
  const all = [...mine, ...(await Promise.all(children)).flat()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  assert.deepEqual(all, Array.from({ length: 250 }, (_, i) => BigInt(i + 1)));
  assert.equal(await store.readNextSerial(), 251n);
  const inventory = await store.readInventory();
  assert.equal(inventory.length, 250);
  assert.equal(new Set(inventory.map((e) => e.serial)).size, 250);
});

test('a lock left by a killed process is taken over', async (t) => {
  const store = await newStore(t);
  const holder = await startHolder(store.dir);
  assert.equal((await readFile(join(store.dir, '.lock'), 'utf8')).trim(), String(holder.pid));
  await holder.kill();
  assert.ok(existsSync(join(store.dir, '.lock')), 'SIGKILL leaves the lock file');
  assert.deepEqual(await runAllocator(store.dir, 1), [1n]);
  assert.deepEqual(await store.withLock(() => store.allocateSerials(1)), [2n]);
});

test('a stale lock contended by several processes is broken once', async (t) => {
  const store = await newStore(t);
  await writeFile(join(store.dir, '.lock'), `${await deadPid()}\n`);
  const startAt = Date.now() + 1_000;
  const results = await Promise.all(Array.from({ length: 4 }, () => runAllocator(store.dir, 25, startAt)));
  const all = results.flat().sort((a, b) => (a < b ? -1 : 1));
  assert.deepEqual(all, Array.from({ length: 100 }, (_, i) => BigInt(i + 1)));
});

test('a lock file holding our own pid is from an earlier process with that pid', async (t) => {
  // A restarted container often gets the same pid as the process that died holding the lock.
  const store = await newStore(t);
  await writeFile(join(store.dir, '.lock'), `${process.pid}\n`);
  assert.deepEqual(await store.withLock(() => store.allocateSerials(1)), [1n]);
});

test('a lock without a pid is stale once old; a guard left by a killed breaker does not block', async (t) => {
  const store = await newStore(t);
  const lock = join(store.dir, '.lock');
  // Only a power loss before the pid reached the disk leaves an empty lock file.
  await writeFile(lock, '');
  await assert.rejects(new CaStore(store.dir, { lockTimeoutMs: 100 }).withLock(() => Promise.resolve()), fails('RM_CA_LOCK_TIMEOUT'));
  await utimes(lock, new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
  assert.deepEqual(await store.withLock(() => store.allocateSerials(1)), [1n]);
  const owner = await deadPid();
  await writeFile(lock, `${owner}\n`);
  await writeFile(join(store.dir, `.lock.break-${owner}`), `${await deadPid()}\n`);
  assert.deepEqual(await store.withLock(() => store.allocateSerials(1)), [2n]);
});

test('the lock times out while a live process holds it', async (t) => {
  const store = await newStore(t);
  const holder = await startHolder(store.dir);
  t.after(holder.kill);
  const impatient = new CaStore(store.dir, { lockTimeoutMs: 200 });
  await assert.rejects(impatient.withLock(() => Promise.resolve()), fails('RM_CA_LOCK_TIMEOUT'));
});

test('inventory round-trips; a torn last line is skipped and dropped before the next append', async (t) => {
  const store = await newStore(t);
  await store.withLock(() => store.appendInventory([entry(1n), entry(2n)]));
  assert.deepEqual(await store.readInventory(), [entry(1n), entry(2n)]);
  const path = join(store.dir, 'inventory.txt');
  // What the `puppetserver ca` CLI writes: lower-case serials.
  await appendFile(path, '0x00ab 2024-05-01T12:00:00UTC 2029-05-01T12:00:00UTC /CN=cli.example.com\n');
  await appendFile(path, '0x00ac 2024-05-01T12:00:00UTC 2029-05');
  const entries = await store.readInventory();
  assert.deepEqual(
    entries.map((e) => e.serial),
    [1n, 2n, 0xabn],
  );
  assert.equal(entries[2]?.subject, '/CN=cli.example.com');
  await store.withLock(() => store.appendInventory([entry(0xadn)]));
  const text = await readFile(path, 'utf8');
  assert.ok(!text.includes('0x00ac'), text);
  assert.ok(text.endsWith('0x00AD 2024-05-01T12:00:00UTC 2029-05-01T12:00:00UTC /CN=agent173.example.com\n'), text);
  assert.equal((await store.readInventory()).length, 4);
});

test('repair drops a torn tail, removes leftovers and moves the serial past the inventory', async (t) => {
  const store = await newStore(t, 3n);
  const path = join(store.dir, 'inventory.txt');
  const whole = '0x0001 2024-05-01T12:00:00UTC 2029-05-01T12:00:00UTC /CN=a\n0x0009 2024-05-01T12:00:00UTC 2029-05-01T12:00:00UTC /CN=b\n';
  await writeFile(path, `${whole}0x000`);
  const dead = await deadPid();
  const leftovers = [
    join(store.dir, `.serial.${dead}.0011aabb.tmp`),
    join(store.dir, 'signed', `.rm-${dead}-001122334455.tmp`),
    join(store.dir, `.lock.${dead}.k3j4h5`),
  ];
  for (const file of leftovers) await writeFile(file, 'x');
  await mkdir(join(store.dir, '..', `.ca.new-${dead}-0badf00d`));
  const report = await store.withLock(() => store.repair());
  assert.equal(report.length, 6, report.join('\n'));
  assert.ok(report.some((line) => line.includes('torn')));
  assert.ok(report.some((line) => line.includes('raised to 000A')));
  assert.equal(await store.readNextSerial(), 10n);
  assert.equal(await readFile(path, 'utf8'), whole);
  for (const file of leftovers) assert.equal(existsSync(file), false, file);
  assert.deepEqual(await buildLeftovers(join(store.dir, '..')), []);
  assert.deepEqual(await store.withLock(() => store.repair()), []);
  await assert.rejects(store.repair(), fails('RM_INTERNAL'));
});

test('requests and signed certificates are stored by name', async (t) => {
  const store = await newStore(t);
  const csr = pem('CERTIFICATE REQUEST', 'agent1');
  assert.equal(await store.getRequest('agent1.example.com'), undefined);
  await assert.rejects(store.putRequest('agent1.example.com', csr), fails('RM_INTERNAL'));
  await store.withLock(async () => {
    await store.putRequest('agent1.example.com', csr);
    await store.putSigned('agent2.example.com', 'cert2');
    await store.putSignedMany([
      { name: 'agent3.example.com', pem: 'cert3' },
      { name: 'agent4.example.com', pem: 'cert4' },
    ]);
  });
  assert.equal(await store.getRequest('agent1.example.com'), csr);
  assert.deepEqual(await store.listRequests(), ['agent1.example.com']);
  assert.deepEqual(await store.listSigned(), ['agent2.example.com', 'agent3.example.com', 'agent4.example.com']);
  assert.equal(await store.getSigned('agent3.example.com'), 'cert3');
  assert.equal(await store.withLock(() => store.deleteRequest('agent1.example.com')), true);
  assert.equal(await store.withLock(() => store.deleteRequest('agent1.example.com')), false);
  assert.equal(await store.withLock(() => store.deleteSigned('agent4.example.com')), true);
  assert.deepEqual(await store.listRequests(), []);
  assert.deepEqual(await store.listSigned(), ['agent2.example.com', 'agent3.example.com']);
  assert.deepEqual((await readdir(join(store.dir, 'signed'))).sort(), ['agent2.example.com.pem', 'agent3.example.com.pem']);
});

test('requests/ and inventory.txt are created on first use when missing', async (t) => {
  // `puppetserver ca setup` makes no requests/ folder, and puppetserver makes inventory.txt on its first append.
  const store = await newStore(t);
  await rm(join(store.dir, 'requests'), { recursive: true });
  await rm(join(store.dir, 'inventory.txt'));
  assert.deepEqual(await store.listRequests(), []);
  assert.deepEqual(await store.readInventory(), []);
  await store.withLock(async () => {
    await store.putRequest('agent1.example.com', 'csr');
    await store.appendInventory([entry(1n)]);
  });
  assert.deepEqual(await store.listRequests(), ['agent1.example.com']);
  assert.deepEqual(await store.readInventory(), [entry(1n)]);
});

test('names that could leave the directory are refused', async (t) => {
  const store = await newStore(t);
  for (const name of ['', '.', '..', '../ca_key', 'a/b', 'a\\b', 'a\0b', '.hidden', 'x'.repeat(252)]) {
    await assert.rejects(store.getSigned(name), fails('RM_CA_CERTNAME_INVALID'), JSON.stringify(name));
    await assert.rejects(store.withLock(() => store.putRequest(name, 'x')), fails('RM_CA_CERTNAME_INVALID'));
    await assert.rejects(store.withLock(() => store.deleteSigned(name)), fails('RM_CA_CERTNAME_INVALID'));
  }
  // The longest name puppetserver can store still fits beside our temporary files.
  await store.withLock(() => store.putSigned('x'.repeat(251), 'cert'));
  assert.equal(await store.getSigned('x'.repeat(251)), 'cert');
});
