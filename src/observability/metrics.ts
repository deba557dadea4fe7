import { Counter, Gauge, Registry, collectDefaultMetrics, type Metric } from 'prom-client';
import { errorCodes } from '../lib/error-codes.ts';
import type { PoolSnapshot } from '../pool/snapshot.ts';
import type { StatusCounts } from '../reports/store.ts';
import type { DnsStats } from '../dns/responder.ts';
import type { RequestRecord } from './request.ts';
import { TallyCounter, TallyHistogram } from './tally.ts';

// The only importer of prom-client. Every metric is defined here, with the `ringmaster_` prefix.
// Request metrics are counted as requests finish; state (pools, CA, reports, DNS) is read when
// Prometheus scrapes, from a `StateReading` the caller builds from the live objects. Labels are
// bounded: route, pool and member names come from the configuration, endpoints and codes from
// fixed lists, and never a certname. The four metrics every agent request moves are tallies
// (tally.ts): counted into plain numbers by label key, read by the registry when scraped.

/** What the state gauges show, read at scrape time; a part that could not be read is left out. */
export type StateReading = {
  pools: PoolSnapshot[];
  /** The built-in CA; with an external one only the CRL's dates. */
  ca?: {
    signed?: number | undefined;
    pending?: number | undefined;
    expiringSoon?: number | undefined;
    crlThisUpdate?: number | undefined;
    crlNextUpdate?: number | undefined;
    signingCertNotAfter?: number | undefined;
    /** External CA: CRL fetches that failed since start. */
    crlRefreshFailures?: number | undefined;
  } | undefined;
  reports?: {
    captured: number;
    invalid: number;
    failed: number;
    dropped: number;
    queued: number;
    nodes?: StatusCounts | undefined;
    stored?: number | undefined;
  } | undefined;
  dns?: DnsStats | undefined;
  /** Agent listeners: connections open, parked now and parked since start. */
  listeners?: { name: string; connections: number; parked: number; parkedTotal: number }[] | undefined;
  /** Sources that failed this scrape, counted in ringmaster_scrape_errors_total. */
  errors?: string[];
};

export type MetricsOptions = { read: () => Promise<StateReading>; now: () => number; defaultMetrics?: boolean };

/** The keys of one series of each per-request tally; the requests' own by HTTP status. */
type SeriesKeys = { where: string; bytes: string; upstream: string; byStatus: Map<number, string> };

/** The map under `key` in `map`, made when missing. */
function within<T>(map: Map<string, Map<string, T>>, key: string): Map<string, T> {
  let inner = map.get(key);
  if (inner === undefined) map.set(key, (inner = new Map<string, T>()));
  return inner;
}

const durationBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
const queueBuckets = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

export class Metrics {
  readonly registry = new Registry();
  #options: MetricsOptions;
  #m;
  #inFlight = 0;
  #keys = new Map<string, Map<string, Map<string, Map<string, SeriesKeys>>>>();

  constructor(options: MetricsOptions) {
    this.#options = options;
    const registers = [this.registry];
    const counter = <L extends string>(name: string, help: string, labelNames: readonly L[] = []) => new Counter<L>({ name: `ringmaster_${name}`, help, labelNames, registers });
    const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[] = []) => new Gauge<L>({ name: `ringmaster_${name}`, help, labelNames, registers });
    // prom-client's registry exports any object with its metrics' get() and reset(); its types
    // name only its own classes.
    const tally = <T extends TallyCounter | TallyHistogram>(t: T): T => {
      this.registry.registerMetric(t as unknown as Metric);
      return t;
    };
    // Counted in a plain number on the request path and read when scraped.
    const inFlight: Gauge = new Gauge({ name: 'ringmaster_http_requests_in_flight', help: 'Agent requests being answered now.', registers, collect: (): void => inFlight.set(this.#inFlight) });
    this.#m = {
      requests: tally(new TallyCounter('ringmaster_http_requests_total', 'Agent requests answered, by route, pool, member, Puppet endpoint and HTTP status (499: the agent left first).')),
      duration: tally(new TallyHistogram('ringmaster_http_request_duration_seconds', 'Time from the request arriving to its response finishing.', durationBuckets)),
      bytes: tally(new TallyCounter('ringmaster_http_response_bytes_total', 'Response body bytes sent to agents.')),
      errors: counter('http_errors_total', 'Responses carrying an RM_* error code (docs/errors.md).', ['route', 'pool', 'code']),
      inFlight,
      upstream: tally(new TallyHistogram('ringmaster_upstream_response_seconds', 'Time from sending a request to a member until its response head arrived (for a catalog: the compile).', durationBuckets)),
      retries: counter('upstream_retries_total', 'Requests sent to another member after one failed before answering.', ['pool']),
      queueWait: tally(new TallyHistogram('ringmaster_compile_queue_wait_seconds', 'Time catalog compiles waited for a compile slot (0 when one was free).', queueBuckets)),
      queueDepth: gauge('compile_queue_depth', 'Catalog compiles waiting for a compile slot.', ['pool']),
      queueOldest: gauge('compile_queue_oldest_wait_seconds', 'How long the oldest waiting compile has waited.', ['pool']),
      eligible: gauge('pool_members_eligible', 'Members that may take a request now.', ['pool']),
      memberHealth: gauge('pool_member_health', '1 for the member\'s active health-check state (unknown until probed, and without active checks).', ['pool', 'member', 'state']),
      memberEligible: gauge('pool_member_eligible', '1 while the member may take a request (healthy, not ejected, not draining, not full).', ['pool', 'member']),
      memberDraining: gauge('pool_member_draining', '1 while the member is draining.', ['pool', 'member']),
      memberEjected: gauge('pool_member_ejected', '1 while passive health checks keep the member out.', ['pool', 'member']),
      memberInFlight: gauge('pool_member_in_flight', 'Requests in flight on the member.', ['pool', 'member']),
      memberCompiles: gauge('pool_member_compiles', 'Catalog compiles running on the member.', ['pool', 'member']),
      memberSlots: gauge('pool_member_compile_slots', 'Compile slots usable on the member now (absent when not limited).', ['pool', 'member']),
      memberCompile: gauge('pool_member_compile_seconds', 'Moving average of the member\'s compile time.', ['pool', 'member']),
      tlsHandshakes: counter('tls_handshakes_total', 'TLS handshakes completed on agent listeners, by client certificate: verified, none, or rejected.', ['listener', 'client_cert']),
      tlsFailures: counter('tls_handshake_failures_total', 'TLS handshakes that failed, by reason (OpenSSL\'s, lower-cased).', ['listener', 'reason']),
      refused: counter('http_requests_refused_total', 'Agent requests refused before they were routed (malformed, head too large or too slow), by error code; they have no access-log record.', ['listener', 'code']),
      tlsRejected: counter('tls_client_cert_rejected_total', 'Client certificates presented that did not verify, by reason (requests on them are refused with RM_TLS_PEER_REJECTED).', ['listener', 'reason']),
      caSigned: counter('ca_certificates_signed_total', 'Certificates this process signed.'),
      caPending: gauge('ca_csrs_pending', 'Certificate requests waiting to be signed.'),
      caExpiring: gauge('ca_certificates_expiring_soon', 'Signed, unrevoked certificates that expire within 30 days.'),
      crlAge: gauge('ca_crl_age_seconds', 'Time since the CA\'s CRL was issued (thisUpdate).'),
      crlRefreshFailures: counter('ca_crl_refresh_failures_total', 'With an external CA: CRL fetches from its pool that failed (unreachable, refused, or not verifying against ca.external.caFile); the CRL in use stays.'),
      crlExpiry: gauge('ca_crl_expiry_seconds', 'Time until the CA\'s CRL expires (nextUpdate); agents fail when it passes.'),
      caCertExpiry: gauge('ca_certificate_expiry_seconds', 'Time until the CA signing certificate expires.'),
      reports: counter('reports_total', 'Reports by what became of them: captured (stored), invalid, failed (store error) or dropped (queue full).', ['outcome']),
      reportsQueued: gauge('reports_queued', 'Reports waiting to be stored.'),
      reportsNodes: gauge('reports_nodes', 'Nodes by the status of their last stored report.', ['status']),
      reportsStored: gauge('reports_stored', 'Reports in the store.'),
      dnsQueries: counter('dns_queries_total', 'DNS queries received, by transport.', ['transport']),
      dnsResponses: counter('dns_responses_total', 'DNS replies sent, by RCODE.', ['rcode']),
      dnsTruncated: counter('dns_truncated_total', 'DNS replies sent empty with TC set (too large for UDP).'),
      dnsDropped: counter('dns_dropped_total', 'DNS queries not answered, by reason.', ['reason']),
      dnsSlipped: counter('dns_slipped_total', 'Rate-limited DNS queries answered with an empty truncated reply.'),
      dnsFallback: counter('dns_fallback_answers_total', 'DNS answers that named every target because none was healthy.'),
      dnsFallbackNames: gauge('dns_fallback_names', 'Names currently answered with every target because none is healthy.'),
      dnsTcpOpen: gauge('dns_tcp_connections', 'Open DNS TCP connections.'),
      dnsTcpRefused: counter('dns_tcp_refused_total', 'DNS TCP connections refused (dns.tcp.maxConnections).'),
      dnsLimited: gauge('dns_rate_limited_sources', 'Source addresses tracked by the DNS rate limit.'),
      listenerConnections: gauge('listener_connections', 'Agent connections open (TLS handshake done), parked ones included.', ['listener']),
      listenerParked: gauge('listener_connections_parked', 'Agent connections parked out of OpenSSL now (listeners[].parkIdleAfter).', ['listener']),
      listenerParkedTotal: counter('listener_connections_parked_total', 'Agent connections parked out of OpenSSL since start.', ['listener']),
      scrapeErrors: counter('scrape_errors_total', 'Parts of the state that could not be read for a scrape, by source.', ['source']),
    };
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'ringmaster_' });
  }

  requestStarted(): void {
    this.#inFlight++;
  }

  requestFinished(r: RequestRecord): void {
    const m = this.#m;
    this.#inFlight--;
    const route = r.route ?? '';
    const pool = r.pool ?? '';
    const member = r.member ?? '';
    const endpoint = r.endpoint;
    const keys = this.#keysOf(route, pool, member, endpoint);
    let requestsKey = keys.byStatus.get(r.status);
    if (requestsKey === undefined) {
      requestsKey = `${keys.where}\u0001${r.status}`;
      keys.byStatus.set(r.status, requestsKey);
    }
    m.requests.add(requestsKey, () => ({ route, pool, member, endpoint, status: String(r.status) }));
    m.duration.observe(keys.where, () => ({ route, pool, member, endpoint }), r.durationMs / 1000);
    m.bytes.add(keys.bytes, () => ({ route, pool, endpoint }), r.bytes);
    if (r.code !== undefined && r.code in errorCodes) m.errors.inc({ route, pool, code: r.code });
    if (r.upstreamMs !== undefined && r.member !== undefined) m.upstream.observe(keys.upstream, () => ({ pool, member, endpoint }), r.upstreamMs / 1000);
    if (r.retries > 0) m.retries.inc({ pool }, r.retries);
    if (r.queueMs !== undefined) m.queueWait.observe(pool, () => ({ pool }), r.queueMs / 1000);
  }

  /**
   * The tallies' keys for one route, pool, member and endpoint, made once: joined anew for each
   * request, each key was a new string to hash. Label values never hold U+0001 (configured names
   * are checked; the rest are fixed lists). Bounded by the names the configuration ever held.
   */
  #keysOf(route: string, pool: string, member: string, endpoint: string): SeriesKeys {
    const byEndpoint = within(within(within(this.#keys, route), pool), member);
    let keys = byEndpoint.get(endpoint);
    if (keys === undefined) {
      keys = {
        where: `${route}\u0001${pool}\u0001${member}\u0001${endpoint}`,
        bytes: `${route}\u0001${pool}\u0001${endpoint}`,
        upstream: `${pool}\u0001${member}\u0001${endpoint}`,
        byStatus: new Map<number, string>(),
      };
      byEndpoint.set(endpoint, keys);
    }
    return keys;
  }

  tlsHandshake(listener: string, clientCert: 'verified' | 'none' | 'rejected', rejectedReason?: string): void {
    this.#m.tlsHandshakes.inc({ listener, client_cert: clientCert });
    if (clientCert === 'rejected') this.#m.tlsRejected.inc({ listener, reason: certRejectionReason(rejectedReason) });
  }

  requestRefused(listener: string, code: string): void {
    this.#m.refused.inc({ listener, code: code in errorCodes ? code : 'RM_INTERNAL' });
  }

  tlsFailure(listener: string, err: unknown): void {
    this.#m.tlsFailures.inc({ listener, reason: tlsFailureReason(err) });
  }

  /** The Prometheus text exposition, with the state gauges read now. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    this.#record(await this.#options.read());
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  #record(s: StateReading): void {
    const m = this.#m;
    const now = this.#options.now();
    for (const g of [m.queueDepth, m.queueOldest, m.eligible, m.memberHealth, m.memberEligible, m.memberDraining, m.memberEjected, m.memberInFlight, m.memberCompiles, m.memberSlots, m.memberCompile]) g.reset();
    for (const p of s.pools) {
      const pool = { pool: p.name };
      m.queueDepth.set(pool, p.queued);
      m.queueOldest.set(pool, p.oldestWaitMs / 1000);
      m.eligible.set(pool, p.eligible);
      for (const mb of p.members) {
        const l = { pool: p.name, member: mb.name };
        for (const state of ['healthy', 'unhealthy', 'unknown'] as const) m.memberHealth.set({ ...l, state }, mb.health === state ? 1 : 0);
        m.memberEligible.set(l, mb.eligible ? 1 : 0);
        m.memberDraining.set(l, mb.draining ? 1 : 0);
        m.memberEjected.set(l, mb.ejectedUntil !== null ? 1 : 0);
        m.memberInFlight.set(l, mb.inFlight);
        m.memberCompiles.set(l, mb.compiles);
        if (mb.usableSlots !== null) m.memberSlots.set(l, mb.usableSlots);
        if (mb.compileMs !== null) m.memberCompile.set(l, mb.compileMs / 1000);
      }
    }
    const seconds = (at: number | undefined) => (at === undefined ? undefined : (at - now) / 1000);
    if (s.ca) {
      if (s.ca.signed !== undefined) total(m.caSigned, {}, s.ca.signed);
      setIf(m.caPending, s.ca.pending);
      setIf(m.caExpiring, s.ca.expiringSoon);
      setIf(m.crlAge, s.ca.crlThisUpdate === undefined ? undefined : (now - s.ca.crlThisUpdate) / 1000);
      setIf(m.crlExpiry, seconds(s.ca.crlNextUpdate));
      setIf(m.caCertExpiry, seconds(s.ca.signingCertNotAfter));
      if (s.ca.crlRefreshFailures !== undefined) total(m.crlRefreshFailures, {}, s.ca.crlRefreshFailures);
    }
    if (s.reports) {
      for (const outcome of ['captured', 'invalid', 'failed', 'dropped'] as const) total(m.reports, { outcome }, s.reports[outcome]);
      m.reportsQueued.set(s.reports.queued);
      if (s.reports.nodes) for (const [status, n] of Object.entries(s.reports.nodes)) m.reportsNodes.set({ status }, n);
      setIf(m.reportsStored, s.reports.stored);
    }
    if (s.dns) {
      const d = s.dns;
      total(m.dnsQueries, { transport: 'udp' }, d.queries.udp);
      total(m.dnsQueries, { transport: 'tcp' }, d.queries.tcp);
      for (const [rcode, n] of Object.entries(d.responses)) total(m.dnsResponses, { rcode }, n);
      total(m.dnsTruncated, {}, d.truncated);
      for (const [reason, n] of Object.entries(d.dropped)) total(m.dnsDropped, { reason }, n);
      total(m.dnsSlipped, {}, d.slipped);
      total(m.dnsFallback, {}, d.fallbackAnswers);
      m.dnsFallbackNames.set(d.fallbackNames);
      m.dnsTcpOpen.set(d.tcp.open);
      total(m.dnsTcpRefused, {}, d.tcp.refused);
      m.dnsLimited.set(d.rateLimitedSources);
    }
    for (const l of s.listeners ?? []) {
      m.listenerConnections.set({ listener: l.name }, l.connections);
      m.listenerParked.set({ listener: l.name }, l.parked);
      total(m.listenerParkedTotal, { listener: l.name }, l.parkedTotal);
    }
    for (const source of s.errors ?? []) m.scrapeErrors.inc({ source });
  }
}

/** A counter kept elsewhere (capture, responder, signing queue) shown as it stands. */
function total<L extends string>(c: Counter<L>, labels: Partial<Record<L, string>>, value: number): void {
  if (Object.keys(labels).length === 0) c.reset();
  else c.remove(labels);
  c.inc(labels, Math.max(0, value));
}

function setIf(g: Gauge, value: number | undefined): void {
  if (value === undefined) g.reset();
  else g.set(value);
}

/** OpenSSL's reason codes are a fixed set; anything else is "other", so the label stays bounded. */
export function tlsFailureReason(err: unknown): string {
  const code = typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : '';
  const ssl = /^ERR_SSL_([A-Z0-9_]{1,64})$/.exec(code);
  if (ssl) return ssl[1]!.toLowerCase();
  if (code === 'ERR_TLS_HANDSHAKE_TIMEOUT') return 'handshake_timeout';
  if (code === 'ECONNRESET') return 'connection_reset';
  if (/^E[A-Z]{2,16}$/.test(code)) return code.toLowerCase();
  return 'other';
}

/** OpenSSL's verification error names (CERT_HAS_EXPIRED, CERT_REVOKED …), lower-cased. */
export function certRejectionReason(reason: string | undefined): string {
  if (reason !== undefined && /^[A-Z][A-Z0-9_]{2,63}$/.test(reason)) return reason.toLowerCase();
  if (reason === 'certificate revoked') return 'cert_revoked';
  if (reason === 'certificate has no common name') return 'no_common_name';
  return 'other';
}
