import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import { after, before, test } from 'node:test';
import { MemberConnections, type UpstreamRequest } from './connections.ts';
import { ChunkedDecoder } from '../listener/head.ts';
import { classify } from './failure.ts';

// The member side is a scripted server on a real socket: each test says, per request that
// arrives, which raw bytes to answer (and when to close), so framing cases puppetserver never
// produces on purpose can still be driven.

type Script = (request: string, socket: Socket, connection: number) => void;

let server: Server;
let port = 0;
let script: Script = () => undefined;
let connections = 0;
const sockets = new Set<Socket>();

before(async () => {
  server = createServer((socket) => {
    const connection = ++connections;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    let buf = '';
    socket.on('data', (d) => {
      buf += d.toString('latin1');
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.slice(0, end);
        const length = Number(/\r\ncontent-length: (\d+)/i.exec(head)?.[1] ?? 0);
        const chunked = /\r\ntransfer-encoding: chunked/i.test(head);
        let bodyEnd = end + 4 + length;
        if (chunked) {
          const last = buf.indexOf('0\r\n\r\n', end + 4);
          if (last < 0) return;
          bodyEnd = last + 5;
        }
        if (buf.length < bodyEnd) return;
        const request = buf.slice(0, bodyEnd);
        buf = buf.slice(bodyEnd);
        script(request, socket, connection);
      }
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

after(async () => {
  for (const s of sockets) s.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const member = (): MemberConnections => new MemberConnections(`http://127.0.0.1:${port}`, { connectTimeoutMs: 2000, keepAliveMs: 10_000, tls: { verify: false, ca: [], serverName: undefined, client: undefined } });

type Result = { status: number; headers: Record<string, string | string[] | undefined>; body: string } | { error: Error };

function send(m: MemberConnections, r: Partial<UpstreamRequest> = {}): Promise<Result> {
  return new Promise((resolve) => {
    let status = 0;
    let headers: Record<string, string | string[] | undefined> = {};
    const chunks: Buffer[] = [];
    m.exchange(
      { method: 'GET', path: '/x', headers: { accept: 'application/json' }, body: undefined, headersTimeoutMs: 2000, bodyTimeoutMs: 2000, ...r },
      {
        head: (h) => {
          status = h.status;
          headers = h.headers();
        },
        data: (c) => chunks.push(Buffer.from(c)),
        end: () => resolve({ status, headers, body: Buffer.concat(chunks).toString('latin1') }),
        error: (error) => resolve({ error }),
      },
    );
  });
}

function ok(r: Result): { status: number; headers: Record<string, string | string[] | undefined>; body: string } {
  if ('error' in r) throw r.error;
  return r;
}

/** Writes `parts` one by one in separate packets. */
async function dribble(socket: Socket, parts: string[]): Promise<void> {
  for (const p of parts) {
    socket.write(p);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

test('a response split anywhere is reassembled, and the kept-alive connection carries the next request', async () => {
  const seen: string[] = [];
  script = (request, socket) => {
    seen.push(request);
    void dribble(socket, ['HTTP/1.1 200 OK\r\nContent-Ty', 'pe: application/json\r\nSet-Cookie: a\r\nSet-Cookie: b\r\nContent-Length: 11\r', '\n\r\nhello', ' world']);
  };
  const m = member();
  const before = connections;
  const a = ok(await send(m));
  const b = ok(await send(m));
  assert.equal(a.status, 200);
  assert.equal(a.body, 'hello world');
  assert.equal(b.body, 'hello world');
  assert.deepEqual(a.headers['set-cookie'], ['a', 'b']);
  assert.equal(a.headers['content-type'], 'application/json');
  assert.equal(connections - before, 1, 'both requests on one connection');
  assert.match(seen[0]!, /^GET \/x HTTP\/1\.1\r\nhost: 127\.0\.0\.1:\d+\r\naccept: application\/json\r\n\r\n$/);
  await m.destroy();
});

test('chunked responses are decoded (extensions and trailers dropped) and the connection is reused', async () => {
  script = (_r, socket) => void dribble(socket, ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhel', 'lo\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n']);
  const m = member();
  const before = connections;
  assert.equal(ok(await send(m)).body, 'hello world');
  assert.equal(ok(await send(m)).body, 'hello world');
  assert.equal(connections - before, 1);
  await m.destroy();
});

test('a response without length is read to the close, and the connection is not reused', async () => {
  script = (_r, socket) => {
    socket.end('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end');
  };
  const m = member();
  const before = connections;
  assert.equal(ok(await send(m)).body, 'until the end');
  assert.equal(ok(await send(m)).body, 'until the end');
  assert.equal(connections - before, 2);
  await m.destroy();
});

test('HEAD, 204 and 304 have no body whatever their headers say; 1xx heads are skipped', async () => {
  script = (request, socket) => {
    if (request.startsWith('HEAD')) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n');
    else if (request.startsWith('GET /204')) socket.write('HTTP/1.1 204 No Content\r\n\r\n');
    else if (request.startsWith('GET /304')) socket.write('HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n');
    else socket.write('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok');
  };
  const m = member();
  const before = connections;
  assert.equal(ok(await send(m, { method: 'HEAD' })).status, 200);
  assert.equal(ok(await send(m, { path: '/204' })).status, 204);
  assert.equal(ok(await send(m, { path: '/304' })).status, 304);
  const created = ok(await send(m, { path: '/1xx' }));
  assert.equal(created.status, 201);
  assert.equal(created.body, 'ok');
  assert.equal(connections - before, 1);
  await m.destroy();
});

test('doubtful framing fails the exchange or retires the connection, never reuses it', async () => {
  script = (request, socket) => {
    if (request.includes('/bad-status')) socket.write('HTTP/1.1 2OO OK\r\n\r\n');
    else if (request.includes('/bad-length')) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello');
    else if (request.includes('/bad-header')) socket.write('HTTP/1.1 200 OK\r\nBad Header: x\r\nContent-Length: 0\r\n\r\n');
    else if (request.includes('/both')) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n');
    else if (request.includes('/extra')) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokSURPLUS');
    else if (request.includes('/bad-chunk')) socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n');
    else socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
  };
  const m = member();
  for (const path of ['/bad-status', '/bad-length', '/bad-header', '/bad-chunk']) {
    const r = await send(m, { path });
    assert.ok('error' in r, `${path} fails`);
    assert.equal((r.error as { code?: string }).code, 'UPSTREAM_PROTOCOL');
    assert.equal(classify(r.error), 'other', 'a protocol error is not retried as a reset');
  }
  for (const path of ['/both', '/extra']) {
    assert.equal(ok(await send(m, { path })).body, 'ok');
    const before = connections;
    ok(await send(m, { path: '/next' }));
    assert.equal(connections - before, 1, `${path}: the next request needed a new connection`);
  }
  await m.destroy();
});

test('the connection is kept only when the member says so; agreeing repeated lengths are one length', async () => {
  script = (request, socket) => {
    if (request.includes('/http10-keep')) socket.write('HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok');
    else if (request.includes('/http10')) socket.write('HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok');
    else if (request.includes('/close')) socket.write('HTTP/1.1 200 OK\r\nConnection: Upgrade, Close\r\nContent-Length: 2\r\n\r\nok');
    else if (request.includes('/same-length')) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\ncontent-length: 2\r\n\r\nok');
    else if (request.includes('/no-colon')) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nNoColonHere\r\n\r\nok');
    else socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
  };
  const m = member();
  for (const [path, reused] of [['/http10-keep', true], ['/http10', false], ['/close', false], ['/same-length', true]] as const) {
    assert.equal(ok(await send(m, { path })).body, 'ok', path);
    const before = connections;
    ok(await send(m, { path: '/next' }));
    assert.equal(connections - before, reused ? 0 : 1, `${path}: connection ${reused ? 'kept' : 'not kept'}`);
  }
  const r = await send(m, { path: '/no-colon' });
  assert.ok('error' in r && (r.error as { code?: string }).code === 'UPSTREAM_PROTOCOL', 'a field line without a colon fails the exchange');
  await m.destroy();
});

test('a kept-alive connection the member closed is replaced transparently for a request that can be sent again', async () => {
  let answered = 0;
  script = (request, socket, connection) => {
    // The first connection answers once, then drops the next request without a byte.
    if (connection === firstConnection && answered > 0) {
      socket.destroy();
      return;
    }
    answered++;
    socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${request.length}\r\n\r\n${request}`);
  };
  const firstConnection = connections + 1;
  const m = member();
  ok(await send(m));
  const again = ok(await send(m, { method: 'POST', path: '/catalog', headers: { 'content-type': 'text/plain' }, body: Buffer.from('facts') }));
  assert.equal(again.status, 200);
  assert.match(again.body, /\r\n\r\nfacts$/);
  assert.match(again.body, /content-length: 5\r\n/);

  // A streamed body cannot be sent twice: the failure is the caller's to handle.
  answered = 0;
  const m2 = member();
  const second = connections + 1;
  script = (request, socket, connection) => {
    if (connection === second && answered > 0) {
      socket.destroy();
      return;
    }
    answered++;
    socket.write('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
  };
  ok(await send(m2));
  const stream = new PassThrough();
  const pending = send(m2, { method: 'PUT', path: '/report', headers: { 'content-length': '4' }, body: stream });
  stream.end('data');
  const failed = await pending;
  assert.ok('error' in failed);
  assert.equal(classify(failed.error), 'reset');
  await m.destroy();
  await m2.destroy();
});

test('a streamed body without a length goes out chunked; with a length, as is', async () => {
  const seen: string[] = [];
  script = (request, socket) => {
    seen.push(request);
    socket.write('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
  };
  const m = member();
  const s1 = new PassThrough();
  const p1 = send(m, { method: 'PUT', path: '/a', headers: {}, body: s1 });
  s1.write('abc');
  s1.end('defgh');
  ok(await p1);
  assert.match(seen[0]!, /transfer-encoding: chunked\r\n\r\n3\r\nabc\r\n5\r\ndefgh\r\n0\r\n\r\n$/);
  const s2 = new PassThrough();
  const p2 = send(m, { method: 'PUT', path: '/b', headers: { 'content-length': '6' }, body: s2 });
  s2.end('123456');
  ok(await p2);
  assert.match(seen[1]!, /^PUT \/b HTTP\/1\.1\r\nhost: [^\r]*\r\ncontent-length: 6\r\n\r\n123456$/);
  assert.doesNotMatch(seen[1]!, /transfer-encoding/);
  await m.destroy();
});

test('timeouts: no head in time, a member silent mid-body; an abort before the head reaches the sink', async () => {
  script = (request, socket) => {
    if (request.includes('/mid')) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc');
  };
  const m = member();
  const slow = await send(m, { path: '/slow', headersTimeoutMs: 50 });
  assert.ok('error' in slow);
  assert.equal(classify(slow.error), 'timeout');
  const mid = await send(m, { path: '/mid', bodyTimeoutMs: 50 });
  assert.ok('error' in mid);
  assert.equal((mid.error as { code?: string }).code, 'UPSTREAM_BODY_TIMEOUT');

  const aborted = await new Promise<Error>((resolve) => {
    const control = m.exchange({ method: 'GET', path: '/never', headers: {}, body: undefined, headersTimeoutMs: 5000, bodyTimeoutMs: 5000 }, {
      head: () => undefined, data: () => undefined, end: () => resolve(new Error('ended')), error: resolve,
    });
    control.abort(Object.assign(new Error('agent left'), { code: 'CLIENT_GONE' }));
  });
  assert.equal(classify(aborted), 'aborted');
  await m.destroy();
});

test('an idle kept-alive connection is closed after keepAliveMs; a paused response is not timed out', async () => {
  let closedAt = 0;
  script = (request, socket) => {
    socket.once('close', () => (closedAt = performance.now()));
    if (request.includes('/big')) {
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nabc');
      setTimeout(() => socket.write('def'), 20);
    } else {
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    }
  };
  const m = new MemberConnections(`http://127.0.0.1:${port}`, { connectTimeoutMs: 2000, keepAliveMs: 100, tls: { verify: false, ca: [], serverName: undefined, client: undefined } });
  const answered = performance.now();
  ok(await send(m));
  for (let i = 0; i < 100 && closedAt === 0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(closedAt - answered >= 90, `closed ${Math.round(closedAt - answered)} ms after the answer, not before the keep-alive`);

  // The agent holds the response paused for four times the body timeout: that is not the member's silence.
  const paused = await new Promise<Result>((resolve) => {
    const chunks: Buffer[] = [];
    m.exchange({ method: 'GET', path: '/big', headers: {}, body: undefined, headersTimeoutMs: 2000, bodyTimeoutMs: 50 }, {
      head: (_h, control) => {
        control.pause();
        setTimeout(() => control.resume(), 200);
      },
      data: (c) => chunks.push(Buffer.from(c)),
      end: () => resolve({ status: 200, headers: {}, body: Buffer.concat(chunks).toString('latin1') }),
      error: (error) => resolve({ error }),
    });
  });
  assert.deepEqual(paused, { status: 200, headers: {}, body: 'abcdef' });
  await m.destroy();
});

test('a refused connection is a connect failure', async () => {
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const deadPort = (closed.address() as AddressInfo).port;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  const m = new MemberConnections(`http://127.0.0.1:${deadPort}`, { connectTimeoutMs: 2000, keepAliveMs: 1000, tls: { verify: false, ca: [], serverName: undefined, client: undefined } });
  const r = await send(m);
  assert.ok('error' in r);
  assert.equal(classify(r.error), 'connect');
  await m.destroy();
});

test('the chunked decoder refuses bad framing and reports bytes after the last chunk', () => {
  const out: string[] = [];
  const d = new ChunkedDecoder();
  assert.equal(d.push(Buffer.from('3\r\nabc\r\n0\r\n\r\n'), (c) => out.push(c.toString())), 'end');
  assert.deepEqual(out, ['abc']);
  assert.equal(new ChunkedDecoder().push(Buffer.from('3\r\nabcX\r\n'), () => undefined), 'error');
  assert.equal(new ChunkedDecoder().push(Buffer.from('-1\r\n'), () => undefined), 'error');
  assert.equal(new ChunkedDecoder().push(Buffer.from('3\nabc'), () => undefined), 'error', 'a bare LF is not a line end');
  assert.equal(new ChunkedDecoder().push(Buffer.from('0\r\n\r\nHTTP'), () => undefined), 'extra');
  assert.equal(new ChunkedDecoder().push(Buffer.from('a'.repeat(5000)), () => undefined), 'error', 'an endless size line');
});
