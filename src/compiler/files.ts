import { posix } from 'node:path';
import { hoconObject, type HoconValue } from './hocon.ts';
import { renderAuthConf } from './auth-conf.ts';
import { renderReadme } from './readme.ts';
import type { CompilerPlan } from './plan.ts';

// The files a Puppet Server (or OpenVox Server) compiler needs to sit behind ringmaster, as data:
// the command writes them, the tests read them, nothing here touches the disk.

export type GeneratedFile = { path: string; content: string; mode: number };

export type CompilerCredentials = {
  certPem: string;
  keyPem: string;
  caBundlePem: string;
  crlPem: string;
  /** ringmaster's own leaf certificate: in TLS mode the only client the compiler accepts. */
  ringmasterCertPem?: string | undefined;
};

/** Paths relative to the output directory (and to --install-dir once copied to the compiler). */
export const sslFiles = {
  cert: (name: string) => `ssl/certs/${name}.pem`,
  key: (name: string) => `ssl/private_keys/${name}.pem`,
  ca: 'ssl/certs/ca.pem',
  crl: 'ssl/crl.pem',
  ringmaster: 'ssl/ringmaster.pem',
} as const;

const header = (plan: CompilerPlan): string =>
  `# Written by \`ringmaster compiler config\` for the compiler ${plan.name}; README.md says where it goes.`;

export function renderWebserverConf(plan: CompilerPlan): string {
  const installed = (rel: string): string => posix.join(plan.installDir, rel);
  const fields: [string, HoconValue, string?][] = plan.tls
    ? [
        ['ssl-host', plan.listen.host, 'TLS for ringmaster only: ssl-ca-cert holds nothing but ringmaster\'s own certificate,\nso no agent certificate (same CA) can connect here and send X-Client-* headers itself.'],
        ['ssl-port', plan.listen.port],
        ['ssl-cert', installed(sslFiles.cert(plan.name))],
        ['ssl-key', installed(sslFiles.key(plan.name))],
        ['ssl-ca-cert', installed(sslFiles.ringmaster)],
        ['client-auth', 'need'],
      ]
    : [
        ['host', plan.listen.host, 'Plain HTTP, no ssl-* settings: ringmaster terminates the agents\' TLS. Anyone who can\nconnect here can claim any node\'s identity, so only ringmaster may reach this port.'],
        ['port', plan.listen.port],
      ];
  return `${header(plan)}\n${hoconObject('webserver', fields)}\n`;
}

export function renderCaCfg(plan: CompilerPlan): string {
  return [
    header(plan),
    '# ringmaster is the certificate authority: this server runs without one.',
    'puppetlabs.services.ca.certificate-authority-disabled-service/certificate-authority-disabled-service',
    'puppetlabs.trapperkeeper.services.watcher.filesystem-watch-service/filesystem-watch-service',
    '',
  ].join('\n');
}

export function renderPuppetConf(plan: CompilerPlan): string {
  return [
    header(plan),
    `# Merge these settings into ${posix.join(plan.confdir, 'puppet.conf')}.`,
    '[main]',
    `certname = ${plan.name}`,
    '# The compiler host\'s own agent talks to ringmaster like every other agent, CA requests included.',
    `server = ${plan.ringmaster}`,
    `ssldir = ${plan.ssldir}`,
    '# No `ca` setting: Puppet 6 and later have none; services.d/ca.cfg switches the CA service off.',
    '',
  ].join('\n');
}

/** The member to add to ringmaster's configuration, as YAML. */
export function poolSnippet(plan: CompilerPlan): string {
  return [
    'pools:',
    '  compilers:',
    '    members:',
    `      - name: ${plan.name}`,
    `        url: ${plan.memberUrl}`,
    '',
  ].join('\n');
}

export function compilerFiles(plan: CompilerPlan, creds: CompilerCredentials): GeneratedFile[] {
  if (plan.tls && !creds.ringmasterCertPem) throw new Error('TLS mode needs ringmaster\'s own certificate');
  const pem = (text: string): string => (text.endsWith('\n') ? text : `${text}\n`);
  const files: GeneratedFile[] = [
    { path: 'conf.d/webserver.conf', content: renderWebserverConf(plan), mode: 0o644 },
    { path: 'conf.d/auth.conf', content: renderAuthConf(), mode: 0o644 },
    { path: 'services.d/ca.cfg', content: renderCaCfg(plan), mode: 0o644 },
    { path: 'puppet.conf', content: renderPuppetConf(plan), mode: 0o644 },
    { path: sslFiles.cert(plan.name), content: pem(creds.certPem), mode: 0o644 },
    { path: sslFiles.key(plan.name), content: pem(creds.keyPem), mode: 0o600 },
    { path: sslFiles.ca, content: pem(creds.caBundlePem), mode: 0o644 },
    { path: sslFiles.crl, content: pem(creds.crlPem), mode: 0o644 },
    ...(plan.tls && creds.ringmasterCertPem ? [{ path: sslFiles.ringmaster, content: pem(creds.ringmasterCertPem), mode: 0o644 }] : []),
  ];
  files.push({ path: 'README.md', content: renderReadme(plan, files.map((f) => f.path), poolSnippet(plan)), mode: 0o644 });
  return files;
}
