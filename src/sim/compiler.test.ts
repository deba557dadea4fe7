import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect } from 'node:net';
import { ManualClock } from '../lib/clock.ts';
import { seededRandom } from '../lib/random.ts';
import { SimCompiler, type SimCompilerOptions } from './compiler.ts';
import { shedsVersion } from './puppet-routes.ts';
import { httpCall, waitFor, type HttpReply } from './testing.ts';

// The simulated compiler on a real loopback socket, its time on a manual clock: requests arrive
// when the sockets deliver them, slots are held until the test moves the clock.

async function start(over: Partial<SimCompilerOptions> = {}) {
  const clock = new ManualClock(0);
  const compiler = await SimCompiler.start(
    { name: 'c1', slots: 1, compile: { meanMs: 100, p99Ms: 100 }, requestMs: 5, ...over },
    { clock, random: seededRandom(7) },
  );
  return { clock, compiler };
}

const agentHeaders = { 'X-Puppet-Version': '8.10.0', 'Content-Type': 'application/x-www-form-urlencoded' };
const waiting = (c: SimCompiler) => c.stats().busy + c.stats().queued;

/** Sends a catalog request and waits until the compiler holds or queues it, so arrival order is known. */
async function catalog(c: SimCompiler, name: string, headers: Record<string, string> = agentHeaders): Promise<{ reply: Promise<HttpReply> }> {
  const before = waiting(c);
  const rejectedBefore = c.stats().rejected;
  const reply = httpCall(c.port, 'POST', `/puppet/v3/catalog/${name}?environment=production`, { headers, body: `facts_format=application%2Fjson&facts=%7B%7D&transaction_uuid=${'1'.repeat(8)}-1111-4111-8111-${'1'.repeat(12)}` });
  reply.catch(() => undefined);
  await waitFor(`${name} to arrive`, () => waiting(c) > before || c.stats().rejected > rejectedBefore);
  // Wrapped: an async function returning the promise itself would wait for the reply.
  return { reply };
}

test('waiters get the slot in arrival order, and no more than J are ever busy', async (t) => {
  const { clock, compiler } = await start({ slots: 1 });
  t.after(() => compiler.close());
  const order: string[] = [];
  const replies: Promise<HttpReply>[] = [];
  for (const name of ['n0', 'n1', 'n2', 'n3', 'n4']) {
    const { reply: r } = await catalog(compiler, name);
    replies.push(r.then((reply) => (order.push(name), reply)));
  }
  assert.equal(compiler.stats().busy, 1);
  assert.equal(compiler.stats().queued, 4);
  for (let i = 1; i <= 5; i++) {
    clock.advance(100);
    await waitFor(`${i} catalogs`, () => order.length === i);
  }
  assert.deepEqual(order, ['n0', 'n1', 'n2', 'n3', 'n4']);
  const all = await Promise.all(replies);
  assert.ok(all.every((r) => r.status === 200 && r.headers['x-sim-compiler'] === 'c1'));
  assert.match(all[2]!.body, /"name":"n2"/);
  assert.equal(compiler.stats().catalogs, 5);
  assert.equal(compiler.stats().maxBusy, 1);
  assert.equal(compiler.stats().busySlotMs, 500);
});

test('with J slots, J compile at once and the rest wait', async (t) => {
  const { clock, compiler } = await start({ slots: 3 });
  t.after(() => compiler.close());
  const replies = [];
  for (let i = 0; i < 7; i++) replies.push((await catalog(compiler, `n${i}`)).reply);
  assert.deepEqual([compiler.stats().busy, compiler.stats().queued], [3, 4]);
  for (let round = 0; round < 3; round++) {
    clock.advance(100);
    await waitFor('the next round', () => compiler.stats().catalogs === Math.min(7, 3 * (round + 1)));
  }
  await Promise.all(replies);
  assert.equal(compiler.stats().maxBusy, 3);
  assert.equal(compiler.stats().catalogs, 7);
});

test('over max-queued-requests, agents from 5.3.1 get 503 with Retry-After and Connection: close; others queue', async (t) => {
  const { clock, compiler } = await start({ slots: 1, maxQueuedRequests: 2, maxRetryDelayS: 10 });
  t.after(() => compiler.close());
  const held = [(await catalog(compiler, 'a')).reply, (await catalog(compiler, 'b')).reply, (await catalog(compiler, 'c')).reply];
  assert.equal(compiler.stats().queued, 2);
  const shed = await httpCall(compiler.port, 'GET', '/puppet/v3/node/d?environment=production', { headers: { 'X-Puppet-Version': '8.10.0' } });
  assert.equal(shed.status, 503);
  assert.equal(shed.body, 'The number of requests waiting for a JRuby instance has exceeded the limit allowed by the max-queued-requests setting.');
  assert.match(String(shed.headers['retry-after']), /^\d+$/);
  assert.ok(Number(shed.headers['retry-after']) < 10);
  assert.equal(shed.headers.connection, 'close');
  assert.equal(shed.headers['x-sim-compiler'], 'c1');
  assert.equal(compiler.stats().rejected, 1);
  // No X-Puppet-Version, or one before 5.3.1: never shed.
  held.push((await catalog(compiler, 'old', { 'Content-Type': 'application/x-www-form-urlencoded' })).reply);
  held.push((await catalog(compiler, 'older', { ...agentHeaders, 'X-Puppet-Version': '5.3.0' })).reply);
  assert.equal(compiler.stats().queued, 4);
  assert.equal(compiler.stats().rejected, 1);
  const metrics = JSON.parse((await httpCall(compiler.port, 'GET', '/status/v1/services/jruby-metrics?level=debug')).body) as { status: { experimental: { metrics: Record<string, unknown> } } };
  assert.equal(metrics.status.experimental.metrics['queue-limit-hit-count'], 1);
  for (let i = 1; i <= 5; i++) {
    clock.advance(100);
    await waitFor('a compile', () => compiler.stats().catalogs === i);
  }
  assert.ok((await Promise.all(held)).every((r) => r.status === 200));
  assert.equal(shedsVersion('5.3.1'), true);
  assert.equal(shedsVersion('10.0.0'), true);
  assert.equal(shedsVersion('4.10.12'), false);
  assert.equal(shedsVersion('junk'), false);
});

test('jruby-metrics has puppetserver\'s shape, status.experimental.metrics', async (t) => {
  const { clock, compiler } = await start({ slots: 2 });
  t.after(() => compiler.close());
  const replies = [(await catalog(compiler, 'a')).reply, (await catalog(compiler, 'b')).reply, (await catalog(compiler, 'c')).reply];
  clock.advance(30);
  const reply = await httpCall(compiler.port, 'GET', '/status/v1/services/jruby-metrics?level=debug');
  assert.equal(reply.status, 200);
  assert.match(String(reply.headers['content-type']), /^application\/json/);
  const body = JSON.parse(reply.body) as { service_name: string; state: string; status: { experimental: { metrics: Record<string, unknown> } } };
  assert.equal(body.service_name, 'jruby-metrics');
  assert.equal(body.state, 'running');
  const m = body.status.experimental.metrics;
  assert.equal(m['num-jrubies'], 2);
  assert.equal(m['num-free-jrubies'], 0);
  assert.equal(m['requested-count'], 3);
  assert.equal(m['borrow-count'], 2);
  assert.equal(m['queue-limit-hit-count'], 0);
  for (const k of ['average-borrow-time', 'average-wait-time']) assert.equal(typeof m[k], 'number', k);
  const requested = m['requested-instances'] as { 'duration-millis': number; reason: { request: { uri: string } } }[];
  assert.equal(requested.length, 1);
  assert.equal(requested[0]?.['duration-millis'], 30);
  assert.equal(requested[0]?.reason.request.uri, '/puppet/v3/catalog/c');
  assert.equal((m['borrowed-instances'] as unknown[]).length, 2);
  for (let i = 0; i < 2; i++) {
    clock.advance(100);
    await waitFor('compiles', () => compiler.stats().busy + compiler.stats().queued === (i === 0 ? 1 : 0));
  }
  await Promise.all(replies);
  const after = JSON.parse((await httpCall(compiler.port, 'GET', '/status/v1/services/jruby-metrics?level=debug')).body) as typeof body;
  // Waits of 0, 0 and 100 ms (the third waited for the first two to finish).
  assert.equal(after.status.experimental.metrics['average-wait-time'], 33);
  assert.equal(after.status.experimental.metrics['average-borrow-time'], 100);
});

test('every Puppet endpoint agents use answers JSON through a slot; unknown paths 404', async (t) => {
  const { clock, compiler } = await start({ slots: 4 });
  t.after(() => compiler.close());
  const calls = [
    httpCall(compiler.port, 'GET', '/puppet/v3/node/web1.test?environment=production'),
    httpCall(compiler.port, 'GET', '/puppet/v3/file_metadatas/plugins?recurse=false&environment=production'),
    httpCall(compiler.port, 'GET', '/puppet/v3/file_metadata/modules/sim/a.conf?environment=production'),
    httpCall(compiler.port, 'PUT', '/puppet/v3/report/web1.test?environment=production', { body: '{"host":"web1.test"}', headers: { 'Content-Type': 'application/json' } }),
  ];
  await waitFor('four borrowed slots', () => compiler.stats().busy === 4);
  clock.advance(5);
  const [node, metas, meta, report] = await Promise.all(calls);
  assert.deepEqual([node?.status, metas?.status, meta?.status, report?.status], [200, 200, 200, 200]);
  assert.equal((JSON.parse(node!.body) as { name: string }).name, 'web1.test');
  assert.ok(Array.isArray(JSON.parse(metas!.body)));
  assert.equal(compiler.stats().busySlotMs, 20);
  const missing = await httpCall(compiler.port, 'GET', '/puppet/v3/nothing');
  assert.equal(missing.status, 404);
  assert.equal(missing.headers['x-sim-compiler'], 'c1');
  assert.equal((JSON.parse(missing.body) as { message: string }).message, 'Not Found: /puppet/v3/nothing');
  const s = compiler.stats().requests;
  assert.deepEqual([s.node, s.file_metadatas, s.file_metadata, s.report, s.other], [1, 1, 1, 1, 1]);
});

test('warm-up multiplies compile times after start and again after a restart', async (t) => {
  const { clock, compiler } = await start({ warmup: { factor: 4, periodMs: 60_000, shape: 'linear' } });
  t.after(() => compiler.close());
  assert.equal(compiler.warmupFactor(), 4);
  const { reply: cold } = await catalog(compiler, 'cold');
  clock.advance(399);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(compiler.stats().catalogs, 0);
  clock.advance(1);
  assert.equal((await cold).status, 200);
  clock.advance(29_600);
  assert.equal(compiler.warmupFactor(), 2.5);
  clock.advance(30_000);
  assert.equal(compiler.warmupFactor(), 1);
  const { reply: warm } = await catalog(compiler, 'warm');
  clock.advance(100);
  assert.equal((await warm).status, 200);

  const port = compiler.port;
  const restarted = compiler.restart({ bootMs: 1000 });
  await waitFor('booting', () => compiler.state === 'booting');
  assert.equal(compiler.port, port);
  const booting = await httpCall(port, 'GET', '/status/v1/simple');
  assert.deepEqual([booting.status, booting.body], [503, 'starting']);
  const { reply: early } = await catalog(compiler, 'early');
  assert.deepEqual([compiler.stats().busy, compiler.stats().queued], [0, 1]);
  clock.advance(1000);
  await restarted;
  const running = await httpCall(port, 'GET', '/status/v1/simple');
  assert.deepEqual([running.status, running.body], [200, 'running']);
  assert.equal(compiler.warmupFactor(), 4);
  await waitFor('the early request to hold a slot', () => compiler.stats().busy === 1);
  clock.advance(400);
  assert.equal((await early).status, 200);
  assert.equal(compiler.stats().restarts, 1);
});

test('kill drops every connection at once and refuses new ones until a restart on the same port', async (t) => {
  const { clock, compiler } = await start();
  t.after(() => compiler.close());
  const { reply: lost } = await catalog(compiler, 'lost');
  const { reply: queued } = await catalog(compiler, 'queued');
  compiler.kill();
  await assert.rejects(lost, /socket hang up|ECONNRESET/);
  await assert.rejects(queued, /socket hang up|ECONNRESET/);
  await assert.rejects(httpCall(compiler.port, 'GET', '/status/v1/simple'), /ECONNREFUSED/);
  assert.equal(compiler.state, 'down');
  assert.equal(compiler.stats().busy, 0);
  const port = compiler.port;
  const restarted = compiler.restart({ downMs: 500, listenWhileBooting: false, bootMs: 500 });
  await waitFor('the down time to start', () => clock.pendingTimers() === 1);
  clock.advance(500);
  await waitFor('the boot to start', () => clock.pendingTimers() === 1);
  await assert.rejects(httpCall(port, 'GET', '/status/v1/simple'), /ECONNREFUSED/);
  clock.advance(500);
  await restarted;
  assert.equal(compiler.port, port);
  assert.equal((await httpCall(port, 'GET', '/status/v1/simple')).body, 'running');
  const { reply: after } = await catalog(compiler, 'after');
  clock.advance(100);
  assert.equal((await after).status, 200);
  assert.equal(compiler.stats().catalogs, 1);
  assert.equal(compiler.stats().busySlotMs, 100);
});

test('started warm, a compiler compiles at full speed at once; a restart makes it cold', async (t) => {
  const { clock, compiler } = await start({ warmup: { factor: 3, periodMs: 60_000, shape: 'linear' }, startWarm: true });
  t.after(() => compiler.close());
  assert.equal(compiler.warmupFactor(), 1);
  const { reply: warm } = await catalog(compiler, 'warm');
  clock.advance(100);
  assert.equal((await warm).status, 200);

  const restarted = compiler.restart({ bootMs: 500 });
  await waitFor('booting', () => compiler.state === 'booting');
  clock.advance(500);
  await restarted;
  assert.equal(compiler.warmupFactor(), 3);
  const { reply: cold } = await catalog(compiler, 'cold');
  clock.advance(299);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(compiler.stats().catalogs, 1, 'the cold compile takes three times as long');
  clock.advance(1);
  assert.equal((await cold).status, 200);
  clock.advance(29_700);
  assert.equal(compiler.warmupFactor(), 2, 'half way through the warm-up period since the restart');
});

/** A kept-alive connection to the compiler: requests on it, and whether the server has closed it. */
async function keptAlive(port: number) {
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  let closed = false;
  socket.on('close', () => (closed = true)).on('error', () => undefined);
  let received = '';
  socket.setEncoding('latin1').on('data', (d: string) => (received += d));
  return {
    closed: () => closed,
    responses: () => (received.match(/^HTTP\/1\.1 /gm) ?? []).length,
    send: (method: string, path: string, body = '') => socket.write(`${method} ${path} HTTP/1.1\r\nHost: c1\r\nX-Puppet-Version: 8.10.0\r\nContent-Length: ${body.length}\r\n\r\n${body}`),
  };
}

test('the compiler closes a connection idle for its idle timeout (Jetty), never one with a request in progress', async (t) => {
  const { clock, compiler } = await start({ idleTimeoutMs: 1000, compile: { meanMs: 5000, p99Ms: 5000 } });
  t.after(() => compiler.close());
  const c = await keptAlive(compiler.port);
  c.send('GET', '/status/v1/simple');
  await waitFor('the status answer', () => c.responses() === 1);
  clock.advance(900);
  c.send('POST', '/puppet/v3/catalog/n1?environment=production', 'transaction_uuid=x');
  await waitFor('the compile to start', () => compiler.stats().busy === 1);
  clock.advance(4000);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(c.closed(), false, 'a compile in progress keeps the connection');
  clock.advance(1000);
  await waitFor('the catalog', () => c.responses() === 2);
  clock.advance(999);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(c.closed(), false);
  clock.advance(1);
  await waitFor('the idle connection to be closed', () => c.closed());
  assert.equal(clock.pendingTimers(), 0);
});
