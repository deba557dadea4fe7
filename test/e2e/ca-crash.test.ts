// Crash safety of the CA directory: CSRs stream into `ringmaster serve` (autosign all) while the
// process is SIGKILLed at random moments and restarted. Afterwards the directory must load, every
// signed certificate must parse, serials must be unique and recorded, and no certificate a client
// already received may be lost.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { prepareCsrs, type PreparedCsr } from '../../bench/lib/csr.ts';
import { describeRun, pollUntil, runProcess, skipUnlessInstalled } from '../helpers/puppet.ts';
import { httpsRequest, startRingmaster, type Ringmaster } from '../helpers/ringmaster.ts';

const total = 300;
const kills = 10;
const workers = 8;
const attemptsPerCsr = 6;
const skip = skipUnlessInstalled('openssl');

describe('CA directory survives SIGKILL during signing', { skip, timeout: 300_000 }, () => {
  let rm: Ringmaster | undefined;
  let csrs: PreparedCsr[] = [];
  const ringmaster = (): Ringmaster => rm ?? assert.fail('ringmaster did not start');

  before(async () => {
    csrs = await prepareCsrs(Array.from({ length: total }, (_, i) => `crash-${i}.crash.test`), { distinctKeys: 8 });
    rm = await startRingmaster({ autosign: { all: true } });
  });
  after(async () => {
    await rm?.cleanup();
  });

  it(`keeps every file valid across ${kills} kills`, async (t) => {
    const received = new Map<string, bigint>();
    let finished = 0;
    let restarting: Promise<void> = Promise.resolve();
    const failures: string[] = [];
    let interrupted = 0;

    const submit = async ({ name, pem }: PreparedCsr): Promise<void> => {
      for (let attempt = 0; attempt < attemptsPerCsr; attempt++) {
        try {
          const port = ringmaster().port;
          const put = await httpsRequest({ port, method: 'PUT', path: `/puppet-ca/v1/certificate_request/${name}`, body: pem, headers: { 'Content-Type': 'text/plain' } });
          // 400 after a crash means the first attempt got as far as saving the request.
          if (put.status !== 200 && put.status !== 400) throw new Error(`PUT ${put.status} ${put.body}`);
          const get = await httpsRequest({ port, path: `/puppet-ca/v1/certificate/${name}` });
          if (get.status === 200) {
            received.set(name, BigInt(`0x${new X509Certificate(get.body).serialNumber}`));
            return;
          }
          if (get.status !== 404) throw new Error(`GET ${get.status} ${get.body}`);
        } catch (err) {
          interrupted++;
          if (attempt === attemptsPerCsr - 1) failures.push(`${name}: ${(err as Error).message}`);
        }
        // A refused or reset connection means the server is down: wait for the restart under way.
        await restarting;
      }
    };

    const queue = [...csrs];
    const submitters = Array.from({ length: workers }, async () => {
      for (let c = queue.shift(); c; c = queue.shift()) {
        await submit(c);
        finished++;
      }
    });

    // Kill points spread over the run by progress, each followed by a random few milliseconds so
    // the signal lands anywhere in a request's handling.
    const points = Array.from({ length: kills }, (_, i) => Math.floor(((i + Math.random()) * (total - 20)) / kills) + 5);
    let killed = 0;
    const killer = (async () => {
      for (const point of points) {
        await pollUntil(`${point} CSRs processed`, () => (finished >= point ? true : undefined), { timeoutMs: 120_000, intervalMs: 5 });
        await delay(Math.floor(Math.random() * 25));
        restarting = (async () => {
          await ringmaster().kill();
          await ringmaster().restart();
        })();
        await restarting;
        killed++;
      }
    })();
    await Promise.all([...submitters, killer]);
    assert.equal(killed, kills);
    assert.ok(interrupted > 0, 'the kills interrupted requests');
    await ringmaster().stop();

    const list = await ringmaster().cli(['ca', 'list', '--all', '--json']);
    assert.equal(list.code, 0, describeRun('ringmaster ca list --all', list));

    const caDir = ringmaster().paths.caDir;
    const bySerial = new Map<bigint, string>();
    const signedDir = join(caDir, 'signed');
    for (const file of await readdir(signedDir)) {
      const pem = await readFile(join(signedDir, file), 'utf8');
      let cert: X509Certificate;
      try {
        cert = new X509Certificate(pem);
      } catch (err) {
        assert.fail(`signed/${file} does not parse: ${(err as Error).message}`);
      }
      const serial = BigInt(`0x${cert.serialNumber}`);
      assert.equal(cert.subject, `CN=${file.replace(/\.pem$/, '')}`, `signed/${file} holds its own name`);
      assert.ok(!bySerial.has(serial), `serial ${serial} is used by both ${bySerial.get(serial)} and ${file}`);
      bySerial.set(serial, cert.subject);
    }

    const inventory = new Map<bigint, string>();
    for (const line of (await readFile(join(caDir, 'inventory.txt'), 'utf8')).split('\n')) {
      const m = /^0x([0-9a-fA-F]+) \S+ \S+ \/(.+)$/.exec(line.trim());
      if (!m) continue;
      const serial = BigInt(`0x${m[1]}`);
      assert.ok(!inventory.has(serial), `inventory.txt records serial ${serial} twice`);
      inventory.set(serial, m[2]!);
    }
    for (const [serial, subject] of bySerial) {
      assert.equal(inventory.get(serial), subject, `inventory.txt records serial ${serial} as ${subject}`);
    }

    const next = BigInt(`0x${(await readFile(join(caDir, 'serial'), 'utf8')).trim()}`);
    for (const serial of [...bySerial.keys(), ...inventory.keys()]) assert.ok(next > serial, `serial file ${next} > ${serial}`);

    for (const [name, serial] of received) {
      const pem = await readFile(join(signedDir, `${name}.pem`), 'utf8').catch(() => '');
      assert.ok(pem, `${name}: a certificate a client received is gone from signed/`);
      assert.equal(BigInt(`0x${new X509Certificate(pem).serialNumber}`), serial, `${name}: signed/ holds the certificate the client received`);
    }

    const crl = await runProcess('openssl', ['crl', '-in', join(caDir, 'ca_crl.pem'), '-noout']);
    assert.equal(crl.code, 0, describeRun('openssl crl on ca_crl.pem', crl));
    assert.deepEqual(failures, [], 'every CSR got an answer within its attempts');
    // A request saved just before a kill may stay pending rather than be signed; that is not a
    // broken CA, but the count is worth seeing.
    t.diagnostic(`${received.size}/${total} CSRs signed and fetched, ${total - received.size} left unsigned; ${interrupted} requests cut off by ${kills} kills`);
    assert.ok(received.size > 0, 'some CSRs were signed');
  });
});
