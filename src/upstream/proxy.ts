import { Transform, type Readable, type TransformCallback } from 'node:stream';
import type { AgentRequest } from '../listener/agent-http.ts';
import type { AgentResponse } from '../listener/agent-response.ts';
import { RingmasterError, errorMessage } from '../lib/errors.ts';
import type { Log } from '../observability/log.ts';
import type { Peer } from '../listener/peer.ts';
import type { Pool } from '../pool/pool.ts';
import type { Member } from '../pool/member.ts';
import type { Route } from '../router/route.ts';
import { classify, retriable } from './failure.ts';
import { upstreamRequestFields } from './headers.ts';
import type { MemberConnections, UpstreamRequest } from './connections.ts';
import { transactionUuidOf } from './transaction.ts';

// Forwards one agent request to a member of a pool and streams the answer back. A request is
// tried on another member only while nothing has been answered and its body can be sent again:
// GET and HEAD, and catalog POSTs whose (small) body was kept. Once the member's response head
// is in, the request is committed to that member.

export type PoolSettings = {
  retryAttempts: number;
  bufferLimit: number;
  retryAfterSeconds: number;
  idleTimeoutMs: number;
};

export type ProxyTarget = {
  pool: Pool;
  settings: PoolSettings;
  connections(member: Member): MemberConnections;
  /** The injected clock's time, for compile durations. */
  now(): number;
  /** Told about the reports and catalogs passing through (the reports store). */
  observe?: ProxyObserver | undefined;
};

/** Called on the request path: implementations only note or queue, never wait. */
export type ProxyObserver = {
  /** The whole body of a report PUT, once the agent has sent it, whatever the member answers. */
  report(body: Buffer): void;
  /** A catalog a member answered with 200, with the run's transaction UUID when the request named it. */
  catalog(member: string, transactionUuid: string | undefined): void;
};

/** A request's hold on a member: a plain in-flight count, or a compile slot. */
type Hold = { release(outcome?: { compileMs?: number }): void };

/** `sent`, when given, counts the body bytes written to the agent (the request's record). */
export type Exchange = { req: AgentRequest; res: AgentResponse; peer: Peer; path: string; rawTarget: string; draining: () => boolean; log: Log; sent?: { bytes?: number | undefined } | undefined };

export type ProxyOutcome = { status: number; member: string | undefined; attempts: number; code?: string | undefined; queueMs?: number | undefined; upstreamMs?: number | undefined };

const catalogPath = /^\/puppet\/v[34]\/catalog(\/|$)/;
const reportPath = /^\/puppet\/v3\/report\/[^/]+$/;

export async function proxy(ex: Exchange, route: Route, target: ProxyTarget, log: Log): Promise<ProxyOutcome> {
  const { req, res, peer } = ex;
  const method = req.method;
  const declared = req.headers['content-length'] === undefined ? undefined : Number(req.headers['content-length']);
  const chunked = req.headers['transfer-encoding'] !== undefined;
  const hasBody = req.body !== undefined;
  if (declared !== undefined && declared > route.maxBodyBytes) {
    throw new RingmasterError('RM_BODY_TOO_LARGE', `request body of ${declared} bytes exceeds the limit of ${route.maxBodyBytes} bytes for route ${route.name}`);
  }

  // GET, HEAD and catalog POSTs may be sent again after the member failed mid-request (a reset):
  // compiling twice is harmless. Any request may be sent to another member when the first could
  // not even be connected to, as long as its body was kept (small bodies are).
  const isCatalog = catalogPath.test(ex.path);
  const repeatable = method === 'GET' || method === 'HEAD' || (method === 'POST' && isCatalog);
  // Catalog compiles take a compile slot (and may wait for one); nothing else waits behind them.
  const compile = isCatalog && (method === 'POST' || method === 'GET');
  let body: Buffer | NodeJS.ReadableStream | undefined;
  let bodyKept = true;
  if (!hasBody) {
    body = undefined;
  } else if (!chunked && declared !== undefined && declared <= target.settings.bufferLimit) {
    body = await readAll(req.body, declared);
  } else {
    body = chunked ? req.body.pipe(limiter(route.maxBodyBytes)) : req.body;
    bodyKept = false;
  }
  const observe = target.observe;
  if (observe && method === 'PUT' && reportPath.test(ex.path)) {
    if (Buffer.isBuffer(body)) observe.report(body);
    else if (body) teeWhole(body, (whole) => observe.report(whole));
  }
  const txn = observe && compile ? transactionUuidOf(method === 'GET' ? ex.rawTarget : Buffer.isBuffer(body) ? body : '') : undefined;

  const headers = upstreamRequestFields({ headers: req.headers, peer, remoteAddress: req.socket.remoteAddress, host: req.headers.host });
  const key = peer.kind === 'verified' ? peer.certname : undefined;
  const tried = new Set<string>();
  const maxAttempts = bodyKept ? 1 + target.settings.retryAttempts : 1;
  let lastError = '';
  let queueMs: number | undefined;

  while (tried.size < maxAttempts) {
    if (res.destroyed) return { status: 499, member: undefined, attempts: tried.size, code: 'client-gone' };
    // A free compile slot is taken at once; only a compile that must wait listens for the agent leaving.
    const held = compile ? compileNow(target, key, tried) ?? (await compileSlot(ex, target, key, tried)) : plainHold(target, key, tried);
    if (held === 'gone') return { status: 499, member: undefined, attempts: tried.size, code: 'client-gone' };
    if (!held) break;
    const { member, hold } = held;
    if (held.waitedMs !== undefined) queueMs = (queueMs ?? 0) + held.waitedMs;
    tried.add(member.name);
    const outcome = await exchange(ex, target, member, hold, compile ? txn ?? null : undefined, { method, path: ex.rawTarget, headers, body, headersTimeoutMs: route.responseHeadTimeoutMs, bodyTimeoutMs: target.settings.idleTimeoutMs });
    if (outcome.kind === 'answered') return { status: outcome.status, member: member.name, attempts: tried.size, code: outcome.code, queueMs, upstreamMs: outcome.headMs };
    const err = outcome.err;
    const kind = classify(err);
    if (kind === 'aborted') return { status: 499, member: member.name, attempts: tried.size, code: 'client-gone' };
    if (kind === 'body') throw err;
    if (kind === 'timeout') {
      target.pool.recordFailure(member, { kind: 'timeout' });
      throw new RingmasterError('RM_UPSTREAM_TIMEOUT', `member ${member.name} of pool ${target.pool.name} sent no response head within ${route.responseHeadTimeoutMs} ms`, { details: { member: member.name, attempts: tried.size } });
    }
    target.pool.recordFailure(member, { kind: 'connect' });
    lastError = `${member.name}: ${errorMessage(err)}`;
    const again = bodyKept && (kind === 'connect' || (repeatable && retriable(kind)));
    log.warn({ pool: target.pool.name, member: member.name, failure: kind, err: errorMessage(err), retry: again }, 'member failed before answering');
    if (!again) break;
  }

  const code = tried.size === 0 ? 'RM_POOL_UNAVAILABLE' : 'RM_UPSTREAM_UNAVAILABLE';
  const message = tried.size === 0
    ? `no member of pool ${target.pool.name} is available`
    : `no member of pool ${target.pool.name} answered (${lastError})`;
  throw new RingmasterError(code, message, { details: { retryAfter: target.settings.retryAfterSeconds, attempts: tried.size } });
}

type Attempt = { kind: 'answered'; status: number; code?: string; headMs?: number | undefined } | { kind: 'failed'; err: Error };

/** A member chosen for one try and what it holds there; `waitedMs` for a compile slot. */
type Held = { member: Member; hold: Hold; waitedMs?: number };

function plainHold(target: ProxyTarget, key: string | undefined, tried: ReadonlySet<string>): Held | undefined {
  const member = target.pool.select({ key, exclude: tried });
  return member ? { member, hold: target.pool.acquire(member) } : undefined;
}

function compileNow(target: ProxyTarget, key: string | undefined, tried: ReadonlySet<string>): Held | undefined {
  const grant = target.pool.compileNow({ key, exclude: tried });
  return grant ? { member: grant.member, hold: grant.lease, waitedMs: 0 } : undefined;
}

/** Waits for a compile slot; 'gone' when the agent left while waiting. Overload errors propagate. */
async function compileSlot(ex: Exchange, target: ProxyTarget, key: string | undefined, tried: ReadonlySet<string>): Promise<Held | undefined | 'gone'> {
  const gone = new AbortController();
  const onClose = () => gone.abort();
  ex.res.once('close', onClose);
  try {
    const grant = await target.pool.acquireCompile({ key, exclude: tried, signal: gone.signal });
    if (grant && grant.waitedMs > 0) ex.log.debug({ pool: target.pool.name, member: grant.member.name, waitedMs: grant.waitedMs }, 'compile waited for a slot');
    return grant ? { member: grant.member, hold: grant.lease, waitedMs: grant.waitedMs } : undefined;
  } catch (err) {
    if (gone.signal.aborted) return 'gone';
    throw err;
  } finally {
    ex.res.off('close', onClose);
  }
}

/**
 * One try on one member. It settles as `failed` only while nothing has been written to the agent;
 * once the head is in, the response is relayed chunk by chunk with backpressure both ways, and a
 * break after that cuts the agent's connection (RM_UPSTREAM_ABORTED is logged, never retried).
 */
function exchange(ex: Exchange, target: ProxyTarget, member: Member, hold: Hold, catalogRun: string | null | undefined, request: UpstreamRequest): Promise<Attempt> {
  const { res, sent } = ex;
  const sentAt = target.now();
  let compileMs: number | undefined;
  let headMs: number | undefined;
  return new Promise<Attempt>((resolve) => {
    let started = false;
    let settled = false;
    // Listened for from the first write the agent's connection could not take at once.
    let waitingForDrain = false;
    const settle = (a: Attempt) => {
      if (settled) return;
      settled = true;
      hold.release(compileMs === undefined ? undefined : { compileMs });
      res.off('close', onClose);
      if (waitingForDrain) res.off('drain', onDrain);
      // Each settle is given a fresh object, so the head's time is noted on it.
      if (a.kind === 'answered') a.headMs = headMs;
      resolve(a);
    };
    const onClose = () => {
      if (res.writableFinished) return;
      control.abort(Object.assign(new Error('the agent closed the connection'), { code: 'CLIENT_GONE' }));
      if (started) settle({ kind: 'answered', status: 499, code: 'client-gone' });
    };
    const onDrain = () => control.resume();
    const control = target.connections(member).exchange(request, {
      head(head) {
        const status = head.status;
        started = true;
        headMs = target.now() - sentAt;
        // The catalog is compiled before its response head is sent: that wait is the compile time.
        if (status === 200) compileMs = headMs;
        if (status === 200 && catalogRun !== undefined) target.observe?.catalog(member.name, catalogRun ?? undefined);
        if (status >= 500) target.pool.recordFailure(member, { kind: 'status', status });
        else target.pool.recordSuccess(member);
        // A member shedding load asks for the connection to close; so does a draining ringmaster.
        const close = ex.draining() || (status === 503 && head.connection !== undefined && /close/i.test(head.connection));
        res.writeForwarded(status, head.forward, head.length, { close, date: !head.hasDate });
      },
      data(chunk) {
        if (sent) sent.bytes = (sent.bytes ?? 0) + chunk.length;
        if (res.write(chunk)) return;
        if (!waitingForDrain) {
          waitingForDrain = true;
          res.on('drain', onDrain);
        }
        control.pause();
      },
      end() {
        res.end();
        settle({ kind: 'answered', status: res.statusCode });
      },
      error(err) {
        if (!started) {
          settle({ kind: 'failed', err });
          return;
        }
        // Bytes may have reached the agent: nothing can be retried or answered, only cut off.
        res.destroy();
        if (classify(err) === 'aborted') {
          settle({ kind: 'answered', status: 499, code: 'client-gone' });
          return;
        }
        ex.log.error({ code: 'RM_UPSTREAM_ABORTED', pool: target.pool.name, member: member.name, err: errorMessage(err) }, `member ${member.name} broke off its response`);
        settle({ kind: 'answered', status: res.statusCode, code: 'RM_UPSTREAM_ABORTED' });
      },
    });
    res.on('close', onClose);
  });
}

/** Hands `sink` the whole of a streamed body once it has all passed, without holding it up. */
function teeWhole(body: NodeJS.ReadableStream, sink: (whole: Buffer) => void): void {
  const chunks: Buffer[] = [];
  body.on('data', (c: Buffer) => chunks.push(c));
  body.once('end', () => sink(Buffer.concat(chunks)));
}

/** A body of a known, small length, whole, in a buffer of its own (async iteration costs more than events). */
function readAll(req: Readable, length: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const out = Buffer.allocUnsafe(length);
    let at = 0;
    req.on('data', (chunk: Buffer) => {
      at += chunk.copy(out, at);
    });
    req.once('end', () => resolve(at === length ? out : out.subarray(0, at)));
    req.once('error', reject);
  });
}

/** Counts a chunked body on its way through and fails it past the route's limit. */
function limiter(max: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      seen += chunk.length;
      if (seen > max) done(new RingmasterError('RM_BODY_TOO_LARGE', `request body exceeds the limit of ${max} bytes`));
      else done(null, chunk);
    },
  });
}
