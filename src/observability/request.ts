// What is known about one agent request once it is answered: the record that feeds both the
// metrics and the access log. The listener starts it, the gateway fills in where the request
// went (`RequestTrace`), and it is emitted once, when the response is finished or cut off.

/** Filled in by the gateway as it routes and proxies; every field stays unset when not reached. */
export type RequestTrace = {
  route?: string | undefined;
  pool?: string | undefined;
  member?: string | undefined;
  /** Members tried (1 = no retry). */
  attempts?: number | undefined;
  /** From sending to the member until its response head arrived (for a catalog: the compile). */
  upstreamMs?: number | undefined;
  /** Waiting in the pool's compile queue. */
  queueMs?: number | undefined;
  /** An `RM_*` code known to the gateway that the response does not carry (RM_UPSTREAM_ABORTED). */
  code?: string | undefined;
  /** Body bytes written to the agent so far, added by whoever writes them. */
  bytes?: number | undefined;
};

export type RequestRecord = {
  /** Epoch ms when the request arrived (the injected clock). */
  time: number;
  listener: string;
  /** The verified certname; undefined without a (valid) client certificate. */
  certname: string | undefined;
  client: string | undefined;
  method: string;
  /** The path without its query string (queries may carry tokens). */
  path: string;
  /** Puppet's `environment` parameter when it is a valid environment name. */
  environment: string | undefined;
  endpoint: PuppetEndpoint;
  route: string | undefined;
  pool: string | undefined;
  member: string | undefined;
  /** The status sent; 499 when the agent left before any answer. */
  status: number;
  /** Body bytes sent to the agent. */
  bytes: number;
  durationMs: number;
  upstreamMs: number | undefined;
  queueMs: number | undefined;
  /** Further members tried after the first. */
  retries: number;
  code: string | undefined;
  /** False when the response was cut off (the agent left, or the member broke off). */
  completed: boolean;
};

export const puppetEndpoints = [
  'catalog', 'node', 'facts', 'file_content', 'file_metadata', 'file_metadatas', 'file_bucket_file', 'static_file_content',
  'report', 'environments', 'environment_classes', 'environment_modules', 'puppet_other',
  'certificate', 'certificate_request', 'certificate_revocation_list', 'certificate_status', 'certificate_renewal', 'expirations', 'ca_other',
  'status', 'other',
] as const;
export type PuppetEndpoint = (typeof puppetEndpoints)[number];

const puppetApiNames = ['catalog', 'node', 'facts', 'file_content', 'file_metadata', 'file_metadatas', 'file_bucket_file', 'static_file_content', 'report', 'environments', 'environment_classes', 'environment_modules'] as const;
const puppetApi = new Set<string>(puppetApiNames);
/** Each name to its one string, so that metric keys built from it are the same string every time. */
const puppetApiName = new Map<string, PuppetEndpoint>(puppetApiNames.map((n) => [n, n]));
const caApi = new Set<string>(['certificate', 'certificate_request', 'certificate_revocation_list', 'certificate_renewal', 'expirations']);

/** The Puppet endpoint of a checked path, a fixed set of values so that it can label metrics. */
export function puppetEndpoint(path: string): PuppetEndpoint {
  // Most requests: /puppet/v3/<name>/..., read without splitting the path.
  if (path.startsWith('/puppet/v3/')) {
    const end = path.indexOf('/', 11);
    return puppetApiName.get(end < 0 ? path.slice(11) : path.slice(11, end)) ?? 'puppet_other';
  }
  const [, first, version, name] = path.split('/', 4);
  if (first === 'puppet' && (version === 'v3' || version === 'v4')) return name !== undefined && puppetApi.has(name) ? (name as PuppetEndpoint) : 'puppet_other';
  if (first === 'puppet-ca' && version === 'v1') {
    if (name === 'certificate_status' || name === 'certificate_statuses') return 'certificate_status';
    return name !== undefined && caApi.has(name) ? (name as PuppetEndpoint) : 'ca_other';
  }
  if (first === 'status') return 'status';
  return 'other';
}

const environmentName = /^[A-Za-z0-9_]{1,64}$/;

/** Puppet environment names are word characters; anything else is not logged. */
export function environmentOf(query: URLSearchParams): string | undefined {
  const env = query.get('environment');
  return env !== null && environmentName.test(env) ? env : undefined;
}
