// What kind of failure an upstream error is, which decides passive health and whether the
// request may be tried on another member. Every case here happened before the member sent a
// response head, so no byte of an answer has reached the agent.

export type FailureKind = 'connect' | 'reset' | 'timeout' | 'aborted' | 'body' | 'other';

const connectCodes = new Set([
  'ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND', 'EADDRNOTAVAIL', 'UPSTREAM_CONNECT_TIMEOUT',
  'ERR_TLS_CERT_ALTNAME_INVALID', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_HAS_EXPIRED', 'CERT_REVOKED', 'ERR_SSL_WRONG_VERSION_NUMBER', 'EPROTO',
]);
const resetCodes = new Set(['ECONNRESET', 'EPIPE', 'UPSTREAM_CLOSED']);

export function classify(err: unknown): FailureKind {
  const e = err as { code?: unknown; name?: unknown; cause?: unknown };
  const code = typeof e?.code === 'string' ? e.code : undefined;
  if (code === 'UPSTREAM_HEADERS_TIMEOUT') return 'timeout';
  if (code === 'CLIENT_GONE' || e?.name === 'AbortError') return 'aborted';
  if (code === 'RM_BODY_TOO_LARGE') return 'body';
  if (code !== undefined && connectCodes.has(code)) return 'connect';
  if (code !== undefined && (code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_'))) return 'connect';
  if (code !== undefined && resetCodes.has(code)) return 'reset';
  if (e?.cause !== undefined && e.cause !== err) return classify(e.cause);
  return 'other';
}

/** Connection-level failures a request may be retried after, on another member. */
export const retriable = (kind: FailureKind): boolean => kind === 'connect' || kind === 'reset';
