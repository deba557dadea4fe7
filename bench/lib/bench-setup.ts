// What the gateway and footprint benchmarks set up alike: ringmaster serving a `compilers` pool of
// the scripted backend, agent identities from its CA, and its TLS material as files and PEM text
// for the other front doors, so every door presents the same certificate and trusts the same CA.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { RingmasterOptions } from '../../test/helpers/ringmaster.ts';
import { startRingmaster, type Ringmaster } from '../../test/helpers/ringmaster.ts';
import type { TlsFiles } from './gateway-doors.ts';
import type { Identity } from './gateway-load.ts';

export type BenchRingmaster = {
  ringmaster: Ringmaster;
  identities: Identity[];
  ca: string;
  crl: string;
  serverChain: string;
  serverKey: string;
  tlsFiles: TlsFiles;
};

export async function startBenchRingmaster(tmp: string, backendHttpPort: number, o: { agents?: number; listeners?: RingmasterOptions['listeners']; config?: Record<string, unknown>; cpus?: string } = {}): Promise<BenchRingmaster> {
  const ringmaster = await startRingmaster({
    ...(o.listeners ? { listeners: o.listeners } : {}),
    ...(o.cpus !== undefined ? { cpus: o.cpus } : {}),
    prepare: async ({ configFile }) => {
      const config = JSON.parse(await readFile(configFile, 'utf8')) as Record<string, unknown>;
      config.pools = { compilers: { members: [{ name: 'b1', url: `http://127.0.0.1:${backendHttpPort}` }], healthCheck: { active: { enabled: false } } } };
      Object.assign(config, o.config);
      await writeFile(configFile, `${JSON.stringify(config, null, 2)}\n`);
    },
  });
  const names = Array.from({ length: o.agents ?? 4 }, (_, i) => `agent-${i}.bench.test`);
  for (const name of names) {
    const r = await ringmaster.cli(['ca', 'generate', name]);
    if (r.code !== 0) throw new Error(`ringmaster ca generate ${name} exited ${r.code}: ${r.stderr}`);
  }
  const ssl = ringmaster.paths.sslDir;
  const pem = (...p: string[]): Promise<string> => readFile(join(ssl, ...p), 'utf8');
  const identities: Identity[] = await Promise.all(names.map(async (n) => ({ cert: await pem('certs', `${n}.pem`), key: await pem('private_keys', `${n}.pem`) })));
  const ca = await readFile(ringmaster.paths.caCert, 'utf8');
  const crl = await readFile(ringmaster.paths.caCrl, 'utf8');
  const serverChain = `${(await pem('certs', 'ringmaster.test.pem')).trim()}\n${ca}`;
  const serverKey = await pem('private_keys', 'ringmaster.test.pem');
  const tlsFiles: TlsFiles = { serverChain: join(tmp, 'server-chain.pem'), serverKey: join(tmp, 'server-key.pem'), ca: join(tmp, 'ca.pem'), crl: join(tmp, 'crl.pem') };
  await Promise.all([writeFile(tlsFiles.serverChain, serverChain), writeFile(tlsFiles.serverKey, serverKey, { mode: 0o600 }), writeFile(tlsFiles.ca, ca), writeFile(tlsFiles.crl, crl)]);
  return { ringmaster, identities, ca, crl, serverChain, serverKey, tlsFiles };
}
