import { hostname } from 'node:os';
import { z } from 'zod';
import { parseDuration } from '../lib/duration.ts';

// The one configuration schema: it gives the types, the validation (every problem with its
// path, unknown keys refused) and the reference page (docs/configuration.md). This file is the
// only importer of zod.

const duration = (what: string) =>
  z
    .union([z.string(), z.number().nonnegative()])
    .refine((v) => parseDuration(v) !== undefined, { message: `${what}: expected a duration such as "30s", "6h", "90d" or "5y"` })
    .transform((v) => parseDuration(v) ?? 0);

const certname = z
  .string()
  .min(1)
  .regex(/^[a-z0-9_][a-z0-9._-]*$/, 'a lower-case certname (letters, digits, ".", "-", "_")');

const dnsName = z.string().regex(/^(\*\.)?[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?$|^[0-9a-fA-F:.]+$/, 'a DNS name or an IP address');

const listener = z.strictObject({
  name: z.string().min(1).default('agents').describe('Name used in logs and metrics.'),
  address: z.string().min(1).default('0.0.0.0').describe('Address to bind; "::" for every IPv4 and IPv6 address.'),
  port: z.number().int().min(0).max(65535).default(8140).describe('TCP port; 0 lets the kernel pick one (logged at start).'),
  requestHeaderTimeout: duration('requestHeaderTimeout').prefault('30s').describe('Time a client has to send its request headers.'),
  keepAliveTimeout: duration('keepAliveTimeout').prefault('30s').describe('Idle time before a kept-alive agent connection is closed; keep it above the agents\' 4 s http_keepalive_timeout.'),
});

const autosign = z.strictObject({
  all: z.boolean().default(false).describe('Sign every request (puppetserver `autosign = true`). Only for labs.'),
  allow: z.array(z.string()).default([]).describe('Certnames and `*.domain` globs signed automatically (autosign.conf semantics).'),
  allowFile: z.string().optional().describe('An autosign.conf-style file of the same entries, re-read when it changes.'),
  executable: z
    .strictObject({
      path: z.string().min(1).describe('Policy program: certname as its argument, the CSR PEM on stdin, exit 0 signs.'),
      timeout: duration('timeout').prefault('10s').describe('The program is killed and the CSR left pending after this long.'),
    })
    .optional()
    .describe('A policy executable, as puppetserver runs one; ringmaster adds a timeout.'),
  tokens: z.boolean().default(true).describe('Sign CSRs whose challengePassword is a valid one-time token (`ringmaster ca token create`).'),
});

const ca = z.strictObject({
  enabled: z.boolean().default(true).describe('Run the built-in certificate authority.'),
  dir: z.string().optional().describe('CA directory in the puppetserver layout. Default: `<stateDir>/ca`.'),
  name: z.string().optional().describe('Subject CN of a new CA. Default: `Puppet CA: <server.certname>`.'),
  keyLength: z.number().int().min(2048).max(16384).default(4096).describe('RSA key size for a new CA and for keys ringmaster generates.'),
  caTtl: duration('caTtl').prefault('15y').describe('Lifetime of a new CA certificate.'),
  certTtl: duration('certTtl').prefault('5y').describe('Lifetime of certificates the CA signs (puppetserver `ca_ttl`); they start a day in the past.'),
  allowSubjectAltNames: z.boolean().default(false).describe('Sign CSRs carrying subject alternative names without `--allow-dns-alt-names`.'),
  allowAuthorizationExtensions: z.boolean().default(false).describe('Accept CSRs requesting pp_authorization / pp_auth_role (pp_cli_auth is never accepted).'),
  allowDuplicateCerts: z.boolean().default(false).describe('Accept a CSR for a name that already has a certificate (puppetserver `allow-duplicate-certs`).'),
  adminCertnames: z.array(certname).default([]).describe('Certnames allowed to use the administrative CA endpoints besides certificates carrying pp_cli_auth.'),
  maxCsrBytes: z.number().int().min(1024).max(1048576).default(65536).describe('Largest CSR body accepted.'),
  autosign: autosign.prefault({}),
  crl: z
    .strictObject({
      ttl: duration('crl.ttl').prefault('5y').describe('nextUpdate of each CRL ringmaster signs. Puppet 7 agents never refresh their CRL, so keep it long.'),
      renewBefore: duration('crl.renewBefore').prefault('90d').describe('Re-sign the CRL when less than this remains before its nextUpdate.'),
      checkInterval: duration('crl.checkInterval').prefault('1h').describe('How often the CRL expiry is checked.'),
    })
    .prefault({}),
  autoRenewal: z
    .strictObject({
      enabled: z.boolean().default(false).describe('Serve POST /puppet-ca/v1/certificate_renewal (Puppet 8.2+ agents renew before expiry).'),
      certTtl: duration('autoRenewal.certTtl').prefault('90d').describe('Lifetime of renewed certificates.'),
    })
    .prefault({}),
  puppetVersion: z.string().regex(/^\d+\.\d+\.\d+$/).default('8.4.0').describe('Version sent in X-Puppet-Version; clients such as `puppetserver ca` use it to choose endpoints (bulk signing needs 8.4.0).'),
});

export const configSchema = z.strictObject({
  stateDir: z.string().optional().describe('Directory holding all state. Default: `./var`, or `--state-dir`.'),
  server: z
    .strictObject({
      certname: certname.optional().describe("ringmaster's own certificate name. Default: the host's name, lower-cased."),
      dnsAltNames: z.array(dnsName).optional().describe("Subject alternative names on ringmaster's server certificate. Default: the host's names plus `puppet`."),
    })
    .prefault({}),
  listeners: z.array(listener).min(1).prefault([{}]).describe('HTTPS listeners agents connect to.'),
  ca: ca.prefault({}),
  log: z
    .strictObject({
      level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).default('info').describe('Log level.'),
      format: z.enum(['json', 'text']).default('json').describe('JSON lines, or text for a terminal.'),
    })
    .prefault({}),
});

export type ConfigInput = z.input<typeof configSchema>;
export type ParsedConfig = z.output<typeof configSchema>;
export type ConfigProblem = { path: string; message: string };

export function validateConfig(input: unknown): { ok: true; config: ParsedConfig } | { ok: false; problems: ConfigProblem[] } {
  const result = configSchema.safeParse(input ?? {});
  if (result.success) return { ok: true, config: result.data };
  return {
    ok: false,
    problems: result.error.issues.map((issue) => ({
      path: issue.path.length === 0 ? '(root)' : issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, ''),
      message: issue.message,
    })),
  };
}

/** The JSON Schema of the file as operators write it, for the reference page. */
export function configJsonSchema(): unknown {
  return z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' });
}

export function defaultHostNames(): string[] {
  const h = hostname().toLowerCase();
  const short = h.split('.')[0] ?? h;
  return [...new Set([h, short])];
}
