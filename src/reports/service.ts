import type { Clock } from '../lib/clock.ts';
import { errorMessage, isRingmasterError } from '../lib/errors.ts';
import type { Log } from '../observability/log.ts';
import type { Config } from '../config/load.ts';
import { ReportCapture } from './capture.ts';
import { ReportRetention } from './retention.ts';
import { SqliteReportStore } from './sqlite-store.ts';
import type { ReportStore } from './store.ts';

// The reports side of the composition root: the store in the state directory, the capture the
// request path hands reports to, and the retention timer. A store that cannot be opened is logged
// and ringmaster runs without reports: agent runs matter more than their history.

export type Reports = {
  store: ReportStore;
  capture: ReportCapture;
  retention: ReportRetention;
  /** Stops retention, lets queued reports be stored (up to `deadlineMs`), closes the store. */
  close(deadlineMs?: number): Promise<void>;
};

export async function openReports(config: Config, deps: { clock: Clock; log: Log }): Promise<Reports | undefined> {
  if (!config.reports.enabled) return undefined;
  const { clock, log } = deps;
  let store: SqliteReportStore;
  try {
    store = await SqliteReportStore.openIn(config.stateDir);
  } catch (err) {
    log.error({ code: isRingmasterError(err) ? err.code : 'RM_REPORTS_STORE', err: errorMessage(err) }, 'the reports store cannot be opened; running without reports');
    return undefined;
  }
  const { retention: limits, queue } = config.reports;
  const capture = new ReportCapture({ store, clock, log, maxQueue: queue.maxReports, maxQueueBytes: queue.maxBytes });
  const retention = new ReportRetention({ store, clock, log, maxAgeMs: limits.maxAge, maxCount: limits.maxCount, intervalMs: limits.pruneInterval });
  retention.start();
  log.info({ file: store.path }, 'reports store open');
  return {
    store,
    capture,
    retention,
    async close(deadlineMs = 5000) {
      await retention.stop();
      await capture.close(deadlineMs);
      await store.close().catch((err: unknown) => log.warn({ err: errorMessage(err) }, 'closing the reports store failed'));
    },
  };
}
