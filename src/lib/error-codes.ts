// The single registry of ringmaster's stable error codes. A code is never reused or renamed;
// docs/errors.md lists every one (src/lib/error-codes.test.ts keeps the two in step).

export const errorCodes = {
  // configuration and start-up
  RM_CONFIG_INVALID: { status: 500, summary: 'The configuration file does not match the schema.' },
  RM_CONFIG_UNREADABLE: { status: 500, summary: 'The configuration file cannot be read or is not YAML.' },
  RM_STATE_DIR: { status: 500, summary: 'The state directory cannot be created or used.' },
  RM_ENV_INVALID: { status: 500, summary: 'An environment variable read by bin/ringmaster (RINGMASTER_MALLOC, RINGMASTER_GC, RINGMASTER_NEW_SPACE_MB, RINGMASTER_PRETENURING) has a value it does not accept.' },

  // the CA directory and its lock
  RM_CA_DIR_INVALID: { status: 500, summary: 'A file in the CA directory is missing or corrupt; the message names it.' },
  RM_CA_DIR_EXISTS: { status: 409, summary: 'A CA already exists where setup or import was asked to create one.' },
  RM_CA_NOT_INITIALISED: { status: 500, summary: 'No CA exists yet in the state directory (run `ringmaster ca setup` or `serve`).' },
  RM_CA_LOCK_TIMEOUT: { status: 503, summary: 'Another process held the CA directory lock for too long.' },
  RM_CA_EXTERNAL: { status: 409, summary: 'The CA is external (`ca.enabled: false`): certificates are managed on it, not through ringmaster.' },
  RM_CA_EXTERNAL_UNAVAILABLE: { status: 503, summary: "At start-up the external CA could not be reached, gave no CRL, or did not sign ringmaster's own request within `ca.external.waitForCert`." },
  RM_CA_EXTERNAL_INVALID: { status: 502, summary: 'The external CA answered with a certificate or CRL that does not verify against `ca.external.caFile`.' },
  RM_CA_IMPORT_INVALID: { status: 400, summary: 'The directory given to `ca import` is not a usable puppetserver CA.' },

  // certificate requests
  RM_CA_CSR_MALFORMED: { status: 400, summary: 'The body is not one PEM certificate request that can be parsed.' },
  RM_CA_CSR_SIGNATURE: { status: 400, summary: "The certificate request's signature does not verify against its own key." },
  RM_CA_CSR_SUBJECT_MISMATCH: { status: 400, summary: 'The CSR common name differs from the name in the URL.' },
  RM_CA_CERTNAME_INVALID: { status: 400, summary: 'The certname breaks the Puppet naming rules (case, characters, labels).' },
  RM_CA_CSR_DUPLICATE: { status: 400, summary: 'The name already has a signed, revoked or pending certificate.' },
  RM_CA_CSR_ALT_NAMES: { status: 400, summary: 'The CSR asks for subject alternative names, which are not allowed here.' },
  RM_CA_CSR_AUTH_EXTENSION: { status: 400, summary: 'The CSR asks for authorization extensions, which are not allowed here.' },
  RM_CA_CSR_EXTENSION_FORBIDDEN: { status: 400, summary: 'The CSR asks for an extension no CSR may carry (pp_cli_auth, or one outside the Puppet arcs).' },
  RM_CA_CSR_ATTRIBUTE_FORBIDDEN: { status: 400, summary: 'The CSR carries an attribute that is not allowed.' },

  // certificates and status
  RM_CA_NOT_FOUND: { status: 404, summary: 'No certificate, request or status exists for that name.' },
  RM_CA_NO_CSR: { status: 409, summary: 'Signing was asked for a name with no pending certificate request.' },
  RM_CA_NOT_SIGNED: { status: 409, summary: 'Revocation was asked for a name with no signed certificate.' },
  RM_CA_BAD_REQUEST: { status: 400, summary: 'The CA API request body or parameters are invalid.' },
  RM_CA_UNSUPPORTED_MEDIA: { status: 415, summary: 'The CA API request has a Content-Type it does not accept.' },
  RM_CA_RENEWAL_DISABLED: { status: 404, summary: 'Certificate renewal is off (ca.autoRenewal.enabled).' },
  RM_CA_RENEWAL_FOREIGN: { status: 403, summary: 'The certificate presented for renewal was not issued by this CA.' },
  RM_CA_CRL_INVALID: { status: 400, summary: 'CRLs submitted to PUT /puppet-ca/v1/certificate_revocation_list were refused: none could be read, one lacks an authority key identifier, or the resulting chain would not verify or be current.' },
  RM_CA_TTL_INVALID: { status: 400, summary: 'A requested certificate lifetime is not a positive whole number of seconds within limits.' },
  RM_CA_TOKEN_INVALID: { status: 400, summary: 'An autosign token request is invalid (name, lifetime).' },

  // the HTTPS listener
  RM_BODY_TOO_LARGE: { status: 413, summary: 'The request body exceeds the limit for this endpoint.' },
  RM_PATH_INVALID: { status: 400, summary: 'The request path is ambiguous (encoded slash, dot segment, control character) and is refused.' },
  RM_NOT_FOUND: { status: 404, summary: 'No endpoint serves this path.' },
  RM_METHOD_NOT_ALLOWED: { status: 405, summary: 'The endpoint exists but not for this method.' },
  RM_AUTH_REQUIRED: { status: 403, summary: 'The endpoint needs a verified client certificate and none was presented.' },
  RM_AUTH_FORBIDDEN: { status: 403, summary: 'The verified client certificate is not allowed to use this endpoint.' },
  RM_TLS_PEER_REJECTED: { status: 403, summary: 'The client certificate presented did not verify (unknown issuer, revoked, expired).' },
  RM_HTTP_MALFORMED: { status: 400, summary: 'The request is not well-formed HTTP/1.1 (request line, header syntax, repeated Host or Content-Length, Content-Length with Transfer-Encoding, folded or bare-LF lines, a bad chunk); the message says which, and the connection is closed.' },
  RM_HTTP_VERSION: { status: 505, summary: 'The request line names an HTTP version other than 1.0 or 1.1; the connection is closed.' },
  RM_HTTP_TRANSFER_CODING: { status: 501, summary: 'The request body uses a transfer coding other than chunked; the connection is closed.' },
  RM_HTTP_EXPECTATION: { status: 417, summary: 'The request carries an Expect other than 100-continue; the connection is closed.' },
  RM_HTTP_HEAD_TIMEOUT: { status: 408, summary: 'The client did not send a whole request head within listeners[].requestHeaderTimeout; the connection is closed.' },
  RM_INTERNAL: { status: 500, summary: 'An unexpected internal error; the log has the cause.' },

  // the gateway: routes, pools, members
  RM_HEADERS_TOO_LARGE: { status: 431, summary: "The request head exceeds the listener's maxHeaderBytes or the limit of its route." },
  RM_POOL_UNAVAILABLE: { status: 503, summary: 'No member of the pool is eligible (all unhealthy, draining, ejected or full, or the pool has none); sent with Retry-After.' },
  RM_QUEUE_FULL: { status: 503, summary: 'Every compile slot of the pool is busy and its queue (capacity.maxQueue) is full; sent with a Retry-After spread over capacity.retryAfter.' },
  RM_QUEUE_TIMEOUT: { status: 503, summary: 'A catalog compile waited capacity.queueTimeout for a free compile slot; sent with a Retry-After spread over capacity.retryAfter.' },
  RM_UPSTREAM_UNAVAILABLE: { status: 503, summary: 'Every member tried failed before answering (refused, reset, TLS failure) and no retry was left; sent with Retry-After.' },
  RM_UPSTREAM_TIMEOUT: { status: 504, summary: 'The member did not send the response head within the route\'s responseHead timeout; not retried, as the compile may still be running.' },
  RM_UPSTREAM_ABORTED: { status: 502, summary: 'The member broke off a response already being sent; the agent connection is closed (logged, cannot be answered).' },
  RM_SHUTTING_DOWN: { status: 503, summary: 'ringmaster is stopping and takes no new work; sent with Retry-After.' },
  RM_NOT_RUNNING: { status: 503, summary: 'A command needs the running ringmaster (pid file in the state directory) and none is running.' },
  RM_RELOAD_FAILED: { status: 500, summary: 'A reload was refused (invalid configuration, or a change that needs a restart); the running configuration is kept.' },

  // the admin API and run-time members
  RM_ADMIN_AUTH_REQUIRED: { status: 401, summary: 'An admin API request came with neither a client certificate nor a bearer token.' },
  RM_ADMIN_TOKEN_INVALID: { status: 401, summary: 'An admin API bearer token does not match admin.tokenFile (or no token file is configured).' },
  RM_ADMIN_BAD_REQUEST: { status: 400, summary: 'An admin API request body or name is invalid (not JSON, unknown field, bad URL or number); the message lists every problem.' },
  RM_ADMIN_MEMBER_IN_CONFIG: { status: 409, summary: 'The member is defined in the configuration file; change it there and reload (drain and enable work on it at run time).' },
  RM_ADMIN_DRAIN_TIMEOUT: { status: 504, summary: 'A drain with wait: the member still had requests in flight when the timeout passed; it stays draining.' },
  RM_ADMIN_UNAVAILABLE: { status: 503, summary: 'The admin API is not available: admin.enabled is false, its listener could not start (logged at start), or it cannot be reached.' },
  RM_ADMIN_CROSS_SITE: { status: 403, summary: 'A request to the admin API that changes something came from another web origin (Origin or Sec-Fetch-Site), or as a form (text/plain, urlencoded, multipart); it is refused so that a web page cannot act with an operator\'s browser credentials.' },
  RM_MEMBERS_FILE_INVALID: { status: 500, summary: '`<stateDir>/members.json` (members added and drains set at run time) cannot be read or is not valid; fix or remove it.' },

  // reports
  RM_REPORT_INVALID: { status: 400, summary: 'A report body is not a Puppet JSON report (not JSON, or host, environment, status, time or report_format missing or of the wrong type); the message names the field.' },
  RM_REPORTS_QUERY_INVALID: { status: 400, summary: 'A reports query has an invalid parameter (status, node, time, limit or cursor); the message names it.' },
  RM_REPORTS_STORE: { status: 500, summary: 'The reports store failed (cannot be opened or created, disk full, corrupt, locked, or written by a newer ringmaster); the message has the reason. Agent runs are not affected.' },
  RM_REPORTS_UNAVAILABLE: { status: 503, summary: 'Reports are not available: reports.enabled is false, the store is closed, or it holds no reports yet.' },

  // the DNS responder
  RM_DNS_LISTEN: { status: 500, summary: 'The DNS responder cannot bind its UDP or TCP socket (dns.address, dns.port: in use, or port 53 without the right to bind it).' },
  RM_DNS_ZONE_INVALID: { status: 500, summary: 'No DNS zone to answer or print: dns.zones is empty, or `dns zonefile --zone` names no configured zone.' },

  // command line
  RM_CLI_USAGE: { status: 400, summary: 'A command was called with invalid arguments.' },
} as const satisfies Record<string, { status: number; summary: string }>;

export type ErrorCode = keyof typeof errorCodes;
