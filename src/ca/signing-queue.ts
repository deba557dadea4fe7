import { RingmasterError } from '../lib/errors.ts';
import type { Clock } from '../lib/clock.ts';
import type { Log } from '../observability/log.ts';
import type { CaStore, InventoryEntry } from './store.ts';
import { issueCertificate, parseCert, type ParsedCert, type Signer, type SubjectAltName, type CertExtension } from './x509.ts';

// Signing is batched: every request that arrives while a batch is being written joins the next
// one, so the lock, the serial bump, the inventory append and the fsyncs are paid once per batch
// instead of once per certificate. Within a batch the order of writes is what keeps the CA valid
// after a crash at any instant: serial counter, then inventory, then certificate files.

const DAY = 86_400_000;

export type SignRequest = {
  certname: string;
  publicKeySpki: Uint8Array;
  subjectAltNames: SubjectAltName[];
  extensions: CertExtension[];
  ttlMs: number;
  cliAuth: boolean;
  /** Replace an existing certificate of the same name (ringmaster's own, renewals). */
  replace: boolean;
  /** Delete the pending request once signed. */
  fromRequest: boolean;
};

type SignJob = SignRequest & { resolve: (cert: ParsedCert) => void; reject: (err: unknown) => void };

export type SigningQueueDeps = { store: CaStore; signer: () => Signer; clock: Clock; log: Log; allowDuplicateCerts: boolean };

export class SigningQueue {
  #store: CaStore;
  #signer: () => Signer;
  #clock: Clock;
  #log: Log;
  #allowDuplicateCerts: boolean;
  #queue: SignJob[] = [];
  #batching = false;
  #signed = 0;

  constructor(deps: SigningQueueDeps) {
    this.#store = deps.store;
    this.#signer = deps.signer;
    this.#clock = deps.clock;
    this.#log = deps.log;
    this.#allowDuplicateCerts = deps.allowDuplicateCerts;
  }

  /** Certificates signed by this queue since it was made, for metrics. */
  get signed(): number {
    return this.#signed;
  }

  submit(job: SignRequest): Promise<ParsedCert> {
    return new Promise<ParsedCert>((resolve, reject) => {
      this.#queue.push({ ...job, resolve, reject });
      if (!this.#batching) void this.#drain();
    });
  }

  async #drain(): Promise<void> {
    this.#batching = true;
    try {
      while (this.#queue.length > 0) {
        const batch = this.#queue.splice(0, 512);
        try {
          await this.#store.withLock(() => this.#signBatch(batch));
        } catch (err) {
          for (const job of batch) job.reject(err);
        }
      }
    } finally {
      this.#batching = false;
    }
  }

  async #signBatch(batch: SignJob[]): Promise<void> {
    const ready: SignJob[] = [];
    const seen = new Set<string>();
    for (const job of batch) {
      const exists = seen.has(job.certname) || (await this.#store.getSigned(job.certname)) !== undefined;
      if (exists && !job.replace && !this.#allowDuplicateCerts) {
        job.reject(new RingmasterError('RM_CA_CSR_DUPLICATE', `${job.certname} already has a signed certificate`));
        continue;
      }
      seen.add(job.certname);
      ready.push(job);
    }
    if (ready.length === 0) return;
    // The serial bump is durable before anything is issued: a crash can skip serials, never reuse one.
    const serials = await this.#store.allocateSerials(ready.length);
    const now = this.#clock.now();
    const issued = await Promise.all(
      ready.map(async (job, i) => {
        const serial = serials[i] ?? 0n;
        try {
          const pem = await issueCertificate({
            signer: this.#signer(),
            commonName: job.certname,
            publicKeySpki: job.publicKeySpki,
            serial,
            notBefore: new Date(now - DAY),
            notAfter: new Date(now + job.ttlMs),
            subjectAltNames: job.subjectAltNames,
            copyExtensions: job.extensions,
            cliAuth: job.cliAuth,
          });
          return { job, cert: parseCert(pem) };
        } catch (err) {
          job.reject(err);
          return undefined;
        }
      }),
    );
    const done = issued.filter((x) => x !== undefined);
    const entries: InventoryEntry[] = done.map(({ cert }) => ({ serial: cert.serial, notBefore: cert.notBefore, notAfter: cert.notAfter, subject: `/CN=${cert.commonName ?? ''}` }));
    // Inventory before the certificate file: every certificate on disk is always in the inventory.
    await this.#store.appendInventory(entries);
    await this.#store.putSignedMany(done.map(({ job, cert }) => ({ name: job.certname, pem: cert.pem })));
    await Promise.all(done.filter(({ job }) => job.fromRequest).map(({ job }) => this.#store.deleteRequest(job.certname)));
    this.#signed += done.length;
    for (const { job, cert } of done) {
      this.#log.info({ certname: job.certname, serial: cert.serial.toString(), notAfter: cert.notAfter.toISOString() }, 'signed certificate');
      job.resolve(cert);
    }
  }
}
