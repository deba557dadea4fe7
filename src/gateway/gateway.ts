import type { Clock } from '../lib/clock.ts';
import type { Random } from '../lib/random.ts';
import { RingmasterError, errorMessage } from '../lib/errors.ts';
import type { Log } from '../observability/log.ts';
import type { ServiceRequest, ServiceResponse } from '../listener/http.ts';
import { statusSimple } from '../listener/status.ts';
import { Router } from '../router/router.ts';
import { Pool, type PoolSpec } from '../pool/pool.ts';
import type { Member, ProbeResult } from '../pool/member.ts';
import { MemberConnections, type UpstreamTls } from '../upstream/connections.ts';
import { proxy, type PoolSettings, type ProxyOutcome, type ProxyTarget } from '../upstream/proxy.ts';
import type { RequestTrace } from '../observability/request.ts';
import type { GatewayConfig, PoolConfig } from './config.ts';
import { jrubyCount, jrubyMetricsPath } from './jruby-metrics.ts';

// The gateway: the route table, the pools with their members' connections, and the built-in
// services. A reload swaps the route table and updates the pools in place; requests in flight
// hold their own references and finish on what they started with.

/** The built-in services; `ca` is absent when the CA is external (`ca.enabled: false`). */
export type Services = { ca?: ((req: ServiceRequest) => Promise<ServiceResponse>) | undefined };
export type GatewayDeps = { clock: Clock; random: Random; log: Log; services: Services; upstreamTls: (p: PoolConfig) => UpstreamTls; reports?: ReportSink | undefined };

/** Where reports go (src/reports/capture.ts): `capture` and `noteCatalog` only queue or note. */
export type ReportSink = {
  forward: 'route' | 'none' | { pool: string };
  capture(input: { certname: string; body: Buffer; receivedAt: number; environment?: string | undefined }): unknown;
  noteCatalog(certname: string, member: string, transactionUuid?: string): void;
};

const reportPath = /^\/puppet\/v3\/report\/([^/]+)$/;
/** Largest report ringmaster answers itself (`reports.forward: none`). */
const maxLocalReportBytes = 256 * 1024 * 1024;

type PoolEntry = {
  pool: Pool;
  settings: PoolSettings;
  config: PoolConfig;
  connections: Map<string, MemberConnections>;
  /** What the proxy is given for a request nobody observes: made once per pool and settings. */
  target: ProxyTarget;
};
/** A pool's entry before its Pool exists (its health probes are bound to this part). */
type PoolBase = Omit<PoolEntry, 'pool' | 'target'>;

export class Gateway {
  #router: Router;
  #pools = new Map<string, PoolEntry>();
  #deps: GatewayDeps;
  #log: Log;
  #stopping = false;

  constructor(config: GatewayConfig, deps: GatewayDeps) {
    this.#deps = deps;
    this.#log = deps.log;
    this.#router = new Router(config);
    for (const [name, p] of Object.entries(config.pools)) this.#pools.set(name, this.#createPool(name, p));
  }

  start(): void {
    for (const e of this.#pools.values()) e.pool.start();
  }

  /** From now on the local status answers "stopping", so agents with server_list move on. */
  beginStop(): void {
    this.#stopping = true;
  }

  /** Stops health checks and closes every member's connections once their requests are done. */
  async stop(): Promise<void> {
    this.#stopping = true;
    const closing: Promise<void>[] = [];
    for (const e of this.#pools.values()) {
      e.pool.stop();
      for (const c of e.connections.values()) closing.push(c.close().catch(() => undefined));
    }
    await Promise.all(closing);
  }

  pools(): ReadonlyMap<string, Pool> {
    return new Map([...this.#pools].map(([k, v]) => [k, v.pool]));
  }

  /** Applies new routes and pools. Members kept by name and URL keep their state and connections. */
  reload(config: GatewayConfig): { added: string[]; removed: string[]; changed: string[] } {
    const router = new Router(config);
    const summary = { added: [] as string[], removed: [] as string[], changed: [] as string[] };
    for (const [name, p] of Object.entries(config.pools)) {
      const entry = this.#pools.get(name);
      if (!entry) {
        const created = this.#createPool(name, p);
        this.#pools.set(name, created);
        created.pool.start();
        summary.added.push(name);
        continue;
      }
      const connectionSettingsChanged = JSON.stringify([entry.config.upstreamTls, entry.config.timeouts]) !== JSON.stringify([p.upstreamTls, p.timeouts]);
      const result = entry.pool.update(poolSpec(name, p));
      for (const m of result.removed) this.#retire(entry, m.name);
      if (connectionSettingsChanged) for (const memberName of [...entry.connections.keys()]) this.#retire(entry, memberName);
      entry.config = p;
      entry.settings = poolSettings(p);
      entry.target = this.#target(entry.pool, entry);
      summary.changed.push(name);
    }
    for (const [name, entry] of [...this.#pools]) {
      if (name in config.pools) continue;
      entry.pool.stop();
      for (const memberName of [...entry.connections.keys()]) this.#retire(entry, memberName);
      this.#pools.delete(name);
      summary.removed.push(name);
    }
    this.#router = router;
    return summary;
  }

  /** Local status: running while every pool a route uses that has members has an eligible one. */
  state(): 'running' | 'stopping' | 'error' {
    if (this.#stopping) return 'stopping';
    for (const name of this.#router.poolNames()) {
      const e = this.#pools.get(name);
      if (e && e.pool.members().length > 0 && !e.pool.hasEligible()) return 'error';
    }
    return 'running';
  }

  async handle(req: ServiceRequest): Promise<ServiceResponse | undefined> {
    const input = { method: req.method, path: req.path, query: req.query, peer: req.peer };
    const match = this.#router.match(input);
    if (!match) throw new RingmasterError('RM_NOT_FOUND', `Not Found: ${req.path}`);
    const { route } = match;
    const trace = req.trace;
    if (trace) trace.route = route.name;
    if (route.maxHeaderBytes !== undefined) {
      const size = req.raw.req.headBytes;
      if (size > route.maxHeaderBytes) throw new RingmasterError('RM_HEADERS_TOO_LARGE', `request head of ${size} bytes exceeds the limit of ${route.maxHeaderBytes} bytes for route ${route.name}`);
    }
    const reports = this.#deps.reports;
    const reportOf = reports && req.method === 'PUT' ? reportPath.exec(req.path)?.[1] : undefined;
    if (reports && reportOf !== undefined && reports.forward === 'none') return this.#answerReport(req, reportOf, reports);
    if (route.target.kind === 'service') {
      if (route.target.service === 'ca') {
        const ca = this.#deps.services.ca;
        if (!ca) throw new RingmasterError('RM_CA_EXTERNAL', `the CA is external (ca.enabled: false); route ${route.name} sends to the built-in CA, which is not running`);
        return ca(req);
      }
      return statusSimple(req, () => (this.state() === 'running' ? 'running' : 'stopping'));
    }
    const poolName = reports && reportOf !== undefined && typeof reports.forward === 'object' ? reports.forward.pool : match.pool ?? route.target.pool;
    if (trace) trace.pool = poolName;
    const entry = this.#pools.get(poolName);
    if (!entry) {
      throw new RingmasterError('RM_POOL_UNAVAILABLE', `no pool named ${poolName} is configured (route ${route.name})`, { details: { retryAfter: 15 } });
    }
    const observe = reports && (reportOf !== undefined || req.path.includes('/catalog')) ? this.#observer(req, reportOf, reports) : undefined;
    const target = observe ? { ...entry.target, observe } : entry.target;
    // Where it went and how long it took go to the metrics and the access log.
    let outcome: ProxyOutcome;
    try {
      outcome = await proxy(
        { req: req.raw.req, res: req.raw.res, peer: req.peer, path: req.path, rawTarget: req.rawTarget, draining: req.draining, log: this.#log, sent: trace },
        route,
        target,
        this.#log,
      );
    } catch (err) {
      if (trace) traceFailure(trace, err);
      throw err;
    }
    if (trace) traceOutcome(trace, outcome);
    return undefined;
  }

  /**
   * What the proxy tells the reports store. Only a verified agent's own report is kept, as
   * puppetserver's auth.conf only lets a node save its own: anything else still goes to the
   * member, which refuses it, but never into the store.
   */
  #observer(req: ServiceRequest, reportOf: string | undefined, reports: ReportSink): ProxyTarget['observe'] {
    const peer = req.peer;
    if (peer.kind !== 'verified') return undefined;
    const certname = peer.certname;
    return {
      report: (body) => {
        if (reportOf === certname) reports.capture({ certname, body, receivedAt: this.#deps.clock.now(), environment: req.query.get('environment') ?? undefined });
      },
      catalog: (member, transactionUuid) => reports.noteCatalog(certname, member, transactionUuid),
    };
  }

  /** `reports.forward: none`: the report is stored and answered here, as puppetserver answers it. */
  async #answerReport(req: ServiceRequest, name: string, reports: ReportSink): Promise<ServiceResponse> {
    if (req.peer.kind !== 'verified') throw new RingmasterError('RM_AUTH_REQUIRED', `saving a report needs a verified client certificate`);
    if (req.peer.certname !== name) throw new RingmasterError('RM_AUTH_FORBIDDEN', `${req.peer.certname} may not save the report of ${name}`);
    const body = await req.body(maxLocalReportBytes);
    reports.capture({ certname: name, body, receivedAt: this.#deps.clock.now(), environment: req.query.get('environment') ?? undefined });
    // puppetserver answers with the report processors that ran; none ran here.
    return { status: 200, headers: { 'content-type': 'application/json' }, body: '[]' };
  }

  #createPool(name: string, config: PoolConfig): PoolEntry {
    const base: PoolBase = { settings: poolSettings(config), config, connections: new Map() };
    const pool = new Pool(poolSpec(name, config), {
      clock: this.#deps.clock,
      random: this.#deps.random,
      log: this.#log,
      probe: (member, timeoutMs, path) => this.#probe(base, member, timeoutMs, path),
    });
    return Object.assign(base, { pool, target: this.#target(pool, base) });
  }

  #target(pool: Pool, base: PoolBase): ProxyTarget {
    return { pool, settings: base.settings, connections: (m) => this.#connections(base, m), now: () => this.#deps.clock.now(), observe: undefined };
  }

  /**
   * GET `path` on the member through its own connections; 2xx is healthy. With
   * `capacity.discover`, a healthy member is also asked for its JRuby count.
   */
  async #probe(entry: PoolBase, member: Member, timeoutMs: number, path: string): Promise<ProbeResult> {
    const health = await this.#get(entry, member, path, timeoutMs, 0);
    if ('error' in health) return { ok: false, reason: health.error };
    if (health.status < 200 || health.status >= 300) return { ok: false, reason: `status ${health.status}` };
    if (!entry.config.capacity.discover) return { ok: true };
    const metrics = await this.#get(entry, member, jrubyMetricsPath, timeoutMs, 1 << 20);
    return { ok: true, jrubies: 'error' in metrics || metrics.status !== 200 ? undefined : jrubyCount(metrics.body) };
  }

  /** One GET on the member's connections, keeping up to `keep` bytes of the body. */
  #get(entry: PoolBase, member: Member, path: string, timeoutMs: number, keep: number): Promise<{ status: number; body: string } | { error: string }> {
    return new Promise((resolve) => {
      let status = 0;
      const chunks: Buffer[] = [];
      let size = 0;
      this.#connections(entry, member).exchange(
        { method: 'GET', path, headers: { accept: 'application/json' }, body: undefined, headersTimeoutMs: timeoutMs, bodyTimeoutMs: timeoutMs },
        {
          head: (h) => (status = h.status),
          data: (chunk) => {
            if (size + chunk.length <= keep) chunks.push(chunk);
            size += chunk.length;
          },
          end: () => resolve({ status, body: size <= keep ? Buffer.concat(chunks).toString('utf8') : '' }),
          error: (err) => resolve({ error: errorMessage(err) }),
        },
      );
    });
  }

  #connections(entry: PoolBase, member: Member): MemberConnections {
    const existing = entry.connections.get(member.name);
    if (existing && existing.url === member.url) return existing;
    if (existing) this.#retire(entry, member.name);
    const created = new MemberConnections(member.url, {
      connectTimeoutMs: entry.config.timeouts.connect,
      keepAliveMs: entry.config.timeouts.keepAlive,
      tls: this.#deps.upstreamTls(entry.config),
    });
    entry.connections.set(member.name, created);
    return created;
  }

  /** Closes a member's connections once the requests on them are done. */
  #retire(entry: PoolBase, memberName: string): void {
    const c = entry.connections.get(memberName);
    if (!c) return;
    entry.connections.delete(memberName);
    c.close().catch((err: unknown) => this.#log.warn({ member: memberName, err: errorMessage(err) }, 'closing member connections failed'));
  }
}

function poolSpec(name: string, p: PoolConfig): PoolSpec {
  return { name, members: p.members, policy: p.policy, healthCheck: p.healthCheck, capacity: p.capacity };
}

function poolSettings(p: PoolConfig): PoolSettings {
  return { retryAttempts: p.retry.attempts, bufferLimit: p.retry.bufferLimit, retryAfterSeconds: Math.ceil(p.retryAfter / 1000), idleTimeoutMs: p.timeouts.idle };
}

function traceOutcome(trace: RequestTrace, o: ProxyOutcome): void {
  trace.member = o.member;
  trace.attempts = o.attempts;
  trace.upstreamMs = o.upstreamMs;
  trace.queueMs = o.queueMs;
  if (o.code?.startsWith('RM_')) trace.code = o.code;
}

/** What a refusal or failure of the proxy tells about the request (the listener sends the error). */
function traceFailure(trace: RequestTrace, err: unknown): void {
  const d = err instanceof RingmasterError ? err.details : undefined;
  if (typeof d?.attempts === 'number') trace.attempts = d.attempts;
  if (typeof d?.member === 'string') trace.member = d.member;
  if (typeof d?.waitedMs === 'number') trace.queueMs = d.waitedMs;
}

