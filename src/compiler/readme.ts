import { posix } from 'node:path';
import type { CompilerPlan } from './plan.ts';

// README.md of a generated compiler directory: the operator copies the directory to a compiler
// host, possibly days later, and needs to know there where each file goes and why.

const serverConfD = '`/etc/puppetlabs/puppetserver/conf.d/` (Debian packages: `/etc/puppet/puppetserver/conf.d/`)';
const serverServicesD = '`/etc/puppetlabs/puppetserver/services.d/` (Debian packages: `/etc/puppet/puppetserver/services.d/`)';

function describe(plan: CompilerPlan, path: string): [string, string] {
  const inSsldir = (rel: string): string => `\`${posix.join(plan.ssldir, rel)}\``;
  const underInstall = `\`${posix.join(plan.installDir, path)}\``;
  if (path === 'conf.d/webserver.conf') {
    return [
      plan.tls
        ? `Jetty: HTTPS on ${plan.listen.host}:${plan.listen.port}, client certificate required, only ringmaster's certificate trusted`
        : `Jetty: plain HTTP on ${plan.listen.host}:${plan.listen.port}, no HTTPS listener`,
      `${serverConfD}, replacing the packaged file (add back \`access-log-config\` if you use it)`,
    ];
  }
  if (path === 'conf.d/auth.conf') return ['the default rules plus `allow-header-cert-info: true`', `${serverConfD}, replacing the packaged file (merge your own rules in)`];
  if (path === 'services.d/ca.cfg') return ['the CA service switched off: ringmaster is the CA', `${serverServicesD}, replacing the packaged file`];
  if (path === 'puppet.conf') return ['`certname`, `server` (ringmaster) and `ssldir`', `merge into \`${posix.join(plan.confdir, 'puppet.conf')}\``];
  if (path === `ssl/certs/${plan.name}.pem`) return [`the compiler's certificate, issued by ringmaster's CA${plan.tls ? '; Jetty presents it to ringmaster' : ''}`, `${underInstall} and ${inSsldir(`certs/${plan.name}.pem`)}`];
  if (path === `ssl/private_keys/${plan.name}.pem`) return ['its private key (mode 0600; owner: the user puppetserver runs as)', `${underInstall} and ${inSsldir(`private_keys/${plan.name}.pem`)}`];
  if (path === 'ssl/certs/ca.pem') return ["ringmaster's CA certificate(s)", `${underInstall} and ${inSsldir('certs/ca.pem')}`];
  if (path === 'ssl/crl.pem') return ["ringmaster's CRL (the compiler's own agent refreshes it)", `${underInstall} and ${inSsldir('crl.pem')}`];
  if (path === 'ssl/ringmaster.pem') return ["ringmaster's own certificate, the only client certificate Jetty accepts (`ssl-ca-cert`)", underInstall];
  return ['this file', underInstall];
}

export function renderReadme(plan: CompilerPlan, paths: string[], snippet: string): string {
  const rows = [...paths, 'README.md'].map((p) => {
    const [what, where] = describe(plan, p);
    return `| \`${p}\` | ${what} | ${where} |`;
  });
  const mode = plan.tls ? 'HTTPS with mutual TLS' : 'plain HTTP';
  const reach = plan.tls
    ? [
        'The compiler accepts TLS connections only from a client presenting ringmaster\'s own certificate:',
        '`ssl-ca-cert` holds that one certificate, not the CA. Agents have certificates from the same CA;',
        'trusting the CA would let any agent connect here directly and send X-Client-* headers of its own.',
        'When ringmaster\'s certificate is renewed or re-issued, copy the new one (`ssl/certs/<certname>.pem`',
        'in ringmaster\'s state directory) over `ssl/ringmaster.pem` and restart the compiler, or it will refuse',
        'ringmaster.',
      ]
    : [
        `The compiler listens on ${plan.listen.host}:${plan.listen.port} without TLS and believes the X-Client-* headers of`,
        'every request. Whoever can connect to that port can claim to be any node: fetch any node\'s catalog',
        '(with its secrets), submit reports, read files. Only ringmaster may reach it: listen on loopback when',
        'ringmaster runs on the same host, otherwise on a private address with a firewall rule that admits',
        'ringmaster\'s address alone, or generate the directory again with `--tls`.',
      ];
  return [
    `# Compiler ${plan.name} behind ringmaster`,
    '',
    `Written by \`ringmaster compiler config ${plan.name}\`. The compiler serves ringmaster over ${mode} on`,
    `${plan.listen.host}:${plan.listen.port}; ringmaster reaches it at ${plan.memberUrl}. Its own agent uses \`server = ${plan.ringmaster}\`.`,
    '',
    '## Files and where they go on the compiler',
    '',
    `Copy this directory to \`${plan.installDir}\` on the compiler (the paths in \`conf.d/webserver.conf\``,
    'point there), owned by the user puppetserver runs as, then put each file in its place:',
    '',
    '| file | what it is | install as |',
    '| --- | --- | --- |',
    ...rows,
    '',
    'Then restart the server (`systemctl restart puppetserver`, or `puppetserver foreground` to watch it start)',
    'and check that `/status/v1/simple` answers `running`. OpenVox Server reads the same files under the same',
    'names.',
    '',
    '## Add it to ringmaster',
    '',
    '```yaml',
    snippet.trimEnd(),
    '```',
    '',
    '## Keep the port reachable only from ringmaster',
    '',
    ...reach,
    '',
    'ringmaster removes X-Client-* headers sent by agents, sets them from the certificate it verified,',
    'and checks revocation itself: the compiler never checks the CRL for a header certificate.',
    '',
  ].join('\n');
}
