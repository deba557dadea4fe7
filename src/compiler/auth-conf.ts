import { hoconString } from './hocon.ts';

// auth.conf for a compiler behind ringmaster: Puppet Server 7's packaged default rules, unchanged,
// plus `allow-header-cert-info: true`. Keeping the rules identical to the packaged file means an
// operator diffing the two sees exactly one difference. The /puppet-ca rules are inert here (the
// CA service is off) but stay, so the file also matches the defaults of a server whose CA is on.

type Allow = string | { extensions: Record<string, string> };

export type AuthRule = {
  name: string;
  path: string;
  type: 'path' | 'regex';
  method?: string | string[];
  allow?: Allow;
  deny?: string;
  allowUnauthenticated?: boolean;
  sortOrder: number;
  comment?: string;
};

const cliAuth: Allow = { extensions: { pp_cli_auth: 'true' } };

export const defaultAuthRules: readonly AuthRule[] = [
  { comment: 'Allow nodes to retrieve their own catalog', path: '^/puppet/v3/catalog/([^/]+)$', type: 'regex', method: ['get', 'post'], allow: '$1', sortOrder: 500, name: 'puppetlabs v3 catalog from agents' },
  { comment: 'Allow services to retrieve catalogs on behalf of others', path: '^/puppet/v4/catalog/?$', type: 'regex', method: 'post', deny: '*', sortOrder: 500, name: 'puppetlabs v4 catalog for services' },
  { comment: 'Allow nodes to retrieve the certificate they requested earlier', path: '/puppet-ca/v1/certificate/', type: 'path', method: 'get', allowUnauthenticated: true, sortOrder: 500, name: 'puppetlabs certificate' },
  { comment: 'Allow all nodes to access the certificate revocation list', path: '/puppet-ca/v1/certificate_revocation_list/ca', type: 'path', method: 'get', allowUnauthenticated: true, sortOrder: 500, name: 'puppetlabs crl' },
  { comment: 'Allow nodes to request a new certificate', path: '/puppet-ca/v1/certificate_request', type: 'path', method: ['get', 'put'], allowUnauthenticated: true, sortOrder: 500, name: 'puppetlabs csr' },
  { comment: 'Allow the CA CLI to access the certificate_status endpoint', path: '/puppet-ca/v1/certificate_status', type: 'path', method: ['get', 'put', 'delete'], allow: cliAuth, sortOrder: 500, name: 'puppetlabs cert status' },
  { path: '^/puppet-ca/v1/certificate_revocation_list$', type: 'regex', method: 'put', allow: cliAuth, sortOrder: 500, name: 'puppetlabs CRL update' },
  { comment: 'Allow the CA CLI to access the certificate_statuses endpoint', path: '/puppet-ca/v1/certificate_statuses', type: 'path', method: 'get', allow: cliAuth, sortOrder: 500, name: 'puppetlabs cert statuses' },
  { comment: 'Allow authenticated access to the CA expirations endpoint', path: '/puppet-ca/v1/expirations', type: 'path', method: 'get', allow: '*', sortOrder: 500, name: 'puppetlabs CA cert and CRL expirations' },
  { comment: 'Allow the CA CLI to access the certificate clean endpoint', path: '/puppet-ca/v1/clean', type: 'path', method: 'put', allow: cliAuth, sortOrder: 500, name: 'puppetlabs cert clean' },
  { comment: 'Allow unauthenticated access to the status service endpoint', path: '/status/v1/services', type: 'path', method: 'get', allowUnauthenticated: true, sortOrder: 500, name: 'puppetlabs status service - full' },
  { path: '/status/v1/simple', type: 'path', method: 'get', allowUnauthenticated: true, sortOrder: 500, name: 'puppetlabs status service - simple' },
  { path: '/puppet/v3/environments', type: 'path', method: 'get', allow: '*', sortOrder: 500, name: 'puppetlabs environments' },
  { comment: 'Allow nodes to access all file_bucket_files', path: '/puppet/v3/file_bucket_file', type: 'path', method: ['get', 'head', 'post', 'put'], allow: '*', sortOrder: 500, name: 'puppetlabs file bucket file' },
  { comment: 'Allow nodes to access all file_content', path: '/puppet/v3/file_content', type: 'path', method: ['get', 'post'], allow: '*', sortOrder: 500, name: 'puppetlabs file content' },
  { comment: 'Allow nodes to access all file_metadata', path: '/puppet/v3/file_metadata', type: 'path', method: ['get', 'post'], allow: '*', sortOrder: 500, name: 'puppetlabs file metadata' },
  { comment: 'Allow nodes to retrieve only their own node definition', path: '^/puppet/v3/node/([^/]+)$', type: 'regex', method: 'get', allow: '$1', sortOrder: 500, name: 'puppetlabs node' },
  { comment: 'Allow nodes to store only their own reports', path: '^/puppet/v3/report/([^/]+)$', type: 'regex', method: 'put', allow: '$1', sortOrder: 500, name: 'puppetlabs report' },
  { comment: 'Allow nodes to update their own facts', path: '^/puppet/v3/facts/([^/]+)$', type: 'regex', method: 'put', allow: '$1', sortOrder: 500, name: 'puppetlabs facts' },
  { path: '/puppet/v3/static_file_content', type: 'path', method: 'get', allow: '*', sortOrder: 500, name: 'puppetlabs static file content' },
  { path: '/puppet/v3/tasks', type: 'path', allow: '*', sortOrder: 500, name: 'puppet tasks information' },
  { comment: 'Deny everything else', path: '/', type: 'path', deny: '*', sortOrder: 999, name: 'puppetlabs deny all' },
];

function renderAllow(a: Allow): string {
  if (typeof a === 'string') return hoconString(a);
  const ext = Object.entries(a.extensions).map(([k, v]) => `                    ${k}: ${hoconString(v)}`);
  return ['{', '                extensions: {', ...ext, '                }', '            }'].join('\n');
}

function renderRule(r: AuthRule): string {
  const method = r.method === undefined ? [] : [`                method: ${Array.isArray(r.method) ? `[${r.method.join(', ')}]` : r.method}`];
  return [
    '        {',
    ...(r.comment ? [`            # ${r.comment}`] : []),
    '            match-request: {',
    `                path: ${hoconString(r.path)}`,
    `                type: ${r.type}`,
    ...method,
    '            }',
    ...(r.allow !== undefined ? [`            allow: ${renderAllow(r.allow)}`] : []),
    ...(r.deny !== undefined ? [`            deny: ${hoconString(r.deny)}`] : []),
    ...(r.allowUnauthenticated ? ['            allow-unauthenticated: true'] : []),
    `            sort-order: ${r.sortOrder}`,
    `            name: ${hoconString(r.name)}`,
    '        }',
  ].join('\n');
}

export function renderAuthConf(rules: readonly AuthRule[] = defaultAuthRules): string {
  return [
    '# Puppet Server\'s default authorization rules, with one change: allow-header-cert-info.',
    '# Written by `ringmaster compiler config`.',
    'authorization: {',
    '    version: 1',
    '    # Take the client\'s identity from the X-Client-Verify, X-Client-DN and X-Client-Cert',
    '    # headers that ringmaster sets from the certificate it verified. Anyone who can connect',
    '    # to this server can send those headers: it must be reachable from ringmaster only.',
    '    allow-header-cert-info: true',
    '    rules: [',
    rules.map(renderRule).join(',\n'),
    '    ]',
    '}',
    '',
  ].join('\n');
}
