import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { systemClock } from '../../lib/clock.ts';
import { RingmasterError, errorMessage } from '../../lib/errors.ts';
import { CertificateAuthority } from '../../ca/authority.ts';
import { generateKeyPair } from '../../ca/x509.ts';
import { caConfigOf } from '../../app.ts';
import { compilerDefaults, planCompiler, type CompilerPlan } from '../../compiler/plan.ts';
import { compilerFiles, poolSnippet } from '../../compiler/files.ts';
import { checkOutputDir, writeOutputDir } from '../../compiler/output-dir.ts';
import type { Config } from '../../config/load.ts';
import { addStateOptions, configFrom, cliLog, type GlobalOptions } from '../common.ts';

// `ringmaster compiler …`: what a Puppet Server / OpenVox Server needs to work behind ringmaster.

type ConfigOpts = GlobalOptions & {
  out: string;
  listen?: string;
  tls?: boolean;
  ringmaster?: string;
  confdir?: string;
  ssldir?: string;
  installDir?: string;
  dnsAltNames?: string;
  force?: boolean;
};

/** ringmaster's own leaf certificate, issued now if `serve` has never run (serve would issue the same). */
async function ringmasterLeaf(authority: CertificateAuthority, config: Config): Promise<{ pem: string; issued: boolean }> {
  const path = authority.ssl.certPath(config.server.certname);
  try {
    return { pem: await readFile(path, 'utf8'), issued: false };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const { certPem } = await authority.ensureServerCert(config.server.certname, config.server.dnsAltNames);
  return { pem: certPem, issued: true };
}

function summary(plan: CompilerPlan, out: string, paths: string[], serial: bigint, notes: string[]): string {
  const sans = plan.subjectAltNames.length > 0 ? `, alt names ${plan.subjectAltNames.map((s) => `${s.type.toUpperCase()}:${s.value}`).join(', ')}` : '';
  return [
    `Wrote the configuration of compiler ${plan.name} (${plan.tls ? 'mutual TLS' : 'plain HTTP'} on ${plan.listen.host}:${plan.listen.port}) to ${out}:`,
    ...paths.map((p) => `  ${p}`),
    `Certificate for ${plan.name}: serial ${serial}${sans}. README.md says where each file goes on the compiler.`,
    ...notes.map((n) => `Note: ${n}`),
    '',
    "Add the compiler to ringmaster's configuration:",
    '',
    poolSnippet(plan),
  ].join('\n');
}

export function registerCompiler(program: Command): void {
  const compiler = program.command('compiler').description('set up Puppet Server and OpenVox Server compilers behind ringmaster');

  addStateOptions(compiler.command('config <name>'))
    .description("write a compiler's configuration and certificate (issued by ringmaster's CA) into a directory")
    .requiredOption('--out <dir>', 'directory to write; must not exist or be empty (see --force)')
    .option('--listen <host:port>', 'where the compiler listens for ringmaster', compilerDefaults.listen)
    .option('--tls', "mutual TLS between ringmaster and the compiler, which accepts only ringmaster's certificate")
    .option('--ringmaster <name>', "the server the compiler's own agent uses (default: ringmaster's certname)")
    .option('--confdir <dir>', "the compiler's Puppet confdir", compilerDefaults.confdir)
    .option('--ssldir <dir>', "the compiler's Puppet ssldir", compilerDefaults.ssldir)
    .option('--install-dir <dir>', 'where the directory will be copied on the compiler (webserver.conf points there)', compilerDefaults.installDir)
    .option('--dns-alt-names <names>', "comma-separated extra names for the compiler's certificate (IP:… for addresses)")
    .option('--force', 'replace a non-empty --out directory')
    .action(async (name: string, opts: ConfigOpts) => {
      const config = await configFrom(opts);
      const plan = planCompiler({
        name,
        ringmaster: opts.ringmaster ?? config.server.certname,
        listen: opts.listen,
        tls: opts.tls,
        confdir: opts.confdir,
        ssldir: opts.ssldir,
        installDir: opts.installDir,
        dnsAltNames: opts.dnsAltNames,
      });
      const out = resolve(opts.out);
      const force = opts.force === true;
      await checkOutputDir(out, force);

      const authority = await CertificateAuthority.open(caConfigOf(config), { clock: systemClock, log: cliLog(config) });
      if ((await authority.store.getSigned(name)) !== undefined) {
        // The key of that certificate never left the compiler it was made for (or is lost): a
        // configuration without it is useless, and a second certificate would leave the first valid.
        throw new RingmasterError('RM_CA_CSR_DUPLICATE', `${name} already has a certificate, whose private key ringmaster does not hold; run \`ringmaster ca clean ${name}\` (it revokes that certificate) and then this command again`);
      }
      const notes = [...plan.notes];
      let ringmasterCertPem: string | undefined;
      if (plan.tls) {
        const leaf = await ringmasterLeaf(authority, config);
        ringmasterCertPem = leaf.pem;
        if (leaf.issued) notes.push(`issued ringmaster's own certificate (${config.server.certname}), which \`ringmaster serve\` will use`);
      }

      const keyPair = await generateKeyPair({ type: 'rsa', bits: authority.config.keyLength });
      const cert = await authority.issueForKey({ certname: name, publicKeyPem: keyPair.publicKeyPem, subjectAltNames: plan.subjectAltNames, cliAuth: false, replace: false });
      const files = compilerFiles(plan, { certPem: cert.pem, keyPem: keyPair.privateKeyPem, caBundlePem: authority.caBundlePem, crlPem: authority.crlPem, ringmasterCertPem });
      try {
        await writeOutputDir(out, files, { force });
      } catch (err) {
        // The only copy of the key is gone with the temporary directory: take the certificate back.
        const undone = await authority.clean([name]).then(() => true, () => false);
        const after = undone ? `the certificate for ${name} was revoked and removed again` : `run \`ringmaster ca clean ${name}\` before trying again`;
        throw new RingmasterError(err instanceof RingmasterError ? err.code : 'RM_INTERNAL', `could not write ${out}: ${errorMessage(err)}; ${after}`, { cause: err });
      }
      process.stdout.write(summary(plan, out, files.map((f) => f.path), cert.serial, notes));
    });
}
