import type { Clock } from '../lib/clock.ts';
import { errorCodes } from '../lib/error-codes.ts';
import type { AccessLog } from './access-log.ts';
import type { Metrics } from './metrics.ts';
import { environmentOf, puppetEndpoint, type RequestRecord, type RequestTrace } from './request.ts';

// Follows each agent request from its arrival to the end of its response and emits one record,
// to the metrics and the access log, when the response is finished or cut off ('close' comes
// after 'finish', and alone when the connection broke), however the request was answered: by a
// built-in service, by the proxy streaming a member's answer, or with an error. Nothing is
// wrapped or listened to here: this is on every request's path, so the listener has the answer
// call `end()` as it closes (AgentResponse#whenClosed), and the writers count the body bytes.

/** What is read of a request and its response (the listener's AgentRequest and AgentResponse). */
export type ObservedIn = { readonly url?: string | undefined; readonly method?: string | undefined; readonly socket: { readonly remoteAddress?: string | undefined } };
export type ObservedOut = { readonly headersSent: boolean; readonly statusCode: number; readonly writableFinished: boolean; getHeader(name: string): unknown };
export type RequestObserverDeps = { clock: Clock; metrics?: Metrics | undefined; accessLog?: AccessLog | undefined };
/** The verified certname, read when the request ends (the peer is cached per connection). */
export type CertnameOf = () => string | undefined;
/** A request being followed: its trace, and the call that emits its record when the response closes. */
export type ObservedRequest = { readonly trace: RequestTrace; readonly end: () => void };

export class RequestObserver {
  #clock: Clock;
  #metrics: Metrics | undefined;
  #accessLog: AccessLog | undefined;
  #elapsed: () => number;

  constructor(deps: RequestObserverDeps) {
    this.#clock = deps.clock;
    this.#metrics = deps.metrics;
    this.#accessLog = deps.accessLog;
    const clock = deps.clock;
    this.#elapsed = clock.monotonic ? () => clock.monotonic!() : () => clock.now();
  }

  tlsHandshake(listener: string, clientCert: 'verified' | 'none' | 'rejected', reason?: string): void {
    this.#metrics?.tlsHandshake(listener, clientCert, reason);
  }

  tlsFailure(listener: string, err: unknown): void {
    this.#metrics?.tlsFailure(listener, err);
  }

  /** A request refused before it could be routed: it has no record, only this count. */
  requestRefused(listener: string, code: string): void {
    this.#metrics?.requestRefused(listener, code);
  }

  /**
   * Starts the record of a request; the gateway fills in the returned trace, and whoever writes a
   * response body adds its length to `trace.bytes`. `end()` is called once, when the response
   * closes (finished or cut off), just before its 'close' event.
   */
  begin(listener: string, req: ObservedIn, res: ObservedOut, certname: CertnameOf): ObservedRequest {
    const time = this.#clock.now();
    const started = this.#elapsed();
    const trace: RequestTrace = { bytes: 0 };
    this.#metrics?.requestStarted();
    return { trace, end: () => this.#end(listener, req, res, certname, trace, time, started) };
  }

  #end(listener: string, req: ObservedIn, res: ObservedOut, certname: CertnameOf, trace: RequestTrace, time: number, started: number): void {
    const logged = this.#accessLog !== undefined;
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    // The listener notes the code of the errors it answers; a header set with setHeader is read too.
    const header = res.getHeader('x-ringmaster-error');
    const code = trace.code ?? (typeof header === 'string' && header in errorCodes ? header : undefined);
    const record: RequestRecord = {
      time,
      listener,
      // Fields only the access log shows are not worked out for the metrics alone.
      certname: logged ? certname() : undefined,
      client: req.socket.remoteAddress,
      method: req.method ?? 'GET',
      path,
      environment: logged && q >= 0 ? environmentOf(new URLSearchParams(url.slice(q + 1))) : undefined,
      endpoint: puppetEndpoint(path),
      route: trace.route,
      pool: trace.pool,
      member: trace.member,
      status: res.headersSent ? res.statusCode : 499,
      bytes: trace.bytes ?? 0,
      durationMs: Math.max(0, this.#elapsed() - started),
      upstreamMs: trace.upstreamMs,
      queueMs: trace.queueMs,
      retries: Math.max(0, (trace.attempts ?? 1) - 1),
      code,
      completed: res.writableFinished,
    };
    this.#metrics?.requestFinished(record);
    this.#accessLog?.write(record);
  }
}
