import { policyKinds } from '../pool/policies/policy.ts';

// The JSON Schemas (the subset openapi-check.ts validates: type, properties, required,
// additionalProperties, items, enum, pattern, minimum, anyOf and $ref) of everything the admin
// API answers. Objects are closed: a field added to an answer must be added here, or the tests
// that check every endpoint against the document fail.

export type Schema = Record<string, unknown>;

export const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });
export const str: Schema = { type: 'string' };
export const int: Schema = { type: 'integer' };
export const num: Schema = { type: 'number' };
export const bool: Schema = { type: 'boolean' };
export const arr = (items: Schema): Schema => ({ type: 'array', items });
/** The same schema, or null. */
export const orNull = (s: Schema): Schema => (typeof s.type === 'string' && s.$ref === undefined && s.enum === undefined ? { ...s, type: [s.type, 'null'] } : { anyOf: [s, { type: 'null' }] });
/** A closed object; every property is required unless named in `optional`. */
export const obj = (properties: Record<string, Schema>, optional: readonly string[] = []): Schema => ({
  type: 'object',
  additionalProperties: false,
  required: Object.keys(properties).filter((k) => !optional.includes(k)),
  properties,
});
const oneOfText = (values: readonly string[]): Schema => ({ type: 'string', enum: [...values] });
const iso: Schema = { type: 'string', format: 'date-time' };
const errorCode: Schema = { type: 'string', pattern: '^RM_[A-Z0-9_]+$' };
const counts = obj({ changed: int, unchanged: int, failed: int });

const memberProps: Record<string, Schema> = {
  name: str,
  url: str,
  priority: int,
  weight: int,
  maxInFlight: orNull(int),
  inFlight: int,
  draining: bool,
  health: oneOfText(['unknown', 'healthy', 'unhealthy']),
  activeChecks: bool,
  lastProbeError: orNull(str),
  ejectedUntil: orNull(int),
  probation: bool,
  eligible: bool,
  reason: { anyOf: [oneOfText(['draining', 'unhealthy', 'ejected', 'full']), { type: 'null' }] },
  compiles: int,
  compileSlots: orNull(int),
  usableSlots: orNull(int),
  slotsFrom: { anyOf: [oneOfText(['member', 'reported', 'pool']), { type: 'null' }] },
  compileMs: orNull(int),
  rampUntil: orNull(int),
  source: { anyOf: [oneOfText(['config', 'runtime']), { type: 'null' }] },
};
const poolProps: Record<string, Schema> = {
  name: str,
  policy: oneOfText(policyKinds),
  eligible: int,
  queued: int,
  oldestWaitMs: num,
  members: arr(ref('Member')),
};

const reportProps: Record<string, Schema> = {
  id: int,
  node: str,
  environment: str,
  status: oneOfText(['changed', 'unchanged', 'failed']),
  noop: bool,
  noopPending: bool,
  correctiveChange: bool,
  transactionCompleted: orNull(bool),
  runAt: iso,
  receivedAt: iso,
  durationMs: orNull(num),
  configurationVersion: orNull(str),
  transactionUuid: orNull(str),
  catalogUuid: orNull(str),
  codeId: orNull(str),
  cachedCatalogStatus: orNull(str),
  serverUsed: orNull(str),
  puppetVersion: orNull(str),
  reportFormat: int,
  changes: int,
  resources: obj({ total: int, changed: int, failed: int, failedToRestart: int, outOfSync: int, skipped: int, restarted: int, scheduled: int, correctiveChange: int }),
  events: obj({ total: int, success: int, failure: int, noop: int, audit: int }),
  timings: { type: 'object', additionalProperties: num },
  compiler: orNull(str),
  bodyBytes: int,
};

export const schemas: Record<string, Schema> = {
  Error: obj({ error: obj({ code: errorCode, message: str }), allow: str }, ['allow']),
  Member: obj(memberProps),
  Pool: obj(poolProps),
  PoolState: obj({ ...poolProps, status: oneOfText(['ok', 'degraded', 'down', 'empty']), problems: arr(str) }),
  MemberAnswer: obj({ pool: str, member: orNull(ref('Member')) }),
  DrainAnswer: obj({ pool: str, member: orNull(ref('Member')), idle: bool }),
  DrainTimeout: obj({ error: obj({ code: errorCode, message: str }), pool: str, member: orNull(ref('Member')), idle: bool }),
  Listener: obj({ name: str, address: orNull(str), port: orNull(int), configuredPort: orNull(int), listening: bool, draining: bool }),
  Route: obj({
    index: int,
    name: str,
    source: oneOfText(['config', 'default']),
    match: { type: 'object' },
    to: { anyOf: [obj({ pool: str }), obj({ service: oneOfText(['ca', 'status']) })] },
    canary: { anyOf: [{ type: 'object' }, { type: 'null' }] },
    timeouts: obj({ responseHead: int }),
    limits: obj({ maxBodyBytes: int, maxHeaderBytes: orNull(int) }),
  }),
  State: obj({
    now: iso,
    startedAt: iso,
    uptimeMs: int,
    pid: int,
    certname: str,
    gateway: oneOfText(['running', 'stopping', 'error']),
    listeners: arr(ref('Listener')),
    routes: arr(ref('Route')),
    pools: arr(ref('PoolState')),
  }),
  Report: obj(reportProps),
  ReportDetail: obj({
    ...reportProps,
    failedResources: arr(obj({ resource: str, type: str, title: str, file: orNull(str), line: orNull(int), message: orNull(str) })),
    logs: arr(obj({ level: str, message: str, source: str, time: orNull(str), file: orNull(str), line: orNull(int) })),
  }),
  Node: obj({ node: str, last: ref('Report'), runs: int, changed: int, unchanged: int, failed: int }),
  Stats: obj({
    since: iso,
    until: iso,
    bucketMs: int,
    buckets: arr(obj({ start: iso, changed: int, unchanged: int, failed: int })),
    window: counts,
    nodes: counts,
    stored: int,
  }),
  CaSummary: obj({
    mode: oneOfText(['internal']),
    subject: str,
    notAfter: iso,
    expiresInDays: int,
    crlNextUpdate: orNull(str),
    counts: obj({ requested: int, signed: int, revoked: int }),
    expiringWithinDays: int,
    expiring: int,
  }),
  ExternalCaSummary: obj({
    mode: oneOfText(['external']),
    pool: str,
    subject: str,
    notAfter: orNull(str),
    expiresInDays: orNull(int),
    crlThisUpdate: orNull(str),
    crlNextUpdate: orNull(str),
    crlRefreshFailures: int,
    revoked: int,
    certificate: obj({ certname: str, serial: str, notAfter: iso, expiresInDays: int }),
  }),
  Certificate: obj({
    name: str,
    state: oneOfText(['requested', 'signed', 'revoked']),
    fingerprint: str,
    serial: orNull(str),
    notBefore: orNull(str),
    notAfter: orNull(str),
    expiresInDays: orNull(int),
    dnsAltNames: arr(str),
    authorizationExtensions: { type: 'object', additionalProperties: str },
  }),
  ReloadStatus: obj({ generation: int, ok: bool, at: iso, message: str, needsRestart: arr(str) }),
  ReloadFailed: obj({ error: obj({ code: errorCode, message: str }), reload: ref('ReloadStatus') }),
};
