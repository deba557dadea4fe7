import { createServer as createHttpServer, type IncomingMessage, type ServerResponse, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Clock, TimerHandle } from '../lib/clock.ts';
import type { Random } from '../lib/random.ts';
import { RingmasterError } from '../lib/errors.ts';
import { logNormalDraw, logNormalFromMeanP99, noWarmup, warmupFactor, type LogNormal, type Warmup } from './distributions.ts';
import { IdleConnections } from './idle-connections.ts';
import { JrubyPool } from './jruby-pool.ts';
import { catalogBody, fileMetadataBody, fileMetadatasBody, nodeBody } from './payloads.ts';
import { classify, lastSegment, queueLimitMessage, requestKinds, rubyKinds, shedsVersion, type RequestKind } from './puppet-routes.ts';

// A simulated Puppet Server compiler: enough of the puppetserver HTTP API for agents, in front of
// a JRuby pool whose slots every Ruby request borrows (catalogs for a log-normal compile time,
// others briefly), with puppetserver's queue limit, Jetty's idle timeout, a warm-up after a
// (re)start, and controls to kill and restart it on the same port. It stands in for real
// compilers where a fleet of them is needed on one machine, or conditions they cannot be made to
// produce on demand.

export type SimCompilerOptions = {
  name: string;
  /** JRuby instances (puppetserver max-active-instances). */
  slots: number;
  compile: { meanMs: number; p99Ms: number };
  /** How long requests other than catalogs hold a slot. Default 3 ms. */
  requestMs?: number;
  /** Multiplies every hold time: 2 is a compiler twice as slow. Default 1. */
  speed?: number;
  warmup?: Warmup;
  /** The first start is warm (a compiler that has been serving for a while); only restarts go through the warm-up. Default false. */
  startWarm?: boolean;
  /** Jetty idle-timeout-milliseconds: a connection without a request for this long is closed. Default 30 s; 0 never. */
  idleTimeoutMs?: number;
  /** puppetserver max-queued-requests: 0 is no limit. */
  maxQueuedRequests?: number;
  /** puppetserver max-retry-delay in seconds: the 503's Retry-After is a random whole number below it; 0 sends none. Default 1800. */
  maxRetryDelayS?: number;
  /** Size of a catalog response. Default 50,000 bytes. */
  catalogBytes?: number;
  /** HTTPS with client certificates verified against `ca` (for an L4 front door), instead of plain HTTP. */
  tls?: { key: string; cert: string; ca: string | string[] };
  /** Default 0: the kernel picks one, kept across restarts. */
  port?: number;
};

export type SimCompilerDeps = { clock: Clock; random: Random };
export type SimCompilerState = 'up' | 'booting' | 'down' | 'closed';
export type RestartOptions = {
  /** Time refusing connections before the process is back. Default 0. */
  downMs?: number;
  /** Time from listening again to serving: the JRubies are being created. Default 0. */
  bootMs?: number;
  /** Listen while booting, answering status with 503 "starting" and queueing Ruby requests (as puppetserver does). Default true. */
  listenWhileBooting?: boolean;
};

export type SimCompilerStats = {
  name: string;
  state: SimCompilerState;
  slots: number;
  busy: number;
  queued: number;
  /** The most slots busy at once since start; never above `slots`. */
  maxBusy: number;
  requests: Record<RequestKind, number>;
  /** Catalog responses sent. */
  catalogs: number;
  /** Slot-milliseconds borrowed since start, across restarts. */
  busySlotMs: number;
  /** 503s sent because of max-queued-requests. */
  rejected: number;
  restarts: number;
};

export class SimCompiler {
  readonly name: string;
  #options: SimCompilerOptions;
  #clock: Clock;
  #random: Random;
  #compile: LogNormal;
  #warmup: Warmup;
  #port: number;
  #state: SimCompilerState = 'down';
  #server: Server | undefined;
  #closing: Promise<void> = Promise.resolve();
  #sockets = new Set<Socket>();
  #pool: JrubyPool;
  /** Bumped by every kill: work started before it is dropped when it resumes. */
  #generation = 0;
  #pending = new Set<{ cancel(): void }>();
  #readyAt = 0;
  /** Started warm and not restarted since: no warm-up. */
  #warm = false;
  #idle: IdleConnections;
  #retiredBusyMs = 0;
  #retiredMaxBusy = 0;
  #requests = Object.fromEntries(requestKinds.map((k) => [k, 0])) as Record<RequestKind, number>;
  #catalogs = 0;
  #rejected = 0;
  #restarts = 0;

  private constructor(options: SimCompilerOptions, deps: SimCompilerDeps) {
    if (!Number.isInteger(options.slots) || options.slots < 1) throw new RingmasterError('RM_CONFIG_INVALID', `compiler ${options.name}: slots must be a positive whole number, not ${options.slots}`);
    this.name = options.name;
    this.#options = options;
    this.#clock = deps.clock;
    this.#random = deps.random;
    this.#compile = logNormalFromMeanP99(options.compile.meanMs, options.compile.p99Ms);
    this.#warmup = options.warmup ?? noWarmup;
    this.#port = options.port ?? 0;
    this.#pool = new JrubyPool(options.slots, deps.clock);
    this.#idle = new IdleConnections(options.idleTimeoutMs ?? 30_000, (ms, fn) => this.#after(ms, fn));
  }

  /** Starts listening on 127.0.0.1, ready at once: cold if a warm-up is set, unless `startWarm`. */
  static async start(options: SimCompilerOptions, deps: SimCompilerDeps): Promise<SimCompiler> {
    const c = new SimCompiler(options, deps);
    await c.#listen(c.#generation);
    c.#ready(options.startWarm ?? false);
    return c;
  }

  get port(): number {
    return this.#port;
  }

  get url(): string {
    return `${this.#options.tls ? 'https' : 'http'}://127.0.0.1:${this.#port}`;
  }

  get state(): SimCompilerState {
    return this.#state;
  }

  /** What compile times are multiplied by now. */
  warmupFactor(): number {
    if (this.#state !== 'up') return this.#warmup.factor;
    return this.#warm ? 1 : warmupFactor(this.#warmup, this.#clock.now() - this.#readyAt);
  }

  stats(): SimCompilerStats {
    return {
      name: this.name, state: this.#state, slots: this.#options.slots, busy: this.#pool.busy, queued: this.#pool.queued,
      maxBusy: Math.max(this.#retiredMaxBusy, this.#pool.maxBusy), requests: { ...this.#requests }, catalogs: this.#catalogs,
      busySlotMs: this.#retiredBusyMs + this.#pool.busySlotMs(), rejected: this.#rejected, restarts: this.#restarts,
    };
  }

  /** Like SIGKILL: the listener closes and every connection is destroyed at once, work in progress lost. */
  kill(): void {
    if (this.#state === 'closed') return;
    this.#generation += 1;
    for (const p of this.#pending) p.cancel();
    this.#pending.clear();
    if (this.#state === 'down') return;
    this.#retiredBusyMs += this.#pool.busySlotMs();
    this.#retiredMaxBusy = Math.max(this.#retiredMaxBusy, this.#pool.maxBusy);
    this.#pool = new JrubyPool(this.#options.slots, this.#clock, { open: false });
    const server = this.#server;
    this.#server = undefined;
    if (server) this.#closing = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const s of this.#sockets) s.destroy();
    this.#sockets.clear();
    this.#state = 'down';
  }

  /** Kills (if up) and starts again on the same port, cold: resolves once it serves again. */
  async restart(o: RestartOptions = {}): Promise<void> {
    if (this.#state === 'closed') throw new RingmasterError('RM_INTERNAL', `compiler ${this.name} is closed`);
    this.kill();
    this.#restarts += 1;
    const generation = this.#generation;
    await this.#closing;
    await this.#sleep(o.downMs ?? 0);
    if (generation !== this.#generation) return;
    const listenWhileBooting = o.listenWhileBooting ?? true;
    if (listenWhileBooting) {
      if (!(await this.#listen(generation))) return;
      this.#state = 'booting';
    }
    await this.#sleep(o.bootMs ?? 0);
    if (generation !== this.#generation) return;
    if (!listenWhileBooting && !(await this.#listen(generation))) return;
    this.#ready(false);
  }

  async close(): Promise<void> {
    this.kill();
    this.#state = 'closed';
    await this.#closing;
  }

  #ready(warm: boolean): void {
    this.#warm = warm;
    this.#state = 'up';
    this.#readyAt = this.#clock.now();
    this.#pool.open();
  }

  /** A wait on the injected clock that a kill ends early (the caller then sees a new generation). */
  #sleep(ms: number): Promise<void> {
    if (ms <= 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const entry = { cancel: () => { handle.cancel(); resolve(); } };
      const handle: TimerHandle = this.#clock.setTimeout(() => {
        this.#pending.delete(entry);
        resolve();
      }, ms);
      this.#pending.add(entry);
    });
  }

  /** Runs `fn` after `ms` on the injected clock, unless a kill or `cancel` comes first. */
  #after(ms: number, fn: () => void): { cancel(): void } {
    const entry = {
      cancel: () => {
        handle.cancel();
        this.#pending.delete(entry);
      },
    };
    const handle: TimerHandle = this.#clock.setTimeout(() => {
      this.#pending.delete(entry);
      fn();
    }, ms);
    this.#pending.add(entry);
    return entry;
  }

  /** Listens on the port; false (and not listening) when a kill came meanwhile. */
  async #listen(generation: number): Promise<boolean> {
    const handler = (req: IncomingMessage, res: ServerResponse): void => this.#onRequest(req, res);
    const tls = this.#options.tls;
    const server: Server = tls ? createHttpsServer({ key: tls.key, cert: tls.cert, ca: tls.ca, requestCert: true, rejectUnauthorized: true }, handler) : createHttpServer(handler);
    // Idle connections are closed by #idle on the injected clock (as Jetty would), not by Node in
    // real time; 0 also keeps Node from sending a Keep-Alive hint, which Jetty does not send either.
    server.keepAliveTimeout = 0;
    server.on('connection', (socket: Socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
      if (!tls) this.#idle.opened(socket);
    });
    if (tls) server.on('secureConnection', (socket: Socket) => this.#idle.opened(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    if (generation !== this.#generation) {
      server.close();
      return false;
    }
    this.#port = (server.address() as AddressInfo).port;
    this.#server = server;
    return true;
  }

  #onRequest(req: IncomingMessage, res: ServerResponse): void {
    const generation = this.#generation;
    const idle = this.#idle.requestStarted(req.socket);
    res.once('close', () => idle.ended());
    res.setHeader('X-Sim-Compiler', this.name);
    const target = req.url ?? '/';
    const q = target.indexOf('?');
    const path = q < 0 ? target : target.slice(0, q);
    const method = req.method ?? 'GET';
    const kind = classify(method, path);
    this.#requests[kind] += 1;
    // Bodies (facts, reports) are read in full before the slot is asked for, as Jetty buffers
    // them; only the catalog's is kept, for its transaction_uuid.
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => {
      if (kind === 'catalog') chunks.push(chunk);
    });
    req.on('end', () => {
      if (generation !== this.#generation || res.destroyed) return;
      const uuid = kind === 'catalog' ? /(?:^|&)transaction_uuid=([0-9a-f-]+)/.exec(Buffer.concat(chunks).toString('latin1'))?.[1] : undefined;
      if (rubyKinds.has(kind)) this.#ruby({ kind, method, path, uuid }, req, res, generation);
      else this.#local(kind, path, res);
    });
  }

  #local(kind: RequestKind, path: string, res: ServerResponse): void {
    if (kind === 'status') {
      const up = this.#state === 'up';
      res.writeHead(up ? 200 : 503, { 'Content-Type': 'text/plain; charset=utf-8' }).end(up ? 'running' : 'starting');
    } else if (kind === 'metrics') {
      const up = this.#state === 'up';
      const metrics = { ...this.#pool.metrics(), 'queue-limit-hit-count': this.#rejected };
      const body = { service_version: '8.7.0', service_status_version: 1, detail_level: 'debug', state: up ? 'running' : 'starting', status: { experimental: { metrics } }, active_alerts: [], service_name: 'jruby-metrics' };
      res.writeHead(up ? 200 : 503, { 'Content-Type': 'application/json; charset=utf-8' }).end(JSON.stringify(body));
    } else {
      res.writeHead(404, { 'Content-Type': 'application/json; charset=utf-8' }).end(JSON.stringify({ message: `Not Found: ${path}`, issue_kind: 'RESOURCE_NOT_FOUND' }));
    }
  }

  #ruby(r: { kind: RequestKind; method: string; path: string; uuid: string | undefined }, req: IncomingMessage, res: ServerResponse, generation: number): void {
    const { kind, method, path } = r;
    const limit = this.#options.maxQueuedRequests ?? 0;
    if (limit > 0 && this.#pool.queued >= limit && shedsVersion(req.headers['x-puppet-version'])) {
      this.#rejected += 1;
      const maxDelay = this.#options.maxRetryDelayS ?? 1800;
      const headers: Record<string, string> = { 'Content-Type': 'text/plain; charset=utf-8', Connection: 'close' };
      if (maxDelay > 0) headers['Retry-After'] = String(Math.floor(this.#random.next() * maxDelay));
      res.writeHead(503, headers).end(queueLimitMessage);
      return;
    }
    this.#pool.borrow({ kind, method, uri: path }, (lease) => {
      if (generation !== this.#generation) return;
      const speed = this.#options.speed ?? 1;
      // Whole milliseconds, as timers count them.
      const holdMs = Math.round(kind === 'catalog'
        ? logNormalDraw(this.#compile, this.#random) * speed * this.warmupFactor()
        : (this.#options.requestMs ?? 3) * speed);
      this.#after(holdMs, () => {
        lease.release();
        this.#respond(r, res);
      });
    });
  }

  #respond(r: { kind: RequestKind; path: string; uuid: string | undefined }, res: ServerResponse): void {
    const { kind, path } = r;
    // A compile the client no longer waits for still happened, as on puppetserver.
    if (kind === 'catalog') this.#catalogs += 1;
    if (res.destroyed) return;
    const name = lastSegment(path);
    const json = { 'Content-Type': 'application/json; charset=utf-8', 'X-Puppet-Version': '8.10.0' };
    if (kind === 'catalog') {
      const version = this.#clock.now();
      const uuid = r.uuid ?? '00000000-0000-4000-8000-000000000000';
      const body = catalogBody({ certname: name, bytes: this.#options.catalogBytes ?? 50_000, transactionUuid: uuid, version, compiler: this.name });
      res.writeHead(200, { ...json, 'X-Puppet-Compiler-Name': this.name }).end(body);
    } else if (kind === 'node') {
      res.writeHead(200, json).end(nodeBody(name));
    } else if (kind === 'file_metadatas') {
      res.writeHead(200, json).end(fileMetadatasBody(path.slice('/puppet/v3/file_metadatas/'.length)));
    } else if (kind === 'file_metadata') {
      res.writeHead(200, json).end(fileMetadataBody(path.slice('/puppet/v3/file_metadata/'.length)));
    } else {
      res.writeHead(200, json).end('[]');
    }
  }
}
