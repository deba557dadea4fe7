import { isIP } from 'node:net';
import { posix } from 'node:path';
import { RingmasterError, errorMessage } from '../lib/errors.ts';
import { validateCertname } from '../ca/csr-policy.ts';
import type { SubjectAltName } from '../ca/x509.ts';
import { altNameOf, isHostName, mergeAltNames, parseAltNames, parseListen, urlHost, type ListenAddress } from './address.ts';

// What `ringmaster compiler config` will write, decided from the options alone, before any
// certificate is issued: a bad option must not cost a certificate that then needs cleaning.

export const compilerDefaults = {
  listen: '127.0.0.1:8141',
  confdir: '/etc/puppetlabs/puppet',
  ssldir: '/etc/puppetlabs/puppet/ssl',
  installDir: '/etc/puppetlabs/puppetserver/ringmaster',
} as const;

export type CompilerOptions = {
  name: string;
  /** The `server` the compiler's own agent uses: ringmaster's name. */
  ringmaster: string;
  listen?: string | undefined;
  tls?: boolean | undefined;
  confdir?: string | undefined;
  ssldir?: string | undefined;
  installDir?: string | undefined;
  dnsAltNames?: string | undefined;
};

export type CompilerPlan = {
  name: string;
  ringmaster: string;
  listen: ListenAddress;
  tls: boolean;
  confdir: string;
  ssldir: string;
  installDir: string;
  /** Beyond the certname, which every certificate carries. */
  subjectAltNames: SubjectAltName[];
  /** The URL ringmaster's pool member uses to reach the compiler. */
  memberUrl: string;
  /** Things the operator should know about the choices made. */
  notes: string[];
};

function absolutePath(option: string, value: string, problems: string[]): string {
  if (!posix.isAbsolute(value)) problems.push(`${option}: ${JSON.stringify(value)} must be an absolute path on the compiler`);
  return posix.normalize(value);
}

/** Validates every option at once; RM_CLI_USAGE lists all the problems found. */
export function planCompiler(o: CompilerOptions): CompilerPlan {
  const problems: string[] = [];
  try {
    validateCertname(o.name);
  } catch (err) {
    problems.push(`NAME: ${errorMessage(err)}`);
  }
  // ssl/certs/ca.pem is the CA bundle in every Puppet ssldir; a certname "ca" would overwrite it.
  if (o.name === 'ca') problems.push('NAME: "ca" is reserved for the CA certificate in a Puppet ssldir');
  if (o.name === o.ringmaster) problems.push(`NAME: ${JSON.stringify(o.name)} is ringmaster's own certname; give the compiler a name of its own`);
  if (!isHostName(o.ringmaster) && isIP(o.ringmaster) === 0) problems.push(`--ringmaster: ${JSON.stringify(o.ringmaster)} is neither a host name nor an IP address`);

  const listenOrProblem = parseListen(o.listen ?? compilerDefaults.listen);
  if (typeof listenOrProblem === 'string') problems.push(`--listen: ${listenOrProblem}`);
  const alt = parseAltNames(o.dnsAltNames ?? '');
  problems.push(...alt.problems.map((p) => `--dns-alt-names: ${p}`));
  const confdir = absolutePath('--confdir', o.confdir ?? compilerDefaults.confdir, problems);
  const ssldir = absolutePath('--ssldir', o.ssldir ?? compilerDefaults.ssldir, problems);
  const installDir = absolutePath('--install-dir', o.installDir ?? compilerDefaults.installDir, problems);
  if (problems.length > 0 || typeof listenOrProblem === 'string') {
    throw new RingmasterError('RM_CLI_USAGE', problems.length === 1 ? (problems[0] ?? '') : `${problems.length} problems:\n  ${problems.join('\n  ')}`);
  }

  const listen = listenOrProblem;
  const tls = o.tls === true;
  const notes: string[] = [];
  let subjectAltNames = alt.names;
  // ringmaster checks an https:// member's certificate against the host it dials.
  if (tls && !listen.wildcard) subjectAltNames = mergeAltNames(subjectAltNames, [altNameOf(listen.host)]);
  let dialHost = listen.host;
  if (listen.wildcard) {
    dialHost = alt.names[0]?.value ?? o.name;
    notes.push(`the compiler listens on every interface (${listen.host}); the pool member URL uses ${dialHost}, change it if ringmaster reaches the compiler by another name, and firewall the port (see README.md)`);
  }
  if (!tls && !listen.wildcard && !isLoopback(listen.host)) {
    notes.push(`plain HTTP on ${listen.host}: allow only ringmaster's address to port ${listen.port} (see README.md)`);
  }
  return {
    name: o.name,
    ringmaster: o.ringmaster,
    listen,
    tls,
    confdir,
    ssldir,
    installDir,
    subjectAltNames,
    memberUrl: `${tls ? 'https' : 'http'}://${urlHost(dialHost)}:${listen.port}`,
    notes,
  };
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}
