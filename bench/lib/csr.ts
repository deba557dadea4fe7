// Certificate requests made ahead of a run, so key generation never counts as CA work.
import { availableParallelism } from 'node:os';
import { createCsr, generateKeyPair } from '../../src/ca/x509.ts';

export type PreparedCsr = { name: string; pem: string };

/**
 * One fresh RSA key and CSR per name, `bits` long. Key generation runs on libuv's thread pool,
 * so a few requests in flight per core keep every core busy without queuing thousands of jobs.
 */
export async function prepareCsrs(
  names: readonly string[],
  { bits = 2048, distinctKeys, challengePassword }: { bits?: number; distinctKeys?: number; challengePassword?: string } = {},
): Promise<PreparedCsr[]> {
  const out: PreparedCsr[] = new Array<PreparedCsr>(names.length);
  // Tests that only need many requests, not many keys, reuse a few keys round-robin.
  const shared = distinctKeys ? await Promise.all(Array.from({ length: distinctKeys }, () => generateKeyPair({ type: 'rsa', bits }))) : [];
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < names.length; i = next++) {
      const name = names[i]!;
      const keyPair = shared[i % Math.max(1, shared.length)] ?? (await generateKeyPair({ type: 'rsa', bits }));
      out[i] = { name, pem: await createCsr({ commonName: name, keyPair, challengePassword }) };
    }
  };
  const workers = Math.max(2, availableParallelism() * 2);
  await Promise.all(Array.from({ length: Math.min(workers, names.length) }, worker));
  return out;
}
