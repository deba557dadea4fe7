import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../lib/clock.ts';
import { silentLog } from './log.ts';
import { Metrics, certRejectionReason, tlsFailureReason, type StateReading } from './metrics.ts';
import { stateReader, cached, slowCacheMs } from './sources.ts';
import type { RequestRecord } from './request.ts';
import type { PoolSnapshot, MemberSnapshot } from '../pool/snapshot.ts';
import type { InventoryEntry } from '../ca/inventory.ts';
import { parsePrometheusText, sampleSum, samples } from '../../test/helpers/prometheus.ts';

const record = (over: Partial<RequestRecord> = {}): RequestRecord => ({
  time: 0, listener: 'agents', certname: 'agent1.test', client: '127.0.0.1', method: 'GET', path: '/puppet/v3/node/agent1.test', environment: 'production',
  endpoint: 'node', route: 'puppet', pool: 'compilers', member: 'c1', status: 200, bytes: 10, durationMs: 30, upstreamMs: 20, queueMs: undefined,
  retries: 0, code: undefined, completed: true, ...over,
});

const member = (over: Partial<MemberSnapshot> = {}): MemberSnapshot => ({
  name: 'c1', url: 'http://10.0.0.1:8140', priority: 0, weight: 1, maxInFlight: null, inFlight: 3, draining: false, health: 'healthy', activeChecks: true,
  lastProbeError: null, ejectedUntil: null, probation: false, eligible: true, reason: null, compiles: 2, compileSlots: 4, usableSlots: 4, slotsFrom: 'reported',
  compileMs: 1500, rampUntil: null, ...over,
});

const pool = (members: MemberSnapshot[], over: Partial<PoolSnapshot> = {}): PoolSnapshot => ({ name: 'compilers', policy: 'least-in-flight', eligible: members.filter((m) => m.eligible).length, queued: 0, oldestWaitMs: 0, members, ...over });

async function scrape(m: Metrics) {
  const { body, contentType } = await m.scrape();
  assert.match(contentType, /^text\/plain; version=0\.0\.4/);
  return parsePrometheusText(body);
}

test('finished requests move the request counters and histograms, labelled by route, pool, member, endpoint and status', async () => {
  const m = new Metrics({ read: () => Promise.resolve({ pools: [] }), now: () => 0, defaultMetrics: false });
  m.requestStarted();
  m.requestStarted();
  m.requestFinished(record());
  let e = await scrape(m);
  assert.equal(sampleSum(e, 'ringmaster_http_requests_in_flight'), 1);
  m.requestFinished(record({ status: 503, member: undefined, code: 'RM_QUEUE_TIMEOUT', endpoint: 'catalog', method: 'POST', queueMs: 1500, upstreamMs: undefined, bytes: 40, retries: 2 }));
  e = await scrape(m);
  const where = { route: 'puppet', pool: 'compilers' };
  assert.equal(sampleSum(e, 'ringmaster_http_requests_total', { ...where, member: 'c1', endpoint: 'node', status: '200' }), 1);
  assert.equal(sampleSum(e, 'ringmaster_http_requests_total', { ...where, member: '', endpoint: 'catalog', status: '503' }), 1);
  assert.equal(sampleSum(e, 'ringmaster_http_request_duration_seconds_count', { ...where, endpoint: 'node' }), 1);
  assert.equal(sampleSum(e, 'ringmaster_http_request_duration_seconds_sum', { ...where, endpoint: 'node' }), 0.03);
  assert.equal(sampleSum(e, 'ringmaster_http_request_duration_seconds_bucket', { ...where, endpoint: 'node', le: '0.025' }), 0);
  assert.equal(sampleSum(e, 'ringmaster_http_request_duration_seconds_bucket', { ...where, endpoint: 'node', le: '0.05' }), 1);
  assert.equal(sampleSum(e, 'ringmaster_upstream_response_seconds_count', { pool: 'compilers', member: 'c1', endpoint: 'node' }), 1);
  assert.equal(sampleSum(e, 'ringmaster_compile_queue_wait_seconds_sum', { pool: 'compilers' }), 1.5);
  assert.equal(sampleSum(e, 'ringmaster_http_errors_total', { ...where, code: 'RM_QUEUE_TIMEOUT' }), 1);
  assert.equal(sampleSum(e, 'ringmaster_http_response_bytes_total', where), 50);
  assert.equal(sampleSum(e, 'ringmaster_upstream_retries_total', { pool: 'compilers' }), 2);
  assert.equal(sampleSum(e, 'ringmaster_http_requests_in_flight'), 0);
  for (const name of e.keys()) assert.match(name, /^ringmaster_/);
});

test('a code that is not one of ringmaster\'s is never a label value', async () => {
  const m = new Metrics({ read: () => Promise.resolve({ pools: [] }), now: () => 0, defaultMetrics: false });
  m.requestStarted();
  m.requestFinished(record({ code: 'agent-chosen-value' }));
  const e = await scrape(m);
  assert.deepEqual(samples(e, 'ringmaster_http_errors_total'), []);
});

test('state gauges are read at scrape time; a member that is gone disappears from the next scrape', async () => {
  let reading: StateReading = {
    pools: [pool([member(), member({ name: 'c2', health: 'unhealthy', eligible: false, reason: 'unhealthy', inFlight: 0, compiles: 0, usableSlots: null, compileMs: null })], { queued: 4, oldestWaitMs: 2500 })],
    ca: { signed: 7, pending: 2, expiringSoon: 1, crlThisUpdate: 1_000, crlNextUpdate: 61_000, signingCertNotAfter: 3_601_000 },
    reports: { captured: 5, invalid: 1, failed: 0, dropped: 2, queued: 3, nodes: { changed: 1, unchanged: 4, failed: 2 }, stored: 9 },
    dns: {
      queries: { udp: 10, tcp: 2 }, responses: { NOERROR: 9, NXDOMAIN: 3 }, truncated: 1, dropped: { rateLimited: 4, short: 0, response: 0, oversize: 0, badSourcePort: 0 },
      slipped: 1, fallbackAnswers: 0, fallbackNames: 0, tcp: { open: 1, refused: 0 }, rateLimitedSources: 5,
    },
    listeners: [{ name: 'agents', connections: 12, parked: 9, parkedTotal: 30 }],
  };
  const m = new Metrics({ read: () => Promise.resolve(reading), now: () => 11_000, defaultMetrics: false });
  let e = await scrape(m);
  const c1 = { pool: 'compilers', member: 'c1' };
  assert.equal(sampleSum(e, 'ringmaster_compile_queue_depth', { pool: 'compilers' }), 4);
  assert.equal(sampleSum(e, 'ringmaster_compile_queue_oldest_wait_seconds', { pool: 'compilers' }), 2.5);
  assert.equal(sampleSum(e, 'ringmaster_pool_members_eligible', { pool: 'compilers' }), 1);
  assert.equal(sampleSum(e, 'ringmaster_pool_member_in_flight', c1), 3);
  assert.equal(sampleSum(e, 'ringmaster_pool_member_compiles', c1), 2);
  assert.equal(sampleSum(e, 'ringmaster_pool_member_compile_slots', c1), 4);
  assert.equal(sampleSum(e, 'ringmaster_pool_member_compile_seconds', c1), 1.5);
  assert.equal(sampleSum(e, 'ringmaster_pool_member_health', { ...c1, state: 'healthy' }), 1);
  assert.equal(sampleSum(e, 'ringmaster_pool_member_health', { pool: 'compilers', member: 'c2', state: 'unhealthy' }), 1);
  assert.equal(sampleSum(e, 'ringmaster_pool_member_health', { pool: 'compilers', member: 'c2', state: 'healthy' }), 0);
  assert.equal(sampleSum(e, 'ringmaster_pool_member_eligible', { pool: 'compilers', member: 'c2' }), 0);
  assert.deepEqual(samples(e, 'ringmaster_pool_member_compile_slots', { member: 'c2' }), [], 'not limited: no sample');
  assert.equal(sampleSum(e, 'ringmaster_ca_certificates_signed_total'), 7);
  assert.equal(sampleSum(e, 'ringmaster_ca_csrs_pending'), 2);
  assert.equal(sampleSum(e, 'ringmaster_ca_certificates_expiring_soon'), 1);
  assert.equal(sampleSum(e, 'ringmaster_ca_crl_age_seconds'), 10);
  assert.equal(sampleSum(e, 'ringmaster_ca_crl_expiry_seconds'), 50);
  assert.equal(sampleSum(e, 'ringmaster_ca_certificate_expiry_seconds'), 3590);
  assert.equal(sampleSum(e, 'ringmaster_reports_total', { outcome: 'captured' }), 5);
  assert.equal(sampleSum(e, 'ringmaster_reports_total', { outcome: 'dropped' }), 2);
  assert.equal(sampleSum(e, 'ringmaster_reports_queued'), 3);
  assert.equal(sampleSum(e, 'ringmaster_reports_nodes', { status: 'failed' }), 2);
  assert.equal(sampleSum(e, 'ringmaster_reports_stored'), 9);
  assert.equal(sampleSum(e, 'ringmaster_dns_queries_total', { transport: 'udp' }), 10);
  assert.equal(sampleSum(e, 'ringmaster_dns_responses_total', { rcode: 'NXDOMAIN' }), 3);
  assert.equal(sampleSum(e, 'ringmaster_dns_dropped_total', { reason: 'rateLimited' }), 4);
  assert.equal(sampleSum(e, 'ringmaster_dns_tcp_connections'), 1);
  assert.equal(sampleSum(e, 'ringmaster_listener_connections', { listener: 'agents' }), 12);
  assert.equal(sampleSum(e, 'ringmaster_listener_connections_parked', { listener: 'agents' }), 9);
  assert.equal(sampleSum(e, 'ringmaster_listener_connections_parked_total', { listener: 'agents' }), 30);

  // Counters kept elsewhere are shown as they stand, not added up scrape after scrape.
  reading = { ...reading, pools: [pool([member()])], ca: { ...reading.ca!, signed: 8 }, reports: { ...reading.reports!, captured: 6 }, errors: ['reports_store'] };
  e = await scrape(m);
  assert.equal(sampleSum(e, 'ringmaster_ca_certificates_signed_total'), 8);
  assert.equal(sampleSum(e, 'ringmaster_reports_total', { outcome: 'captured' }), 6);
  assert.deepEqual(samples(e, 'ringmaster_pool_member_in_flight', { member: 'c2' }), []);
  assert.equal(sampleSum(e, 'ringmaster_scrape_errors_total', { source: 'reports_store' }), 1);
});

test('TLS failure and certificate rejection reasons are a bounded set', () => {
  assert.equal(tlsFailureReason(Object.assign(new Error('x'), { code: 'ERR_SSL_HTTP_REQUEST' })), 'http_request');
  assert.equal(tlsFailureReason(Object.assign(new Error('x'), { code: 'ECONNRESET' })), 'connection_reset');
  assert.equal(tlsFailureReason(Object.assign(new Error('x'), { code: 'ERR_TLS_HANDSHAKE_TIMEOUT' })), 'handshake_timeout');
  assert.equal(tlsFailureReason(new Error('agent1.test said something')), 'other');
  assert.equal(tlsFailureReason(Object.assign(new Error('x'), { code: 'ERR_SSL_' + 'A'.repeat(200) })), 'other');
  assert.equal(certRejectionReason('CERT_HAS_EXPIRED'), 'cert_has_expired');
  assert.equal(certRejectionReason('certificate has no common name'), 'no_common_name');
  assert.equal(certRejectionReason('CN=agent1.test is weird'), 'other');
});

test('the costly sources are read at most once a minute on the injected clock, and a failing one does not fail the scrape', async () => {
  const clock = new ManualClock();
  let inventoryReads = 0;
  let storeFails = true;
  const day = 86_400_000;
  const entry = (serial: bigint, name: string, daysLeft: number): InventoryEntry => ({ serial, notBefore: new Date(0), notAfter: new Date(clock.now() + daysLeft * day), subject: `/CN=${name}` });
  const read = stateReader({
    pools: () => new Map(),
    ca: {
      signedCount: 3, crlThisUpdate: new Date(clock.now()), crlNextUpdate: undefined, signingCert: { notAfter: new Date(clock.now() + 365 * day) },
      isRevoked: () => false,
      inventory: () => {
        inventoryReads++;
        return Promise.resolve([entry(1n, 'a', 10), entry(2n, 'b', 90)]);
      },
      pendingNames: () => Promise.resolve(['x']),
      store: { listSigned: () => Promise.resolve(['a', 'b']) },
    },
    reports: () => ({
      capture: { captured: 1, invalid: 0, failed: 0, dropped: 0, queued: 0 },
      store: { stats: () => (storeFails ? Promise.reject(new Error('database is locked')) : Promise.resolve({ nodes: { changed: 1, unchanged: 0, failed: 0 }, stored: 1 })) },
    }),
  }, { clock, log: silentLog });
  const first = await read();
  assert.equal(first.ca?.expiringSoon, 1);
  assert.equal(first.ca?.pending, 1);
  assert.deepEqual(first.errors, ['reports_store']);
  assert.equal(first.reports?.captured, 1, 'the capture counters are there although the store failed');
  assert.equal(first.reports?.stored, undefined);
  storeFails = false;
  clock.advance(slowCacheMs - 1);
  const second = await read();
  assert.equal(inventoryReads, 1, 'cached');
  assert.equal(second.reports?.stored, 1, 'a failure is not cached');
  clock.advance(1);
  await read();
  assert.equal(inventoryReads, 2);
});

test('concurrent scrapes share one read of a cached source', async () => {
  const clock = new ManualClock();
  let calls = 0;
  let release!: (n: number) => void;
  const f = cached(clock, 1000, () => {
    calls++;
    return new Promise<number>((r) => (release = r));
  });
  const a = f();
  const b = f();
  release(5);
  assert.deepEqual(await Promise.all([a, b]), [5, 5]);
  assert.equal(calls, 1);
});

test('the test parser is strict: it refuses what Prometheus would refuse', () => {
  const ok = '# HELP x_total X.\n# TYPE x_total counter\nx_total{a="1\\"q"} 2\n';
  assert.equal(sampleSum(parsePrometheusText(ok), 'x_total', { a: '1"q' }), 2);
  for (const bad of [
    '# TYPE x counter\nx 1',
    '# TYPE x counter\nx{a="1"} 1\nx{a="1"} 2\n',
    '# TYPE x gauge\nx 1\n# TYPE y gauge\ny 1\nx{b="2"} 1\n',
    '# TYPE x gauge\nx{1a="1"} 1\n',
    '# TYPE x gauge\nx{a="\\t"} 1\n',
    '# TYPE x gauge\nx one\n',
    '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n',
    '# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 2\n',
  ]) assert.throws(() => parsePrometheusText(bad), Error, bad);
});

test('the request tallies are exposed in Prometheus text like the other metrics, and reset with the registry', async () => {
  const m = new Metrics({ read: () => Promise.resolve({ pools: [] }), now: () => 0, defaultMetrics: false });
  m.requestStarted();
  m.requestFinished(record({ durationMs: 200_000, upstreamMs: 150_000 }));
  const { body } = await m.scrape();
  assert.match(body, /^# HELP ringmaster_http_requests_total .+\n# TYPE ringmaster_http_requests_total counter\nringmaster_http_requests_total\{route="puppet",pool="compilers",member="c1",endpoint="node",status="200"\} 1$/m);
  assert.match(body, /^# TYPE ringmaster_http_request_duration_seconds histogram$/m);
  assert.match(body, /^ringmaster_http_request_duration_seconds_bucket\{route="puppet",pool="compilers",member="c1",endpoint="node",le="120"\} 0$/m);
  assert.match(body, /^ringmaster_http_request_duration_seconds_bucket\{route="puppet",pool="compilers",member="c1",endpoint="node",le="\+Inf"\} 1$/m);
  const e = parsePrometheusText(body);
  assert.equal(sampleSum(e, 'ringmaster_upstream_response_seconds_sum', { pool: 'compilers', member: 'c1', endpoint: 'node' }), 150);
  m.registry.resetMetrics();
  const after = parsePrometheusText((await m.scrape()).body);
  assert.equal(samples(after, 'ringmaster_http_requests_total').length, 0);
});

test('with an external CA the CRL in use still has its age and expiry; nothing is signed or pending here', async () => {
  const clock = new ManualClock(100_000);
  const read = stateReader({ pools: () => new Map(), crl: { crlThisUpdate: new Date(40_000), crlNextUpdate: new Date(160_000), crlRefreshFailures: 2 } }, { clock, log: silentLog });
  const m = new Metrics({ read, now: () => clock.now(), defaultMetrics: false });
  const e = await scrape(m);
  assert.equal(sampleSum(e, 'ringmaster_ca_crl_age_seconds'), 60);
  assert.equal(sampleSum(e, 'ringmaster_ca_crl_expiry_seconds'), 60);
  assert.equal(sampleSum(e, 'ringmaster_ca_crl_refresh_failures_total'), 2);
  assert.equal(sampleSum(e, 'ringmaster_ca_certificates_signed_total'), 0);
  assert.equal(sampleSum(e, 'ringmaster_ca_csrs_pending'), 0);
});
