import type { Clock } from '../lib/clock.ts';
import type { Log } from './log.ts';
import { openAccessLog, type AccessLog, type AccessLogSettings } from './access-log.ts';
import { Metrics } from './metrics.ts';
import { RequestObserver } from './observer.ts';
import { stateReader, type StateSources } from './sources.ts';

// The metrics and the access log as the composition root runs them: the observer the listeners
// report each request to, and the scrape the admin API serves at /metrics.

export type Observability = {
  observer: RequestObserver;
  metrics: Metrics;
  accessLog: AccessLog | undefined;
  scrape(): Promise<{ contentType: string; body: string }>;
  /** Reopens the access log file (after logrotate moved it). */
  reopen(): void;
  /** Flushes and closes the access log. */
  close(): Promise<void>;
};

export function startObservability(settings: { accessLog: AccessLogSettings }, sources: StateSources, deps: { clock: Clock; log: Log }): Observability {
  const { clock } = deps;
  const metrics = new Metrics({ read: stateReader(sources, deps), now: () => clock.now() });
  const accessLog = openAccessLog(settings.accessLog);
  return {
    observer: new RequestObserver({ clock, metrics, accessLog }),
    metrics,
    accessLog,
    scrape: () => metrics.scrape(),
    reopen: () => accessLog?.reopen(),
    close: async () => accessLog?.close(),
  };
}
