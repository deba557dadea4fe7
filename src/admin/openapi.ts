import { arr, bool, int, obj, orNull, ref, schemas, str, type Schema } from './openapi-schemas.ts';

// The admin API described as OpenAPI 3.1, served at GET /admin/v1/openapi.json. The integration
// tests call every operation here over HTTPS and check each answer against its schema, so this
// document and the code cannot drift apart unnoticed.

type Parameter = { name: string; in: 'path' | 'query'; required?: boolean; description: string; schema: Schema };
type Operation = {
  summary: string;
  operationId: string;
  tags: string[];
  parameters?: Parameter[];
  requestBody?: { required: boolean; content: { 'application/json': { schema: Schema } } };
  responses: Record<string, { description: string; content?: { 'application/json': { schema: Schema } } }>;
};

const json = (schema: Schema) => ({ 'application/json': { schema } });
const ok = (schema: Schema, description = 'OK') => ({ description, content: json(schema) });
const error = (description: string) => ({ description, content: json(ref('Error')) });
/** Every endpoint can refuse who is asking, the path, or the method. */
const common = {
  '400': error('Invalid name, query parameter or body (RM_ADMIN_BAD_REQUEST, RM_REPORTS_QUERY_INVALID, RM_PATH_INVALID, RM_CA_CERTNAME_INVALID).'),
  '401': error('Neither a client certificate nor a bearer token (RM_ADMIN_AUTH_REQUIRED), or a wrong token (RM_ADMIN_TOKEN_INVALID).'),
  '403': error('The certificate is not allowed (RM_AUTH_FORBIDDEN) or was rejected (RM_TLS_PEER_REJECTED); a cross-site request (RM_ADMIN_CROSS_SITE).'),
  '405': error('The path exists, the method does not (RM_METHOD_NOT_ALLOWED); `allow` lists the methods.'),
};
const notFound = { '404': error('No such pool, member, report, certificate or endpoint (RM_NOT_FOUND, RM_CA_NOT_FOUND).') };
const body = (schema: Schema, required = false) => ({ required, content: json(schema) });
const pathParam = (name: string, description: string): Parameter => ({ name, in: 'path', required: true, description, schema: str });
const query = (name: string, description: string, schema: Schema = str): Parameter => ({ name, in: 'query', description, schema });
const op = (o: Operation): Operation => ({ ...o, responses: { ...o.responses, ...common } });

const pool = pathParam('pool', 'Pool name.');
const member = pathParam('member', 'Member name.');
const certname = pathParam('certname', 'The certname.');
const reportId = pathParam('id', 'Report id.');
const pageParams = [query('limit', 'Page size (default 50, at most 1000).', int), query('cursor', '`next` of the previous page.')];
const statusParam = query('status', 'changed, unchanged or failed.', { type: 'string', enum: ['changed', 'unchanged', 'failed'] });
/** Every CA endpoint but the summary answers 409 RM_CA_EXTERNAL when the CA is external (`ca.enabled: false`). */
const external = 'the CA is external (RM_CA_EXTERNAL)';
const caExternal: Operation['responses'] = { '409': error('The CA is external (RM_CA_EXTERNAL).') };
const certAction = (action: string, summary: string, answer: Schema, extra: Partial<Operation> = {}, errors: Operation['responses'] = {}) =>
  op({ summary, operationId: `${action}Certificate`, tags: ['ca'], parameters: [certname], responses: { '200': ok(answer), ...notFound, ...caExternal, ...errors }, ...extra });

const paths: Record<string, Record<string, Operation>> = {
  '/admin/v1/openapi.json': {
    get: op({ summary: 'This document.', operationId: 'getOpenApi', tags: ['meta'], responses: { '200': ok({ type: 'object', required: ['openapi', 'info', 'paths'] }) } }),
  },
  '/admin/v1/state': {
    get: op({ summary: 'Listeners, routes and pools (with status and problems) in one answer.', operationId: 'getState', tags: ['state'], responses: { '200': ok(obj({ state: ref('State') })) } }),
  },
  '/admin/v1/listeners': {
    get: op({ summary: 'The agent listeners and where they are bound.', operationId: 'listListeners', tags: ['state'], responses: { '200': ok(obj({ listeners: arr(ref('Listener')) })) } }),
  },
  '/admin/v1/routes': {
    get: op({ summary: 'The route table in match order, the default routes last.', operationId: 'listRoutes', tags: ['state'], responses: { '200': ok(obj({ routes: arr(ref('Route')) })) } }),
  },
  '/admin/v1/pools': {
    get: op({ summary: 'Every pool with its members as the gateway sees them.', operationId: 'listPools', tags: ['pools'], responses: { '200': ok(obj({ pools: arr(ref('Pool')) })) } }),
  },
  '/admin/v1/pools/{pool}': {
    get: op({ summary: 'One pool.', operationId: 'getPool', tags: ['pools'], parameters: [pool], responses: { '200': ok(obj({ pool: ref('Pool') })), ...notFound } }),
  },
  '/admin/v1/pools/{pool}/members/{member}': {
    get: op({ summary: 'One member.', operationId: 'getMember', tags: ['pools'], parameters: [pool, member], responses: { '200': ok(ref('MemberAnswer')), ...notFound } }),
    put: op({
      summary: 'Add or replace a run-time member (kept in <stateDir>/members.json).',
      operationId: 'putMember',
      tags: ['pools'],
      parameters: [pool, member],
      requestBody: body(obj({ url: str, weight: int, priority: int, maxInFlight: int, compileSlots: int, drain: bool }, ['weight', 'priority', 'maxInFlight', 'compileSlots', 'drain']), true),
      responses: {
        '200': ok(obj({ pool: str, member: orNull(ref('Member')), created: bool }), 'Replaced'),
        '201': ok(obj({ pool: str, member: orNull(ref('Member')), created: bool }), 'Added'),
        ...notFound,
        '409': error('The member is defined in the configuration file (RM_ADMIN_MEMBER_IN_CONFIG).'),
      },
    }),
    delete: op({
      summary: 'Remove a run-time member; its requests in flight finish.',
      operationId: 'removeMember',
      tags: ['pools'],
      parameters: [pool, member],
      responses: { '200': ok(obj({ pool: str, member: str, removed: bool, inFlight: int })), ...notFound, '409': error('The member is defined in the configuration file (RM_ADMIN_MEMBER_IN_CONFIG).') },
    }),
  },
  '/admin/v1/pools/{pool}/members/{member}/drain': {
    post: op({
      summary: 'Drain a member: no new requests; with wait, answer once nothing is in flight.',
      operationId: 'drainMember',
      tags: ['pools'],
      parameters: [pool, member],
      requestBody: body(obj({ wait: bool, timeout: str }, ['wait', 'timeout'])),
      responses: {
        '200': ok(ref('DrainAnswer')),
        ...notFound,
        '503': ok(ref('DrainTimeout'), 'Stopped waiting: the client went away or ringmaster is stopping (RM_SHUTTING_DOWN); the member stays draining.'),
        '504': ok(ref('DrainTimeout'), 'Requests still in flight after the timeout (RM_ADMIN_DRAIN_TIMEOUT); the member stays draining.'),
      },
    }),
  },
  '/admin/v1/pools/{pool}/members/{member}/enable': {
    post: op({ summary: 'Enable a drained member (its slow start begins).', operationId: 'enableMember', tags: ['pools'], parameters: [pool, member], responses: { '200': ok(ref('DrainAnswer')), ...notFound } }),
  },
  '/admin/v1/reports': {
    get: op({
      summary: 'Stored reports, newest first, filtered and paged.',
      operationId: 'listReports',
      tags: ['reports'],
      parameters: [query('node', 'Certname.'), statusParam, query('environment', 'Environment.'), query('since', 'ISO 8601 time, or a duration ago (90m).'), query('until', 'ISO 8601 time, or a duration ago.'), ...pageParams],
      responses: { '200': ok(obj({ reports: arr(ref('Report')), next: orNull(str) })), '503': error('Reports are not available (RM_REPORTS_UNAVAILABLE).') },
    }),
  },
  '/admin/v1/reports/stats': {
    get: op({
      summary: 'Runs per time bucket by status, and nodes by their last status.',
      operationId: 'reportStats',
      tags: ['reports'],
      parameters: [query('window', 'How far back (default 1h).'), query('bucket', 'Bucket width (default 1m).')],
      responses: { '200': ok(obj({ stats: ref('Stats') })), '503': error('Reports are not available (RM_REPORTS_UNAVAILABLE).') },
    }),
  },
  '/admin/v1/reports/{id}': {
    get: op({ summary: 'One report with its failed resources and log lines.', operationId: 'getReport', tags: ['reports'], parameters: [reportId], responses: { '200': ok(obj({ report: ref('ReportDetail') })), ...notFound, '503': error('Reports are not available (RM_REPORTS_UNAVAILABLE).') } }),
  },
  '/admin/v1/reports/{id}/body': {
    get: op({ summary: 'The report as the agent sent it.', operationId: 'getReportBody', tags: ['reports'], parameters: [reportId], responses: { '200': ok({ type: 'object', required: ['host', 'status'] }), ...notFound, '503': error('Reports are not available (RM_REPORTS_UNAVAILABLE).') } }),
  },
  '/admin/v1/nodes': {
    get: op({
      summary: 'Nodes with their last report and run counts.',
      operationId: 'listNodes',
      tags: ['reports'],
      parameters: [statusParam, query('environment', 'Environment of the last report.'), ...pageParams],
      responses: { '200': ok(obj({ nodes: arr(ref('Node')), next: orNull(str) })), '503': error('Reports are not available (RM_REPORTS_UNAVAILABLE).') },
    }),
  },
  '/admin/v1/ca': {
    get: op({ summary: "The CA: its expiry, the CRL, and counts; with an external CA, that CA's pool, the CRL in use and ringmaster's own certificate from it.", operationId: 'getCa', tags: ['ca'], parameters: [query('expiring', 'What counts as expiring soon (default 30d).')], responses: { '200': ok(obj({ ca: { anyOf: [ref('CaSummary'), ref('ExternalCaSummary')] } })) } }),
  },
  '/admin/v1/ca/certificates': {
    get: op({
      summary: 'Requests and certificates; with expiring, only signed ones expiring within it, soonest first.',
      operationId: 'listCertificates',
      tags: ['ca'],
      parameters: [query('state', 'requested, signed or revoked.', { type: 'string', enum: ['requested', 'signed', 'revoked'] }), query('expiring', 'A duration such as 30d.')],
      responses: { '200': ok(obj({ certificates: arr(ref('Certificate')) })), ...caExternal },
    }),
  },
  '/admin/v1/ca/certificates/{certname}': {
    get: certAction('get', 'One request or certificate.', obj({ certificate: ref('Certificate') }), { operationId: 'getCertificate' }),
  },
  '/admin/v1/ca/certificates/{certname}/sign': {
    post: certAction('sign', 'Sign the pending request.', obj({ certificate: ref('Certificate'), by: str }), { requestBody: body(obj({ ttl: str, allowDnsAltNames: bool }, ['ttl', 'allowDnsAltNames'])) }, {
      '409': error(`No pending request (RM_CA_NO_CSR), or ${external}.`),
    }),
  },
  '/admin/v1/ca/certificates/{certname}/reject': {
    post: certAction('reject', 'Delete the pending request without signing it.', obj({ name: str, rejected: bool, by: str }), {}, { '409': error(`Nothing pending (RM_CA_NO_CSR), or ${external}.`) }),
  },
  '/admin/v1/ca/certificates/{certname}/revoke': {
    post: certAction('revoke', 'Revoke the certificate; the listeners enforce it at once.', obj({ certificate: ref('Certificate'), by: str }), {}, { '409': error(`No signed certificate (RM_CA_NOT_SIGNED), or ${external}.`) }),
  },
  '/admin/v1/ca/certificates/{certname}/clean': {
    post: certAction('clean', 'Revoke, then delete the certificate and request.', obj({ name: str, cleaned: bool, by: str })),
  },
  '/admin/v1/config': {
    get: op({ summary: 'The running configuration, secrets redacted.', operationId: 'getConfig', tags: ['config'], responses: { '200': ok(obj({ configFile: orNull(str), config: { type: 'object' } })) } }),
  },
  '/admin/v1/reload': {
    post: op({
      summary: 'Re-read the configuration file and apply routes and pools, as `ringmaster reload` does.',
      operationId: 'reload',
      tags: ['config'],
      responses: { '200': ok(obj({ reload: ref('ReloadStatus') })), '500': ok(ref('ReloadFailed'), 'The file was refused (RM_RELOAD_FAILED); the running configuration is kept.'), '503': error('No reload in this process (RM_ADMIN_UNAVAILABLE).') },
    }),
  },
};

export const openApiDocument = {
  openapi: '3.1.0',
  info: {
    title: 'ringmaster admin API',
    version: '1',
    description: 'HTTPS on admin.address:admin.port (127.0.0.1:8150 by default). Authenticate with a client certificate signed by ringmaster\'s CA (ringmaster\'s own, one carrying pp_cli_auth, or a certname in admin.allow), or `Authorization: Bearer <token>` with the token in admin.tokenFile. Errors are `{"error": {"code": "RM_...", "message": "..."}}` with the code also in the x-ringmaster-error header.',
  },
  servers: [{ url: 'https://127.0.0.1:8150' }],
  security: [{ clientCertificate: [] }, { bearerToken: [] }],
  paths,
  components: {
    schemas,
    securitySchemes: {
      clientCertificate: { type: 'mutualTLS', description: 'A certificate signed by ringmaster\'s CA.' },
      bearerToken: { type: 'http', scheme: 'bearer', description: 'The content of admin.tokenFile.' },
    },
  },
} as const;
