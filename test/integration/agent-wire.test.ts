import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { resolveConfig } from '../../src/config/load.ts';
import { startApp, type App } from '../../src/app.ts';
import { systemClock } from '../../src/lib/clock.ts';
import { silentLog } from '../../src/observability/log.ts';
import { generateKeyPair } from '../../src/ca/x509.ts';
import type { TlsIdentity } from '../helpers/https-client.ts';
import { startBackend, type Backend } from '../helpers/backend.ts';
import { RawConnection, header, type RawResponse } from '../helpers/raw-tls.ts';

// The agent listener's HTTP/1.1 framing, byte for byte over real TLS: what is refused (conflicting
// lengths, odd Transfer-Encodings, folded or bare-LF lines, bad chunk sizes and request lines),
// what must work (pipelining, keep-alive, chunked and trickled bodies, 100-continue, HEAD) and the
// timeouts. The backend's record of what reached it catches a request smuggled past the listener.
// Whatever parses agent requests must pass this file unchanged.

const headerTimeoutMs = 600;
const keepAliveMs = 500;
const listenerMaxHeaderBytes = 4096;
const limits = { timeout: 10_000 };

let app: App;
let port: number;
let ca: string;
let stateDir: string;
let a: Backend;
let agent1: TlsIdentity;
const open: RawConnection[] = [];

before(async () => {
  a = await startBackend('a');
  stateDir = await mkdtemp(join(tmpdir(), 'rm-agent-wire-'));
  const noHealth = { active: { enabled: false }, passive: { enabled: false } };
  const config = resolveConfig({
    server: { certname: 'ringmaster.test', dnsAltNames: ['localhost'] },
    listeners: [{ address: '127.0.0.1', port: 0, requestHeaderTimeout: `${headerTimeoutMs}ms`, keepAliveTimeout: `${keepAliveMs}ms`, maxHeaderBytes: listenerMaxHeaderBytes }],
    ca: { keyLength: 2048 },
    admin: { enabled: false },
    reports: { enabled: false },
    pools: { compilers: { members: [{ name: 'a', url: a.url }], healthCheck: noHealth } },
    routes: [
      { name: 'small', match: { path: '/small/' }, to: { pool: 'compilers' }, limits: { maxBodyBytes: 100, maxHeaderBytes: 600 } },
      { name: 'wire', match: { path: '/w/' }, to: { pool: 'compilers' } },
    ],
  }, { stateDir });
  app = await startApp(config, { clock: systemClock, log: silentLog });
  port = app.listeners[0]?.address().port ?? 0;
  ca = app.ca.caBundlePem;
  const k = await generateKeyPair({ type: 'rsa', bits: 2048 });
  const cert = await app.ca.issueForKey({ certname: 'agent1.test', publicKeyPem: k.publicKeyPem, subjectAltNames: [], cliAuth: false, replace: false });
  agent1 = { cert: cert.pem, key: k.privateKeyPem };
});

afterEach(() => {
  for (const c of open.splice(0)) c.destroy();
  a.handle(undefined);
});

after(async () => {
  await app.close(1000);
  await a.close();
  await rm(stateDir, { recursive: true, force: true });
});

async function connectAgent(): Promise<RawConnection> {
  const c = await RawConnection.open({ port, ca, cert: agent1.cert, key: agent1.key });
  open.push(c);
  return c;
}

const get = (path: string, extra = '') => `GET ${path} HTTP/1.1\r\nHost: x\r\n${extra}\r\n`;
const urlOf = (r: RawResponse | undefined) => (JSON.parse(r?.body.toString() ?? '{}') as { url?: string }).url;
const smuggled = 'GET /w/smuggled HTTP/1.1\r\nHost: x\r\n\r\n';

/** Waits for anything the proxy might still be forwarding, then checks the backend saw nothing new. */
async function assertBackendUntouched(baseline: number, what: string): Promise<void> {
  await delay(100);
  assert.deepEqual(a.seen.slice(baseline).map((s) => `${s.method} ${s.url}`), [], `${what}: nothing may reach the backend`);
}

/** A connection the server keeps open after refusing a request must serve the next one. */
async function assertUsableIfOpen(c: RawConnection, waitMs: number, nothingLeft = false): Promise<void> {
  if (await c.closedWithin(waitMs)) return;
  await c.write(get('/small/after'));
  const next = await c.response();
  assert.equal(next?.status, 200);
  assert.equal(urlOf(next), '/small/after');
  if (nothingLeft) assert.equal(c.unread.length, 0);
}

type Refusal = { statuses: number[]; mustClose?: boolean; silentCloseOk?: boolean };

/** Sends `bytes` on a fresh connection: the answer must be one of `statuses` and nothing may reach the backend. */
async function assertRefused(bytes: string, o: Refusal): Promise<void> {
  const baseline = a.seen.length;
  const c = await connectAgent();
  await c.write(bytes);
  const r = await c.response();
  if (r === undefined) assert.ok(o.silentCloseOk, 'closed without a response');
  else assert.ok(o.statuses.includes(r.status), `got ${r.status}, want one of ${o.statuses.join(', ')}`);
  if (o.mustClose ?? true) {
    assert.ok(await c.closedWithin(1500), 'the server closes the connection');
    assert.equal(c.unread.length, 0, 'nothing after the refusal');
  }
  await assertBackendUntouched(baseline, JSON.stringify(bytes.slice(0, 60)));
}

const chunkedHead = (te: string) => `POST /w/te HTTP/1.1\r\nHost: x\r\n${te}\r\n`;
const chunkedBody = `5\r\nhello\r\n0\r\n\r\n${smuggled}`;

const cases: Array<{ name: string; bytes: string; o: Refusal }> = [
  // 1. Content-Length with Transfer-Encoding: either reading smuggles the GET in the body.
  { name: 'Content-Length with Transfer-Encoding: chunked', bytes: `POST /w/clte HTTP/1.1\r\nHost: x\r\nContent-Length: ${5 + smuggled.length}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${smuggled}`, o: { statuses: [400] } },
  { name: 'Transfer-Encoding: chunked before Content-Length: 0', bytes: `POST /w/tecl HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n${chunkedBody}`, o: { statuses: [400] } },
  // 2. Conflicting lengths.
  { name: 'two Content-Length headers that differ', bytes: `POST /w/clcl HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: ${5 + smuggled.length}\r\n\r\nhello${smuggled}`, o: { statuses: [400] } },
  { name: 'a Content-Length list of different values', bytes: `POST /w/cllist HTTP/1.1\r\nHost: x\r\nContent-Length: 5, ${5 + smuggled.length}\r\n\r\nhello${smuggled}`, o: { statuses: [400] } },
  // 3. Transfer-Encoding other than one plain "chunked".
  ...['chunked, identity', 'xchunked', 'identity', 'gzip', 'chunked, chunked'].map((te) => ({ name: `Transfer-Encoding: ${te}`, bytes: `${chunkedHead(`Transfer-Encoding: ${te}\r\n`)}${chunkedBody}`, o: { statuses: [400, 501] } })),
  { name: 'Transfer-Encoding: chunked sent twice', bytes: `${chunkedHead('Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n')}${chunkedBody}`, o: { statuses: [400, 501] } },
  { name: 'Transfer-Encoding: chunked then identity', bytes: `${chunkedHead('Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n')}${chunkedBody}`, o: { statuses: [400, 501] } },
  // 4. Obsolete line folding.
  { name: 'a header folded with a space', bytes: get('/w/fold', 'X-A: a\r\n b\r\n'), o: { statuses: [400] } },
  { name: 'a header folded with a tab', bytes: get('/w/fold', 'X-A: a\r\n\tb\r\n'), o: { statuses: [400] } },
  { name: 'the first header line folded', bytes: `GET /w/fold HTTP/1.1\r\n Transfer-Encoding: chunked\r\nHost: x\r\n\r\n`, o: { statuses: [400] } },
  // 5. Bare LF.
  { name: 'bare LF line endings throughout', bytes: 'GET /w/lf HTTP/1.1\nHost: x\n\n', o: { statuses: [400], silentCloseOk: true } },
  { name: 'a bare LF after one header', bytes: 'GET /w/lf HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n', o: { statuses: [400], silentCloseOk: true } },
  { name: 'a bare LF ending the head', bytes: 'GET /w/lf HTTP/1.1\r\nHost: x\r\n\n', o: { statuses: [400], silentCloseOk: true } },
  // 6. Whitespace before the colon.
  { name: 'whitespace between a header name and the colon', bytes: 'GET /w/ws HTTP/1.1\r\nHost : x\r\n\r\n', o: { statuses: [400], mustClose: false } },
  { name: 'Transfer-Encoding with a space before the colon', bytes: `${chunkedHead('Transfer-Encoding : chunked\r\n')}${chunkedBody}`, o: { statuses: [400], mustClose: false } },
  // 8. Malformed request lines (llhttp, behind node:https, took the first three: it skips extra
  // spaces, reads a line without a version as HTTP/0.9, and accepts 2.0).
  { name: 'two spaces after the method', bytes: 'GET  /w/rl HTTP/1.1\r\nHost: x\r\n\r\n', o: { statuses: [400] } },
  { name: 'a trailing space after the version', bytes: 'GET /w/rl HTTP/1.1 \r\nHost: x\r\n\r\n', o: { statuses: [400] } },
  { name: 'no HTTP version', bytes: 'GET /w/rl\r\nHost: x\r\n\r\n', o: { statuses: [400, 505] } },
  { name: 'HTTP/2.0 in the request line', bytes: 'GET /w/rl HTTP/2.0\r\nHost: x\r\n\r\n', o: { statuses: [400, 505] } },
  { name: 'a lower-case http/1.1', bytes: 'GET /w/rl http/1.1\r\nHost: x\r\n\r\n', o: { statuses: [400] } },
  { name: 'a control character in the target', bytes: 'GET /w/r\x01l HTTP/1.1\r\nHost: x\r\n\r\n', o: { statuses: [400] } },
  { name: 'DEL in the target', bytes: 'GET /w/r\x7fl HTTP/1.1\r\nHost: x\r\n\r\n', o: { statuses: [400] } },
  { name: 'a space in the target', bytes: 'GET /w/r l HTTP/1.1\r\nHost: x\r\n\r\n', o: { statuses: [400] } },
  // 9. Control characters in a header value.
  ...([['NUL', '\x00'], ['SOH', '\x01'], ['DEL', '\x7f'], ['a bare CR', '\r']] as const).map(([n, ch]) => ({
    name: `${n} in a header value`, bytes: get('/w/ctl', `X-A: a${ch}b\r\n`), o: { statuses: [400], mustClose: false },
  })),
  // 10. Host: missing, or twice (RFC 9112 3.2).
  { name: 'HTTP/1.1 without Host', bytes: 'GET /w/nohost HTTP/1.1\r\n\r\n', o: { statuses: [400], mustClose: false } },
  { name: 'HTTP/1.1 with two Host headers', bytes: 'GET /w/twohosts HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n', o: { statuses: [400], mustClose: false } },
];

for (const c of cases) {
  test(`refused: ${c.name}`, limits, () => assertRefused(c.bytes, c.o));
}

// 7. Chunk sizes: the request head is fine, so the request may already be on its way to the
// backend; it must never arrive there whole. Size lines are at most 16 hex digits, leading
// zeros included.
const badSizes = ['0x5', '-1', '5z', '00000000000000005', 'fffffffffffffffff'];
for (const size of badSizes) {
  test(`refused: chunk size ${size}`, limits, async () => {
    const baseline = a.seen.length;
    const c = await connectAgent();
    await c.write(`PUT /w/chunks HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n${size}\r\nhello\r\n0\r\n\r\n${smuggled}`);
    const r = await c.response({ timeoutMs: 2000 });
    if (r !== undefined) assert.equal(r.status, 400);
    assert.ok(await c.closedWithin(1500), 'the server closes the connection');
    await assertBackendUntouched(baseline, `chunk size ${size}`);
  });
}

// 11.
test('a head over the route limit gets 431 from the route, and the connection stays usable', limits, async () => {
  const c = await connectAgent();
  await c.write(get('/small/x', `X-Filler: ${'y'.repeat(700)}\r\n`));
  const r = await c.response();
  assert.equal(r?.status, 431);
  assert.equal(header(r, 'x-ringmaster-error'), 'RM_HEADERS_TOO_LARGE');
  await assertUsableIfOpen(c, 50);
});

test('a head over the listener limit gets 431 and the connection is closed', limits, () =>
  assertRefused(get('/w/huge', `X-Filler: ${'y'.repeat(listenerMaxHeaderBytes + 100)}\r\n`), { statuses: [431] }));

// 12.
test('pipelined requests are answered in order, each once', limits, async () => {
  // The first is answered late: a server that answers pipelined requests as they finish would reorder.
  a.handle(async (req, res) => {
    if (req.url === '/w/p1') await delay(150);
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ url: req.url }));
  });
  const baseline = a.seen.length;
  const c = await connectAgent();
  await c.write(`${get('/w/p1')}POST /w/p2 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc${get('/w/p3')}`);
  const urls: Array<string | undefined> = [];
  for (let i = 0; i < 3; i++) {
    const r = await c.response();
    assert.equal(r?.status, 200);
    urls.push(urlOf(r));
  }
  assert.deepEqual(urls, ['/w/p1', '/w/p2', '/w/p3']);
  const seen = a.seen.slice(baseline);
  assert.deepEqual(seen.map((s) => `${s.method} ${s.url}`).sort(), ['GET /w/p1', 'GET /w/p3', 'POST /w/p2']);
  assert.equal(seen.find((s) => s.url === '/w/p2')?.body.toString(), 'abc');
});

// 13.
test('keep-alive: five requests on one connection, then the idle connection is closed', limits, async () => {
  const c = await connectAgent();
  for (let i = 0; i < 5; i++) {
    await c.write(get(`/w/ka${i}`));
    const r = await c.response();
    assert.equal(r?.status, 200);
    assert.equal(urlOf(r), `/w/ka${i}`);
    assert.notEqual(header(r, 'connection')?.toLowerCase(), 'close');
  }
  const idleFrom = Date.now();
  assert.ok(await c.closedWithin(keepAliveMs + 2500), 'the idle connection is closed');
  assert.ok(Date.now() - idleFrom >= keepAliveMs / 2, 'not long before keepAliveTimeout');
  assert.equal(c.unread.length, 0);
});

// 14.
test('a chunked body with extensions and a trailer reaches the backend as its bytes', limits, async () => {
  const baseline = a.seen.length;
  const c = await connectAgent();
  await c.write('PUT /w/chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n1\r\n \r\nA;x="y z"\r\n0123456789\r\n');
  await delay(20);
  await c.write('3\r\nend\r\n0\r\nX-Trailer: t\r\n\r\n');
  const r = await c.response();
  assert.equal(r?.status, 200);
  const seen = a.seen.slice(baseline);
  assert.equal(seen.length, 1);
  assert.equal(seen[0]?.body.toString('latin1'), 'hello 0123456789end');
});

// 15.
test('a Content-Length body sent in small pieces arrives whole', limits, async () => {
  const baseline = a.seen.length;
  const body = 'the quick brown fox jumps over the lazy dog';
  const c = await connectAgent();
  await c.write(`PUT /w/trickle HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n`);
  for (let i = 0; i < body.length; i += 9) {
    await delay(30);
    await c.write(body.slice(i, i + 9));
  }
  const r = await c.response();
  assert.equal(r?.status, 200);
  assert.deepEqual(a.seen.slice(baseline).map((s) => s.body.toString()), [body]);
});

// 16. Slow heads (node:https checked its headersTimeout only every 30 s).
async function assertSlowHeadCut(c: RawConnection, startedAt: number): Promise<void> {
  assert.ok(await c.closedWithin(startedAt + headerTimeoutMs + 1500 - Date.now()), 'closed within requestHeaderTimeout and a margin');
  const r = await c.response({ timeoutMs: 100 });
  if (r !== undefined) assert.equal(r.status, 408);
}

test('slow client: a head that stops half-way is cut after requestHeaderTimeout', limits, async () => {
  const baseline = a.seen.length;
  const c = await connectAgent();
  const startedAt = Date.now();
  await c.write('GET /w/slow HTTP/1.1\r\nHost: x\r\n');
  await assertSlowHeadCut(c, startedAt);
  await assertBackendUntouched(baseline, 'slow head');
});

test('slow client: a head trickled a byte at a time is cut after requestHeaderTimeout', limits, async () => {
  const c = await connectAgent();
  const startedAt = Date.now();
  const head = `GET /w/slowloris HTTP/1.1\r\nHost: x\r\nX-Filler: ${'y'.repeat(100)}\r\n`;
  for (let i = 0; i < head.length && !c.closed && Date.now() - startedAt < headerTimeoutMs + 1500; i++) {
    await c.write(head[i]!);
    await delay(100);
  }
  await assertSlowHeadCut(c, startedAt);
});

// 17.
test('HTTP/1.0 without keep-alive: answered, then closed by the server', limits, async () => {
  const c = await connectAgent();
  await c.write('GET /w/ten HTTP/1.0\r\nHost: x\r\n\r\n');
  const r = await c.response();
  assert.equal(r?.status, 200);
  assert.equal(urlOf(r), '/w/ten');
  assert.ok(await c.closedWithin(1500), 'the server closes the connection');
});

// 18.
test('Expect: 100-continue: the body follows the 100 and reaches the backend', limits, async () => {
  const baseline = a.seen.length;
  const c = await connectAgent();
  await c.write('PUT /w/expect HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n');
  const interim = await c.response();
  assert.equal(interim?.status, 100);
  await c.write('hello');
  const r = await c.response();
  assert.equal(r?.status, 200);
  assert.deepEqual(a.seen.slice(baseline).map((s) => s.body.toString()), ['hello']);
});

// 19.
test('HEAD: the answer has no body, so the next pipelined answer parses right after it', limits, async () => {
  const c = await connectAgent();
  await c.write(`HEAD /w/head HTTP/1.1\r\nHost: x\r\n\r\n${get('/w/after-head')}`);
  const head = await c.response({ method: 'HEAD' });
  assert.equal(head?.status, 200);
  assert.equal(head.body.length, 0);
  const next = await c.response();
  assert.equal(next?.status, 200);
  assert.equal(urlOf(next), '/w/after-head');
  assert.equal(c.unread.length, 0);
});

// 20.
test('a body refused with 413 before it is read is never parsed as a request', limits, async () => {
  const baseline = a.seen.length;
  const body = `${smuggled.replace('/w/', '/small/')}${'z'.repeat(150)}`;
  const c = await connectAgent();
  await c.write(`PUT /small/big HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
  const r = await c.response();
  assert.equal(r?.status, 413);
  assert.equal(header(r, 'x-ringmaster-error'), 'RM_BODY_TOO_LARGE');
  await assertUsableIfOpen(c, 300, true);
  await delay(100);
  assert.deepEqual(a.seen.slice(baseline).map((s) => s.url).filter((u) => u !== '/small/after'), [], 'the body never reached the backend as a request');
});
