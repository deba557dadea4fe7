import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ManualClock } from '../lib/clock.ts';
import { RequestObserver } from './observer.ts';
import { accessFields, accessText, openAccessLog, type AccessLog } from './access-log.ts';
import { puppetEndpoint, type RequestRecord } from './request.ts';

// The observer on a real (plain HTTP) socket: one record per request, whatever way it ends.

async function withServer(handler: (req: IncomingMessage, res: ServerResponse) => void, run: (port: number) => Promise<void>): Promise<void> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    await run((server.address() as AddressInfo).port);
  } finally {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
}

function get(port: number, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ port, host: '127.0.0.1', path, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject).end();
  });
}

function recorder(): { log: AccessLog; records: RequestRecord[]; next: () => Promise<RequestRecord> } {
  const records: RequestRecord[] = [];
  const waiting: ((r: RequestRecord) => void)[] = [];
  return {
    records,
    log: { write: (r) => { records.push(r); waiting.shift()?.(r); }, reopen: () => undefined, close: () => Promise.resolve() },
    next: () => new Promise((resolve) => waiting.push(resolve)),
  };
}

test('one record per request when its response closes, with the body bytes its writer counted, the path without its query, the code the response carries, and 499 when the agent left first', async () => {
  const clock = new ManualClock();
  const rec = recorder();
  const observer = new RequestObserver({ clock, accessLog: rec.log });
  await withServer((req, res) => {
    const { trace, end } = observer.begin('agents', req, res, () => 'agent1.test');
    res.on('close', end);
    if (req.url?.startsWith('/puppet/v3/node/')) {
      trace.route = 'puppet';
      trace.pool = 'compilers';
      trace.member = 'c1';
      trace.attempts = 2;
      clock.advance(25);
      res.writeHead(200, { 'content-type': 'text/plain' });
      // The writer counts what it writes, as the listener and the proxy do.
      trace.bytes = Buffer.byteLength('héllo ') + 5;
      res.write('héllo ');
      res.end(Buffer.from('world'));
    } else if (req.url === '/missing') {
      res.setHeader('x-ringmaster-error', 'RM_NOT_FOUND');
      trace.bytes = 5;
      res.writeHead(404).end('nope\n');
    } else {
      // Never answered: the client gives up.
    }
  }, async (port) => {
    const ended = rec.next();
    const ok = await get(port, '/puppet/v3/node/agent1.test?environment=production&token=s3cret');
    assert.equal(ok.body, 'héllo world');
    const r = await ended;
    assert.equal(r.status, 200);
    assert.equal(r.bytes, Buffer.byteLength('héllo world'));
    assert.equal(r.path, '/puppet/v3/node/agent1.test');
    assert.equal(r.environment, 'production');
    assert.equal(r.endpoint, 'node');
    assert.equal(r.certname, 'agent1.test');
    assert.equal(r.client, '127.0.0.1');
    assert.deepEqual([r.route, r.pool, r.member, r.retries, r.code, r.completed], ['puppet', 'compilers', 'c1', 1, undefined, true]);
    assert.equal(r.durationMs, 25, 'measured on the injected clock');

    const missing = rec.next();
    await get(port, '/missing');
    assert.deepEqual([(await missing).status, (await missing).code, (await missing).bytes], [404, 'RM_NOT_FOUND', 5]);

    const gone = rec.next();
    const req = request({ port, host: '127.0.0.1', path: '/hang' });
    req.on('error', () => undefined).end();
    await new Promise((r) => setImmediate(r));
    setTimeout(() => req.destroy(), 20);
    const g = await gone;
    assert.deepEqual([g.status, g.completed, g.bytes, g.endpoint], [499, false, 0, 'other']);
  });
  assert.equal(rec.records.length, 3);
});

test('access lines carry an allowlist of fields, never headers or query strings; the text format has the same facts', () => {
  const r: RequestRecord = {
    time: Date.UTC(2026, 0, 1), listener: 'agents', certname: 'agent1.test', client: '10.0.0.9', method: 'PUT', path: '/puppet/v3/report/agent1.test', environment: 'production',
    endpoint: 'report', route: 'puppet', pool: 'compilers', member: 'c1', status: 200, bytes: 2, durationMs: 12.345, upstreamMs: 10, queueMs: undefined, retries: 0, code: undefined, completed: true,
  };
  assert.deepEqual(Object.keys(accessFields(r)), ['time', 'listener', 'certname', 'client', 'method', 'path', 'environment', 'endpoint', 'route', 'pool', 'member', 'status', 'bytes', 'durationMs', 'upstreamMs', 'queueMs', 'retries', 'code', 'completed']);
  assert.equal(accessFields(r).durationMs, 12.3);
  assert.equal(accessFields(r).queueMs, null);
  assert.equal(
    accessText(r),
    '10.0.0.9 agent1.test [2026-01-01T00:00:00.000Z] "PUT /puppet/v3/report/agent1.test" 200 2 duration=12.3ms route=puppet pool=compilers member=c1 upstream=10ms queue=- retries=0 code=- env=production',
  );
  const long = accessFields({ ...r, path: `/${'a'.repeat(5000)}` }).path as string;
  assert.ok(long.length < 1100);
});

test('the access log writes one JSON object per line through pino, or text lines', () => {
  const r: RequestRecord = {
    time: 0, listener: 'agents', certname: undefined, client: '127.0.0.1', method: 'GET', path: '/status/v1/simple', environment: undefined, endpoint: 'status',
    route: 'status', pool: undefined, member: undefined, status: 200, bytes: 7, durationMs: 1, upstreamMs: undefined, queueMs: undefined, retries: 0, code: undefined, completed: true,
  };
  const lines: string[] = [];
  const dest = { write: (s: string) => void lines.push(s) };
  openAccessLog({ enabled: true, destination: 'stdout', format: 'json' }, dest)!.write(r);
  openAccessLog({ enabled: true, destination: 'stdout', format: 'text' }, dest)!.write(r);
  assert.equal(openAccessLog({ enabled: false, destination: 'stdout', format: 'json' }, dest), undefined);
  assert.equal(lines.length, 2);
  const json = JSON.parse(lines[0]!) as Record<string, unknown>;
  assert.equal(json.type, 'access');
  assert.equal(json.time, '1970-01-01T00:00:00.000Z');
  assert.equal(json.certname, null);
  assert.equal(json.level, undefined);
  assert.ok(lines[1]!.startsWith('127.0.0.1 - [1970-01-01T00:00:00.000Z] "GET /status/v1/simple" 200 7 '));
  assert.ok(lines.every((l) => l.endsWith('\n') && l.indexOf('\n') === l.length - 1));
});

test('Puppet endpoints are classified from the path into a fixed set', () => {
  const cases: [string, string][] = [
    ['/puppet/v3/catalog/a', 'catalog'], ['/puppet/v4/catalog', 'catalog'], ['/puppet/v3/file_content/modules/x/y', 'file_content'],
    ['/puppet/v3/file_metadatas/plugins', 'file_metadatas'], ['/puppet/v3/file_metadata/modules/x', 'file_metadata'], ['/puppet/v3/node/a', 'node'],
    ['/puppet/v3/report/a', 'report'], ['/puppet/v3/whatever/a', 'puppet_other'], ['/puppet/v3/environments', 'environments'],
    ['/puppet/v3/', 'puppet_other'], ['/puppet/v3', 'puppet_other'], ['/puppet/v3/node', 'node'], ['/puppet-ca/v1/certificate/ca', 'certificate'],
    ['/puppet-ca/v1/certificate_request/a', 'certificate_request'], ['/puppet-ca/v1/certificate_revocation_list/ca', 'certificate_revocation_list'],
    ['/puppet-ca/v1/certificate_statuses/any', 'certificate_status'], ['/puppet-ca/v1/certificate_renewal', 'certificate_renewal'],
    ['/puppet-ca/v1/sign', 'ca_other'], ['/status/v1/simple', 'status'], ['/', 'other'], ['/agent1.test/secret', 'other'],
  ];
  for (const [path, endpoint] of cases) assert.equal(puppetEndpoint(path), endpoint, path);
});
