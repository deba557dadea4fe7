import { RingmasterError } from '../lib/errors.ts';
import { text, json, errorResponse, type ServiceRequest, type ServiceResponse } from '../listener/http.ts';
import { oids } from './oids.ts';
import { asCaError, type CertificateAuthority } from './authority.ts';
import type { CertState } from './status.ts';

// /puppet-ca/v1, answered as puppetserver 8 answers it: same paths, methods, status codes,
// bodies and content types, with puppetserver's default auth.conf rules built in. Every error
// answer also names its stable RM_* code in the x-ringmaster-error header.

type Access = 'public' | 'authenticated' | 'admin';
type Handler = (req: ServiceRequest, name: string | undefined) => Promise<ServiceResponse>;
type Endpoint = { methods: Partial<Record<string, { access: Access; handler: Handler }>> };

const jsonBodyLimit = 1024 * 1024;
/** CRLs of a chain: large revocation lists run to a few MB. */
const crlBodyLimit = 64 * 1024 * 1024;

export function createCaApi(ca: CertificateAuthority): (req: ServiceRequest) => Promise<ServiceResponse> {
  const version = ca.config.puppetVersion;
  const withVersion = (r: ServiceResponse): ServiceResponse => ({ ...r, headers: { ...r.headers, 'x-puppet-version': version } });

  const endpoints: Record<string, Endpoint> = {
    certificate: {
      methods: {
        GET: { access: 'public', handler: async (req, name) => {
          const subject = required(name);
          const pem = await ca.getCertificate(subject);
          if (pem === undefined) return notFound(`Could not find certificate ${subject}`);
          if (subject === 'ca' && notModifiedSince(req, await ca.store.mtime('cert'))) return { status: 304 };
          return text(200, pem);
        } },
      },
    },
    certificate_request: {
      methods: {
        GET: { access: 'public', handler: async (_req, name) => {
          const pem = await ca.getRequest(required(name));
          return pem === undefined ? notFound(`Could not find certificate_request ${name}`) : text(200, pem);
        } },
        PUT: { access: 'public', handler: async (req, name) => {
          const body = await req.body(ca.config.maxCsrBytes);
          await ca.submitCsr(required(name), body.toString('utf8'));
          return text(200, '');
        } },
        DELETE: { access: 'admin', handler: async (_req, name) => {
          const deleted = await ca.deleteRequest(required(name));
          return deleted ? { status: 204 } : notFound(`Could not find certificate_request ${name}`);
        } },
      },
    },
    certificate_revocation_list: {
      methods: {
        GET: { access: 'public', handler: async (req) => {
          await ca.refresh();
          // With ca.crl.infra, clients get the infrastructure CRL (src/ca/infra-crl.ts).
          const file = ca.config.crl.infra ? 'infraCrl' : 'crl';
          if (notModifiedSince(req, await ca.store.mtime(file))) return { status: 304 };
          return text(200, file === 'crl' ? ca.crlPem : await ca.store.readFile('infraCrl'));
        } },
        // Newer CRLs of the chain's external issuers (an imported root's); the CA's own CRL is never replaced.
        PUT: { access: 'admin', handler: async (req, name) => {
          if (name !== undefined) return notFound('Not Found');
          await ca.updateExternalCrls((await req.body(crlBodyLimit)).toString('latin1'));
          return text(200, 'Successfully updated CRLs.');
        } },
      },
    },
    certificate_status: {
      methods: {
        GET: { access: 'admin', handler: async (_req, name) => {
          const status = await ca.status(required(name));
          return status === undefined ? notFound(`Could not find certificate ${name}`) : json(200, status);
        } },
        PUT: { access: 'admin', handler: async (req, name) => putStatus(ca, req, required(name)) },
        DELETE: { access: 'admin', handler: async (_req, name) => {
          // puppetserver deletes the files without revoking; `clean` is the revoking variant.
          return (await ca.remove(required(name))) ? { status: 204 } : notFound('Invalid certificate subject.');
        } },
      },
    },
    certificate_statuses: {
      methods: {
        GET: { access: 'admin', handler: async (req, name) => {
          if (!name) throw new RingmasterError('RM_CA_BAD_REQUEST', 'Missing URL Segment');
          const state = req.query.get('state');
          if (state !== null && !['requested', 'signed', 'revoked'].includes(state)) throw new RingmasterError('RM_CA_BAD_REQUEST', `invalid state "${state}"`);
          return json(200, await ca.list((state ?? undefined) as CertState | undefined));
        } },
      },
    },
    expirations: { methods: { GET: { access: 'authenticated', handler: () => Promise.resolve(json(200, ca.expirations())) } } },
    clean: { methods: { PUT: { access: 'admin', handler: async (req) => clean(ca, req) } } },
    sign: {
      methods: {
        POST: { access: 'admin', handler: async (req, name) => {
          if (name === 'all') return signResult(ca, await ca.pendingNames());
          if (name !== undefined) return notFound('Not Found');
          const body = parseJson(await req.body(jsonBodyLimit));
          const certnames = (body as { certnames?: unknown } | undefined)?.certnames;
          if (!Array.isArray(certnames) || !certnames.every((c) => typeof c === 'string')) {
            return json(422, { kind: 'schema-violation', submitted: body, error: '{:certnames [(not (sequential? a-java.lang.String))]}' });
          }
          return signResult(ca, certnames);
        } },
      },
    },
    certificate_renewal: {
      methods: {
        POST: { access: 'authenticated', handler: async (req) => {
          if (req.peer.kind !== 'verified') throw new RingmasterError('RM_CA_BAD_REQUEST', 'No valid certificate found in renewal request');
          const cert = await ca.renew(req.peer.cert);
          return text(200, cert.pem);
        } },
      },
    },
  };

  return async (req) => {
    try {
      // segments: ['puppet-ca', 'v1', endpoint, name?]
      const [, v, endpointName, name, ...rest] = req.segments;
      const endpoint = v === 'v1' && endpointName !== undefined && rest.length === 0 ? endpoints[endpointName] : undefined;
      if (!endpoint) return withVersion(notFound('Not Found'));
      const route = endpoint.methods[req.method === 'HEAD' ? 'GET' : req.method];
      if (!route) return withVersion(errorResponse(new RingmasterError('RM_METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${req.path}`)));
      authorize(ca, req, route.access);
      return withVersion(await route.handler(req, name === '' ? undefined : name));
    } catch (err) {
      return withVersion(errorResponse(asCaError(err)));
    }
  };
}

function authorize(ca: CertificateAuthority, req: ServiceRequest, access: Access): void {
  if (access === 'public') return;
  if (req.peer.kind !== 'verified') throw new RingmasterError('RM_AUTH_REQUIRED', `Forbidden request: ${req.path} needs a verified client certificate`);
  if (access === 'authenticated') return;
  const cliAuth = req.peer.cert.extensions.some((e) => e.oid === oids.ppCliAuth && e.text === 'true');
  if (cliAuth || ca.config.adminCertnames.includes(req.peer.certname)) return;
  throw new RingmasterError('RM_AUTH_FORBIDDEN', `Forbidden request: ${req.peer.certname} may not use ${req.method} ${req.path} (needs pp_cli_auth or ca.adminCertnames)`);
}

function required(name: string | undefined): string {
  if (name === undefined || name === '') throw new RingmasterError('RM_CA_BAD_REQUEST', 'Missing URL Segment');
  return name;
}

function notFound(message: string): ServiceResponse {
  return errorResponse(new RingmasterError('RM_CA_NOT_FOUND', message));
}

function notModifiedSince(req: ServiceRequest, mtimeMs: number): boolean {
  const header = req.headers['if-modified-since'];
  if (!header) return false;
  const since = Date.parse(header);
  // HTTP dates have whole seconds; compare at that resolution.
  return Number.isFinite(since) && Math.floor(mtimeMs / 1000) * 1000 <= since;
}

function parseJson(body: Buffer): unknown {
  if (body.length === 0) return undefined;
  try {
    return JSON.parse(body.toString('utf8')) as unknown;
  } catch {
    throw new RingmasterError('RM_CA_BAD_REQUEST', 'Request body is not valid JSON.');
  }
}

async function putStatus(ca: CertificateAuthority, req: ServiceRequest, name: string): Promise<ServiceResponse> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim() ?? '';
  if (!['', 'application/json', 'text/pson', 'pson'].includes(type)) {
    throw new RingmasterError('RM_CA_UNSUPPORTED_MEDIA', `Unsupported media type: ${type}`);
  }
  const body = parseJson(await req.body(jsonBodyLimit));
  if (typeof body !== 'object' || body === null) throw new RingmasterError('RM_CA_BAD_REQUEST', 'Empty request body.');
  const { desired_state: desired, cert_ttl: ttl } = body as { desired_state?: unknown; cert_ttl?: unknown };
  if (desired !== 'signed' && desired !== 'revoked') {
    throw new RingmasterError('RM_CA_BAD_REQUEST', 'State must be one of: "signed", "revoked"');
  }
  if (ttl !== undefined && (typeof ttl !== 'number' || !Number.isInteger(ttl) || ttl <= 0 || ttl > 1_576_800_000)) {
    throw new RingmasterError('RM_CA_TTL_INVALID', 'cert_ttl must be a positive integer number of seconds, at most 50 years');
  }
  const status = await ca.status(name);
  if (status === undefined) return notFound('Invalid certificate subject.');
  if (desired === 'signed') {
    if (status.state !== 'requested') {
      return conflict(`Cannot sign certificate for host ${name} without a certificate request`);
    }
    const [outcome] = await ca.sign([name], typeof ttl === 'number' ? { ttlMs: ttl * 1000 } : {});
    if (outcome && !outcome.ok) return conflict(outcome.error.message, outcome.error.code);
    return { status: 204 };
  }
  if (status.state === 'requested') return conflict(`Cannot revoke certificate for host ${name} without a signed certificate`);
  await ca.revoke([name]);
  return { status: 204 };
}

function conflict(message: string, code = 'RM_CA_NO_CSR'): ServiceResponse {
  return text(409, `${message}\n`, { 'x-ringmaster-error': code });
}

async function clean(ca: CertificateAuthority, req: ServiceRequest): Promise<ServiceResponse> {
  const body = parseJson(await req.body(jsonBodyLimit)) as { certnames?: unknown; async?: unknown } | undefined;
  if (!body || !Array.isArray(body.certnames) || !body.certnames.every((c) => typeof c === 'string')) {
    throw new RingmasterError('RM_CA_BAD_REQUEST', 'Request body must be JSON with a "certnames" list of strings.');
  }
  if (body.async === true) throw new RingmasterError('RM_CA_BAD_REQUEST', 'Async mode is not currently supported.');
  const { missing } = await ca.clean(body.certnames);
  if (missing.length === 0) return text(200, 'Successfully cleaned all certs.');
  return text(200, `The following certs do not exist and cannot be revoked: [${missing.map((m) => `"${m}"`).join(', ')}]`);
}

async function signResult(ca: CertificateAuthority, names: string[]): Promise<ServiceResponse> {
  const outcomes = await ca.sign(names);
  const signed: string[] = [];
  const noCsr: string[] = [];
  const errors: string[] = [];
  for (const o of outcomes) {
    if (o.ok) signed.push(o.name);
    else if (o.error.code === 'RM_CA_NO_CSR') noCsr.push(o.name);
    else errors.push(o.name);
  }
  return json(200, { signed, 'no-csr': noCsr, 'signing-errors': errors });
}
