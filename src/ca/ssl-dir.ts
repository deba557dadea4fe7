import { readFile } from 'node:fs/promises';
import { createPublicKey } from 'node:crypto';
import { join } from 'node:path';
import { writeFileAtomic, ensureDirectory } from '../lib/atomic-file.ts';

// ringmaster's own certificates, laid out as a Puppet ssldir (certs/, private_keys/, certs/ca.pem,
// crl.pem) so that other Puppet tools (the `puppetserver ca` CLI, curl, openssl) can be pointed
// at them with the settings they already know: hostcert, hostprivkey, localcacert, hostcrl.

export class SslDir {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
  }

  certPath(name: string): string {
    return join(this.dir, 'certs', `${name}.pem`);
  }

  keyPath(name: string): string {
    return join(this.dir, 'private_keys', `${name}.pem`);
  }

  get caPath(): string {
    return join(this.dir, 'certs', 'ca.pem');
  }

  get crlPath(): string {
    return join(this.dir, 'crl.pem');
  }

  async read(name: string): Promise<{ certPem: string; keyPem: string } | undefined> {
    const [certPem, keyPem] = await Promise.all([readIfPresent(this.certPath(name)), readIfPresent(this.keyPath(name))]);
    return certPem === undefined || keyPem === undefined ? undefined : { certPem, keyPem };
  }

  /** A key kept before its certificate exists (a request waiting at an external CA). */
  readKey(name: string): Promise<string | undefined> {
    return readIfPresent(this.keyPath(name));
  }

  async writeKey(name: string, keyPem: string): Promise<void> {
    await ensureDirectory(join(this.dir, 'private_keys'), 0o750);
    await writeFileAtomic(this.keyPath(name), keyPem, { mode: 0o640 });
  }

  async write(name: string, certPem: string, keyPem: string): Promise<void> {
    await ensureDirectory(join(this.dir, 'certs'));
    await ensureDirectory(join(this.dir, 'private_keys'), 0o750);
    // The key first: a certificate on disk always has its key beside it.
    await writeFileAtomic(this.keyPath(name), keyPem, { mode: 0o640 });
    await writeFileAtomic(this.certPath(name), certPem);
  }

  readCrl(): Promise<string | undefined> {
    return readIfPresent(this.crlPath);
  }

  async publishCa(caBundlePem: string, crlPem: string): Promise<void> {
    await ensureDirectory(join(this.dir, 'certs'));
    await writeFileAtomic(this.caPath, caBundlePem);
    await writeFileAtomic(this.crlPath, crlPem);
  }

  publicKeyOf(privateKeyPem: string): string {
    return createPublicKey(privateKeyPem).export({ type: 'spki', format: 'pem' }).toString();
  }
}

/** The file's text, or undefined when it does not exist. */
async function readIfPresent(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
