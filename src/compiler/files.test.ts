import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isRingmasterError } from '../lib/errors.ts';
import { planCompiler, type CompilerOptions } from './plan.ts';
import { compilerFiles, poolSnippet, renderWebserverConf, type GeneratedFile } from './files.ts';
import { renderAuthConf, defaultAuthRules } from './auth-conf.ts';
import { parseAltNames, parseListen } from './address.ts';

const creds = { certPem: 'CERT', keyPem: 'KEY', caBundlePem: 'CA', crlPem: 'CRL', ringmasterCertPem: 'RINGMASTER' };
const plan = (o: Partial<CompilerOptions> = {}) => planCompiler({ name: 'c1.example.com', ringmaster: 'puppet.example.com', ...o });
const byPath = (files: GeneratedFile[]) => new Map(files.map((f) => [f.path, f]));
const usage = (text: string) => (err: unknown) => isRingmasterError(err, 'RM_CLI_USAGE') && err.message.includes(text);

/** The `key: value` lines of the one `webserver: { … }` object, comments left out. */
function webserverFields(text: string): Map<string, string> {
  const body = /^webserver: \{\n([\s\S]*?)\n\}$/m.exec(text)?.[1];
  assert.ok(body !== undefined, text);
  const fields = new Map<string, string>();
  for (const line of body.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'))) {
    const m = /^([a-z-]+): (.+)$/.exec(line);
    assert.ok(m, `not a HOCON field: ${line}`);
    fields.set(m[1] ?? '', m[2] ?? '');
  }
  return fields;
}

test('plain mode: webserver.conf has host and port only, no ssl-* key', () => {
  const fields = webserverFields(renderWebserverConf(plan()));
  assert.deepEqual([...fields], [['host', '"127.0.0.1"'], ['port', '8141']]);
  const p = plan({ listen: '[::1]:18141' });
  assert.deepEqual([...webserverFields(renderWebserverConf(p))], [['host', '"::1"'], ['port', '18141']]);
  assert.equal(p.memberUrl, 'http://[::1]:18141');
});

test('TLS mode: webserver.conf trusts only ringmaster\'s certificate and requires a client certificate', () => {
  const p = plan({ tls: true, listen: '10.0.0.5:8141', installDir: '/srv/rm' });
  const fields = webserverFields(renderWebserverConf(p));
  assert.deepEqual([...fields.keys()].sort(), ['client-auth', 'ssl-ca-cert', 'ssl-cert', 'ssl-host', 'ssl-key', 'ssl-port']);
  assert.equal(fields.get('ssl-host'), '"10.0.0.5"');
  assert.equal(fields.get('ssl-port'), '8141');
  assert.equal(fields.get('ssl-cert'), '"/srv/rm/ssl/certs/c1.example.com.pem"');
  assert.equal(fields.get('ssl-key'), '"/srv/rm/ssl/private_keys/c1.example.com.pem"');
  assert.equal(fields.get('ssl-ca-cert'), '"/srv/rm/ssl/ringmaster.pem"');
  assert.equal(fields.get('client-auth'), '"need"');
  assert.equal(p.memberUrl, 'https://10.0.0.5:8141');
  // The address ringmaster dials must be in the certificate it verifies.
  assert.deepEqual(p.subjectAltNames, [{ type: 'ip', value: '10.0.0.5' }]);
});

test('TLS mode adds the listen host to the requested alt names once, DNS or IP', () => {
  assert.deepEqual(plan({ tls: true, listen: 'c1.internal:8141', dnsAltNames: 'C1.internal,IP:10.1.1.1' }).subjectAltNames, [
    { type: 'dns', value: 'c1.internal' },
    { type: 'ip', value: '10.1.1.1' },
  ]);
  assert.deepEqual(plan({ listen: '10.0.0.5:8141' }).subjectAltNames, [], 'plain mode adds nothing');
  const wild = plan({ tls: true, listen: '0.0.0.0:8141', dnsAltNames: 'c1.internal' });
  assert.deepEqual(wild.subjectAltNames, [{ type: 'dns', value: 'c1.internal' }]);
  assert.equal(wild.memberUrl, 'https://c1.internal:8141');
  assert.equal(wild.notes.length, 1);
});

test('the files: paths, modes, the ringmaster trust file only in TLS mode', () => {
  const plain = byPath(compilerFiles(plan(), creds));
  assert.deepEqual([...plain.keys()], [
    'conf.d/webserver.conf', 'conf.d/auth.conf', 'services.d/ca.cfg', 'puppet.conf',
    'ssl/certs/c1.example.com.pem', 'ssl/private_keys/c1.example.com.pem', 'ssl/certs/ca.pem', 'ssl/crl.pem', 'README.md',
  ]);
  assert.equal(plain.get('ssl/private_keys/c1.example.com.pem')?.mode, 0o600);
  assert.equal(plain.get('ssl/private_keys/c1.example.com.pem')?.content, 'KEY\n');
  assert.equal(plain.get('ssl/certs/ca.pem')?.content, 'CA\n');
  const tls = byPath(compilerFiles(plan({ tls: true }), creds));
  assert.equal(tls.get('ssl/ringmaster.pem')?.content, 'RINGMASTER\n');
  assert.throws(() => compilerFiles(plan({ tls: true }), { ...creds, ringmasterCertPem: undefined }));
  const readme = tls.get('README.md')?.content ?? '';
  for (const path of tls.keys()) assert.ok(readme.includes(`\`${path}\``), `README.md documents ${path}`);
});

test('services.d/ca.cfg disables the CA and keeps the filesystem watcher', () => {
  const cfg = byPath(compilerFiles(plan(), creds)).get('services.d/ca.cfg')?.content ?? '';
  const services = cfg.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
  assert.deepEqual(services, [
    'puppetlabs.services.ca.certificate-authority-disabled-service/certificate-authority-disabled-service',
    'puppetlabs.trapperkeeper.services.watcher.filesystem-watch-service/filesystem-watch-service',
  ]);
});

test('puppet.conf: certname, server and ssldir in [main]', () => {
  const conf = byPath(compilerFiles(plan({ ssldir: '/var/lib/puppet/ssl' }), creds)).get('puppet.conf')?.content ?? '';
  const settings = conf.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
  assert.deepEqual(settings, ['[main]', 'certname = c1.example.com', 'server = puppet.example.com', 'ssldir = /var/lib/puppet/ssl']);
});

test('auth.conf: the default rules with allow-header-cert-info true inside authorization', () => {
  const text = renderAuthConf();
  const lines = text.split('\n');
  const open = lines.indexOf('authorization: {');
  const flag = lines.indexOf('    allow-header-cert-info: true');
  assert.ok(open >= 0 && flag > open, 'the flag sits inside the authorization object');
  assert.equal(lines.filter((l) => !l.trim().startsWith('#') && l.includes('allow-header-cert-info')).length, 1);
  assert.equal((text.match(/match-request: \{/g) ?? []).length, defaultAuthRules.length);
  assert.equal((text.match(/\{/g) ?? []).length, (text.match(/\}/g) ?? []).length, 'braces balance');
  assert.match(text, /path: "\^\/puppet\/v3\/catalog\/\(\[\^\/\]\+\)\$"\n\s+type: regex\n\s+method: \[get, post\]\n\s+\}\n\s+allow: "\$1"/);
  assert.match(text, /allow: \{\n\s+extensions: \{\n\s+pp_cli_auth: "true"\n\s+\}\n\s+\}/);
  assert.match(text, /path: "\/"\n\s+type: path\n\s+\}\n\s+deny: "\*"\n\s+sort-order: 999/);
});

test('the pool member snippet', () => {
  assert.equal(poolSnippet(plan({ tls: true, listen: '10.0.0.5:9000' })), [
    'pools:', '  compilers:', '    members:', '      - name: c1.example.com', '        url: https://10.0.0.5:9000', '',
  ].join('\n'));
});

test('refuses bad names, listen addresses, alt names and relative paths, all at once', () => {
  assert.throws(() => plan({ name: 'C1' }), usage('lower case'));
  assert.throws(() => plan({ name: 'bad name' }), usage('whitespace'));
  assert.throws(() => plan({ name: '' }), usage('empty'));
  assert.throws(() => plan({ name: 'ca' }), usage('reserved'));
  assert.throws(() => plan({ name: 'puppet.example.com' }), usage("ringmaster's own certname"));
  for (const listen of ['8141', 'host', '127.0.0.1:0', '127.0.0.1:65536', '::1:8141', '[host]:8141', 'a b:8141', '127.0.0.1:80x']) {
    assert.throws(() => plan({ listen }), usage('--listen'), listen);
  }
  assert.throws(() => plan({ dnsAltNames: 'ok.example,IP:nope' }), usage('--dns-alt-names'));
  assert.throws(() => plan({ installDir: 'relative/dir' }), usage('--install-dir'));
  assert.throws(() => plan({ name: 'X', listen: 'nope', confdir: 'etc' }), usage('3 problems'));
});

test('address parsing', () => {
  assert.deepEqual(parseListen('Compiler1.Example:8141'), { host: 'compiler1.example', port: 8141, kind: 'dns', wildcard: false });
  assert.deepEqual(parseListen('[::]:8141'), { host: '::', port: 8141, kind: 'ipv6', wildcard: true });
  assert.deepEqual(parseAltNames(' a.example , DNS:b , IP:::1,10.0.0.1 ,'), {
    names: [{ type: 'dns', value: 'a.example' }, { type: 'dns', value: 'b' }, { type: 'ip', value: '::1' }, { type: 'ip', value: '10.0.0.1' }],
    problems: [],
  });
  assert.equal(parseAltNames('IP:host.example').problems.length, 1);
});
