import { RingmasterError } from '../lib/errors.ts';
import type { Config } from '../config/load.ts';
import type { ReloadStatus } from '../runtime-files.ts';
import type { AdminAnswer, AdminCall } from './api.ts';
import { allow, notFound, objectBody, onlyParams } from './call.ts';

// GET /admin/v1/config: the configuration the process runs with (after reloads), redacted; and
// POST /admin/v1/reload: the same reload as SIGHUP and `ringmaster reload` (re-read the file,
// validate it whole, apply routes and pools, report what needs a restart), queued behind them.

export type ConfigApiDeps = {
  config: () => Config;
  /** The serve process's reload; undefined where none runs (an App started by a test). */
  reload?: (() => Promise<ReloadStatus>) | undefined;
};

export const redacted = '[redacted]';
/** Keys whose values are secrets, or name where one is kept: never shown. */
const secretKey = /token|password|passphrase|secret|credential|private.?key|^key$|keyfile|apikey/i;

export function createConfigApi(deps: ConfigApiDeps): (call: AdminCall) => Promise<AdminAnswer> {
  return async (call) => {
    const [, , collection, ...extra] = call.segments;
    if (extra.length > 0) throw notFound(call);
    onlyParams(call, []);
    if (collection === 'config') {
      allow(call, ['GET']);
      const config = deps.config();
      return { status: 200, body: { configFile: config.configFile ?? null, config: redact(config) } };
    }
    allow(call, ['POST']);
    await objectBody(call, {});
    if (!deps.reload) throw new RingmasterError('RM_ADMIN_UNAVAILABLE', 'this process cannot reload its configuration (it was not started by `ringmaster serve`)');
    const status = await deps.reload();
    if (!status.ok) return { status: 500, body: { error: { code: 'RM_RELOAD_FAILED', message: status.message }, reload: status } };
    return { status: 200, body: { reload: status } };
  };
}

/** A deep copy with secret-named values replaced, and credentials in URLs removed. */
export function redact(value: unknown, key = ''): unknown {
  if (value === undefined) return null;
  if (key !== '' && secretKey.test(key) && typeof value !== 'boolean' && typeof value !== 'number' && value !== null) return redacted;
  if (Array.isArray(value)) return value.map((v) => redact(v));
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined).map(([k, v]) => [k, redact(v, k)]));
  }
  if (typeof value === 'string' && /^[a-z][a-z0-9+.-]*:\/\/[^/@\s]*@/i.test(value)) return value.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@\s]*@/i, `$1${redacted}@`);
  return value;
}
