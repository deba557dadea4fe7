// The part of puppetserver's URL space a simulated compiler answers, and puppetserver's rules for
// which requests run Ruby (and so borrow a JRuby) and which agents its queue limit sheds.

export const requestKinds = ['node', 'file_metadatas', 'file_metadata', 'catalog', 'report', 'status', 'metrics', 'other'] as const;
export type RequestKind = (typeof requestKinds)[number];
export const rubyKinds = new Set<RequestKind>(['node', 'file_metadatas', 'file_metadata', 'catalog', 'report']);

export const queueLimitMessage = 'The number of requests waiting for a JRuby instance has exceeded the limit allowed by the max-queued-requests setting.';

/** puppetserver sheds only requests whose X-Puppet-Version is a version from 5.3.1 on. */
export function shedsVersion(header: string | string[] | undefined): boolean {
  const m = /^(\d+)\.(\d+)\.(\d+)/.exec(Array.isArray(header) ? (header[0] ?? '') : (header ?? ''));
  if (!m) return false;
  const [a, b, c] = [Number(m[1]), Number(m[2]), Number(m[3])];
  return a > 5 || (a === 5 && (b > 3 || (b === 3 && c >= 1)));
}

/** The certname at the end of a node, catalog or report path. */
export function lastSegment(path: string): string {
  const last = path.slice(path.lastIndexOf('/') + 1);
  try {
    return decodeURIComponent(last);
  } catch {
    return last;
  }
}

export function classify(method: string, path: string): RequestKind {
  if (path === '/status/v1/simple' || path.startsWith('/status/v1/simple/')) return 'status';
  if (path === '/status/v1/services/jruby-metrics') return 'metrics';
  if (method === 'GET' && path.startsWith('/puppet/v3/node/')) return 'node';
  if (method === 'GET' && path.startsWith('/puppet/v3/file_metadatas/')) return 'file_metadatas';
  if (method === 'GET' && path.startsWith('/puppet/v3/file_metadata/')) return 'file_metadata';
  if (method === 'POST' && path.startsWith('/puppet/v3/catalog/')) return 'catalog';
  if (method === 'PUT' && path.startsWith('/puppet/v3/report/')) return 'report';
  return 'other';
}
