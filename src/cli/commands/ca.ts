import type { Command } from 'commander';
import { rm } from 'node:fs/promises';
import { systemClock } from '../../lib/clock.ts';
import { parseDuration } from '../../lib/duration.ts';
import { RingmasterError } from '../../lib/errors.ts';
import { CertificateAuthority } from '../../ca/authority.ts';
import { importCaDirectory } from '../../ca/store-import.ts';
import { TokenStore } from '../../ca/autosign/tokens.ts';
import { generateKeyPair, type SubjectAltName } from '../../ca/x509.ts';
import type { CertStatus } from '../../ca/status.ts';
import { caConfigOf } from '../../app.ts';
import { join } from 'node:path';
import { addStateOptions, configFrom, cliLog, exitCodes, type GlobalOptions } from '../common.ts';

// `ringmaster ca …`, in the spirit of `puppetserver ca`. It works on the CA directory directly,
// under the same cross-process lock as a running server, so it needs no server and no network.

type Opts = GlobalOptions & Record<string, unknown>;

async function openCa(opts: GlobalOptions): Promise<CertificateAuthority> {
  const config = await configFrom(opts);
  return CertificateAuthority.open(caConfigOf(config), { clock: systemClock, log: cliLog(config) });
}

function ttlOption(value: unknown): number | undefined {
  if (typeof value !== 'string') return undefined;
  const ms = parseDuration(value);
  if (ms === undefined || ms <= 0) throw new RingmasterError('RM_CLI_USAGE', `--ttl: "${value}" is not a duration such as 90d or 5y`);
  return ms;
}

function line(s: CertStatus): string {
  const alt = s.subject_alt_names.length > 0 ? `\talt names: ${JSON.stringify(s.subject_alt_names)}` : '';
  const auth = Object.keys(s.authorization_extensions).length > 0 ? `\tauthorization extensions: ${JSON.stringify(s.authorization_extensions)}` : '';
  const exp = s.not_after ? `\texpires ${s.not_after}` : '';
  return `    ${s.name}\t(SHA256) ${s.fingerprint}${alt}${auth}${exp}`;
}

export function registerCa(program: Command): void {
  const ca = program.command('ca').description('manage the certificate authority');

  addStateOptions(ca.command('setup'))
    .description('create a new CA in the state directory')
    .action(async (opts: Opts) => {
      const config = await configFrom(opts);
      const authority = await CertificateAuthority.create(caConfigOf(config), { clock: systemClock, log: cliLog(config) });
      process.stdout.write(`Generated a new CA in ${authority.config.dir}: ${authority.signingCert.subjectDn} (SHA256 ${authority.signingCert.fingerprints.SHA256})\n`);
    });

  addStateOptions(ca.command('import <dir>'))
    .description('adopt a CA directory made by `puppetserver ca setup` or a puppetserver CA')
    .action(async (dir: string, opts: Opts) => {
      const config = await configFrom(opts);
      const result = await importCaDirectory(dir, config.ca.dir);
      try {
        const authority = await CertificateAuthority.open(caConfigOf(config), { clock: systemClock, log: cliLog(config) });
        const next = await authority.store.readNextSerial();
        process.stdout.write(`Imported ${dir} into ${config.ca.dir}: ${result.signed} signed certificates, ${result.requests} requests; CA ${authority.signingCert.subjectDn}; next serial ${next}\n`);
      } catch (err) {
        // The copy was complete but the CA is unusable: take it away again rather than leave it half-adopted.
        await rm(config.ca.dir, { recursive: true, force: true });
        throw err;
      }
    });

  addStateOptions(ca.command('list'))
    .description('list pending requests (with --all: every certificate)')
    .option('-a, --all', 'list signed and revoked certificates too')
    .option('--json', 'print certificate_status JSON')
    .action(async (opts: Opts) => {
      const authority = await openCa(opts);
      const all = await authority.list();
      const shown = opts.all ? all : all.filter((s) => s.state === 'requested');
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(shown, null, 2)}\n`);
        return;
      }
      const groups: [string, CertStatus['state']][] = [['Requested Certificates', 'requested'], ['Signed Certificates', 'signed'], ['Revoked Certificates', 'revoked']];
      const out: string[] = [];
      for (const [title, state] of groups) {
        const rows = shown.filter((s) => s.state === state);
        if (rows.length > 0) out.push(`${title}:`, ...rows.map(line));
      }
      process.stdout.write(out.length > 0 ? `${out.join('\n')}\n` : opts.all ? 'No certificates to list\n' : 'No certificates to list (pending requests only; --all for every certificate)\n');
    });

  addStateOptions(ca.command('sign [names...]'))
    .description('sign pending certificate requests')
    .option('--all', 'sign every pending request')
    .option('--allow-dns-alt-names', 'sign requests that carry subject alternative names')
    .option('--ttl <duration>', 'lifetime of the certificates (default ca.certTtl)')
    .action(async (names: string[], opts: Opts) => {
      const authority = await openCa(opts);
      const targets = opts.all ? await authority.pendingNames() : names;
      if (!opts.all && targets.length === 0) throw new RingmasterError('RM_CLI_USAGE', 'name at least one certname, or use --all');
      if (targets.length === 0) {
        process.stdout.write('No certificate requests to sign\n');
        return;
      }
      const ttlMs = ttlOption(opts.ttl);
      const outcomes = await authority.sign(targets, { allowDnsAltNames: opts.allowDnsAltNames === true, ...(ttlMs ? { ttlMs } : {}) });
      for (const o of outcomes) {
        if (o.ok) process.stdout.write(`Successfully signed certificate request for ${o.name} (serial ${o.cert.serial})\n`);
        else process.stderr.write(`Error: could not sign ${o.name}: ${o.error.code}: ${o.error.message}\n`);
      }
      if (outcomes.some((o) => !o.ok)) process.exitCode = exitCodes.failed;
    });

  addStateOptions(ca.command('revoke <names...>'))
    .description('revoke certificates; the running listener enforces it at once')
    .action(async (names: string[], opts: Opts) => {
      const authority = await openCa(opts);
      const { revoked, missing } = await authority.revoke(names);
      for (const n of revoked) process.stdout.write(`Certificate for ${n} has been revoked\n`);
      for (const n of missing) process.stderr.write(`Error: no signed certificate for ${n}\n`);
      if (missing.length > 0) process.exitCode = exitCodes.failed;
    });

  addStateOptions(ca.command('clean <names...>'))
    .description('revoke, then delete certificates and requests')
    .action(async (names: string[], opts: Opts) => {
      const authority = await openCa(opts);
      const { cleaned, missing } = await authority.clean(names);
      for (const n of cleaned) process.stdout.write(`Cleaned files related to ${n}\n`);
      for (const n of missing) process.stderr.write(`Error: no certificate or request for ${n}\n`);
      if (missing.length > 0) process.exitCode = exitCodes.failed;
    });

  addStateOptions(ca.command('generate <name>'))
    .description("generate a key and certificate, written to the state directory's ssl/ (puppet ssldir style)")
    .option('--dns-alt-names <names>', 'comma-separated subject alternative names')
    .option('--cli-auth', 'add pp_cli_auth: the certificate may use the administrative CA API')
    .option('--ttl <duration>', 'lifetime of the certificate (default ca.certTtl)')
    .action(async (name: string, opts: Opts) => {
      const authority = await openCa(opts);
      const sans: SubjectAltName[] = (typeof opts.dnsAltNames === 'string' ? opts.dnsAltNames : '')
        .split(',').map((s) => s.trim()).filter((s) => s !== '')
        .map((v) => ({ type: /^[0-9.]+$|:/.test(v) ? 'ip' : 'dns', value: v.replace(/^(DNS|IP):/i, '') }));
      if ((await authority.store.getSigned(name)) !== undefined) {
        throw new RingmasterError('RM_CA_CSR_DUPLICATE', `${name} already has a certificate; clean it first`);
      }
      const keyPair = await generateKeyPair({ type: 'rsa', bits: authority.config.keyLength });
      const ttlMs = ttlOption(opts.ttl);
      const cert = await authority.issueForKey({ certname: name, publicKeyPem: keyPair.publicKeyPem, subjectAltNames: sans, cliAuth: opts.cliAuth === true, replace: false, ...(ttlMs ? { ttlMs } : {}) });
      await authority.ssl.write(name, cert.pem, keyPair.privateKeyPem);
      process.stdout.write(`Generated ${name} (serial ${cert.serial}${opts.cliAuth ? ', pp_cli_auth' : ''})\n  certificate: ${authority.ssl.certPath(name)}\n  private key: ${authority.ssl.keyPath(name)}\n  CA bundle:   ${authority.ssl.caPath}\n  CRL:         ${authority.ssl.crlPath}\n`);
    });

  const token = ca.command('token').description('one-time autosign tokens, carried in the CSR challengePassword');
  addStateOptions(token.command('create <name>'))
    .description('create a token that autosigns one request for NAME (or a *.domain glob)')
    .option('--ttl <duration>', 'how long the token stays valid', '6h')
    .action(async (name: string, opts: Opts) => {
      const config = await configFrom(opts);
      const ttlMs = ttlOption(opts.ttl) ?? 6 * 3600_000;
      const store = new TokenStore(join(config.stateDir, 'autosign-tokens.json'), { clock: systemClock });
      const created = await store.create(name, ttlMs);
      process.stderr.write(`Token for ${name}, valid until ${created.expiresAt.toISOString()}, usable once. Put it in csr_attributes.yaml:\n  custom_attributes:\n    1.2.840.113549.1.9.7: "<token>"\n`);
      process.stdout.write(`${created.token}\n`);
    });
}
