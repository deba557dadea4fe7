import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Agent } from 'node:https';
import { call, type TlsIdentity } from '../helpers/https-client.ts';
import { startBackend, type Backend } from '../helpers/backend.ts';
import { startRingmaster, type Ringmaster, type RingmasterOptions } from '../helpers/ringmaster.ts';
import { pollUntil } from '../helpers/puppet.ts';

// `ringmaster serve` as a process, under a loop of agents' requests: a reload through
// `ringmaster reload` (SIGHUP) and a SIGTERM drain lose no request.

let a: Backend;
let b: Backend;
let rm: Ringmaster;
let ca: string;
let id: TlsIdentity;

const pools = (members: Backend[]): RingmasterOptions['pools'] => ({
  compilers: { members: members.map((m) => ({ name: m.name, url: m.url })), healthCheck: { active: { interval: '1s' } } },
});

before(async () => {
  [a, b] = await Promise.all([startBackend('a'), startBackend('b')]);
  rm = await startRingmaster({ pools: pools([a]), shutdown: { drainTimeout: '10s' } });
  const g = await rm.cli(['ca', 'generate', 'loop.test']);
  assert.equal(g.code, 0, g.stderr);
  const ssl = rm.paths.sslDir;
  ca = await readFile(rm.paths.caCert, 'utf8');
  id = { cert: await readFile(join(ssl, 'certs', 'loop.test.pem'), 'utf8'), key: await readFile(join(ssl, 'private_keys', 'loop.test.pem'), 'utf8') };
});

after(async () => {
  await rm.cleanup();
  await Promise.all([a.close(), b.close()]);
});

type LoopResult = { ok: number; failures: string[]; backends: string[] };

/** `clients` agents on kept-alive connections, each sending requests back to back until `stop()` or `max`. */
function requestLoop(clients: number, max: number): { stop(): void; done: Promise<LoopResult> } {
  let stopped = false;
  const result: LoopResult = { ok: 0, failures: [], backends: [] };
  const one = async (n: number) => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    for (let i = 0; i < max && !stopped; i++) {
      try {
        const r = await call(rm.port, 'GET', `/puppet/v3/file_metadata/modules/m/f${n}-${i}?environment=production`, { ca, identity: id, agent });
        if (r.status === 200) {
          result.ok++;
          result.backends.push(String(r.headers['x-backend']));
        } else result.failures.push(`status ${r.status} ${r.body.trim()}`);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? String(err);
        result.failures.push(code);
        // A refused connection means ringmaster stopped listening: an agent moves on.
        if (code === 'ECONNREFUSED') break;
      }
    }
    agent.destroy();
  };
  const done = Promise.all(Array.from({ length: clients }, (_, n) => one(n))).then(() => result);
  return { stop: () => (stopped = true), done };
}

test('ringmaster reload swaps the pool under a request loop without losing a request', async () => {
  const loop = requestLoop(8, 2000);
  await new Promise((r) => setTimeout(r, 300));
  await rm.rewriteConfig({ pools: pools([b]), shutdown: { drainTimeout: '10s' } });
  const reload = await rm.cli(['reload']);
  assert.equal(reload.code, 0, reload.stderr);
  assert.match(reload.stdout, /reloaded/);
  await new Promise((r) => setTimeout(r, 300));
  loop.stop();
  const r = await loop.done;
  assert.deepEqual(r.failures, []);
  assert.ok(r.backends.includes('a') && r.backends.includes('b'), 'requests went to a before and to b after');
  assert.ok(r.backends.slice(-20).every((x) => x === 'b'), 'the last requests all went to the new member');
});

test('a reload with an invalid file is refused and the running config kept', async () => {
  await rm.rewriteConfig({ pools: { compilers: { members: [{ name: 'x', url: 'ftp://nope' }] } } });
  // The command checks the file first and does not disturb the server.
  const reload = await rm.cli(['reload']);
  assert.equal(reload.code, 2);
  assert.match(reload.stderr, /RM_CONFIG_INVALID/);
  // A bare SIGHUP with the same file is refused by the server itself.
  const pid = rm.pid;
  assert.ok(pid);
  process.kill(pid, 'SIGHUP');
  await pollUntil('the refused reload to be logged', () => (rm.logs().includes('RM_RELOAD_FAILED') ? true : undefined), { timeoutMs: 5000, intervalMs: 20 });
  const status = JSON.parse(await readFile(join(rm.stateDir, 'reload-status.json'), 'utf8')) as { ok: boolean; message: string };
  assert.equal(status.ok, false);
  assert.match(status.message, /pools\.compilers\.members\[0\]\.url/);
  const r = await call(rm.port, 'GET', '/puppet/v3/node/loop.test', { ca, identity: id });
  assert.equal(r.headers['x-backend'], 'b');
  await rm.rewriteConfig({ pools: pools([b]), shutdown: { drainTimeout: '10s' } });
});

test('SIGTERM drains: requests in flight finish, none is reset, then the process exits', async () => {
  b.handle(async (req, res) => {
    await new Promise((r) => setTimeout(r, 200));
    res.writeHead(200, { 'x-backend': 'b' }).end(`slow ${req.url}`);
  });
  const loop = requestLoop(8, 200);
  await new Promise((r) => setTimeout(r, 700));
  const pid = rm.pid;
  assert.ok(pid);
  process.kill(pid, 'SIGTERM');
  const r = await loop.done;
  // After the listener closed, new connections are refused (an agent then tries its next
  // server); what must never happen is a request accepted and then dropped or cut.
  const notRefused = r.failures.filter((f) => f !== 'ECONNREFUSED');
  assert.deepEqual(notRefused, []);
  assert.ok(r.ok >= 16, `requests completed: ${r.ok}`);
  await rm.stop(); // waits for the exit (a second SIGTERM is ignored while draining)
  assert.match(rm.logs(), /"msg":"stopped"/);
  b.handle(undefined);
});
