import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { writeFileAtomic, ensureDirectory } from '../../lib/atomic-file.ts';
import type { Clock } from '../../lib/clock.ts';
import { RingmasterError } from '../../lib/errors.ts';
import { FileLock } from '../../lib/file-lock.ts';
import { systemRandom, type Random } from '../../lib/random.ts';
import { allowListEntryMatches, allowListEntryProblem } from './allowlist.ts';

// One-time autosign tokens, carried by the agent in its CSR's challengePassword attribute
// (csr_attributes.yaml `custom_attributes`). The file holds only SHA-256 hashes, so reading it
// (a backup, a support bundle) does not hand out tokens. The server consumes tokens and the CLI
// creates them, possibly at the same moment, so every change happens under a cross-process lock.

export const maxTokenTtlMs = 365 * 86_400_000;
const keepSpentMs = 86_400_000;
const fileVersion = 1;

export type TokenInfo = {
  /** A short prefix of the token's hash: enough to tell tokens apart, useless for signing. */
  id: string;
  certname: string;
  createdAt: Date;
  expiresAt: Date;
  usedAt?: Date;
  usedBy?: string;
};

export type ConsumeFailure = 'unknown' | 'expired' | 'used' | 'wrong-certname';
export type ConsumeResult = { ok: true } | { ok: false; reason: ConsumeFailure };

export type TokenStoreOptions = { clock: Clock; random?: Random; lockTimeoutMs?: number };

type StoredToken = { sha256: string; certname: string; createdAt: string; expiresAt: string; usedAt?: string; usedBy?: string };

function hashToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

function isIsoDate(value: unknown): value is string {
  return typeof value === 'string' && !Number.isNaN(Date.parse(value));
}

function parseStored(path: string, text: string): StoredToken[] {
  const corrupt = (why: string): RingmasterError =>
    new RingmasterError('RM_CA_DIR_INVALID', `${path} is not a valid autosign token file: ${why}`);
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw corrupt((err as Error).message);
  }
  if (typeof data !== 'object' || data === null) throw corrupt('not an object');
  const { version, tokens } = data as { version?: unknown; tokens?: unknown };
  if (version !== fileVersion) throw corrupt(`unsupported version ${JSON.stringify(version)}`);
  if (!Array.isArray(tokens)) throw corrupt('"tokens" is not a list');
  return tokens.map((raw: unknown, i): StoredToken => {
    const t = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
    const ok = typeof t.sha256 === 'string' && /^[0-9a-f]{64}$/.test(t.sha256)
      && typeof t.certname === 'string' && isIsoDate(t.createdAt) && isIsoDate(t.expiresAt)
      && (t.usedAt === undefined || isIsoDate(t.usedAt))
      && (t.usedBy === undefined || typeof t.usedBy === 'string');
    if (!ok) throw corrupt(`entry ${i} is malformed`);
    return t as StoredToken;
  });
}

function toInfo(t: StoredToken): TokenInfo {
  return {
    id: t.sha256.slice(0, 12),
    certname: t.certname,
    createdAt: new Date(t.createdAt),
    expiresAt: new Date(t.expiresAt),
    ...(t.usedAt === undefined ? {} : { usedAt: new Date(t.usedAt) }),
    ...(t.usedBy === undefined ? {} : { usedBy: t.usedBy }),
  };
}

function certnameProblem(certname: string): string | undefined {
  if (certname.trim() === '') return 'the certname is empty';
  if (certname === '*') return "a token must name one certname or a '*.domain' glob, not '*'";
  if (certname !== certname.toLowerCase()) return 'certnames are lower case';
  return allowListEntryProblem(certname);
}

export class TokenStore {
  readonly path: string;
  #clock: Clock;
  #random: Random;
  #lock: FileLock;

  constructor(path: string, options: TokenStoreOptions) {
    this.path = path;
    this.#clock = options.clock;
    this.#random = options.random ?? systemRandom;
    this.#lock = new FileLock(`${path}.lock`, options.lockTimeoutMs === undefined ? {} : { timeoutMs: options.lockTimeoutMs });
  }

  /** Mints a token for one certname (or a `*.domain` glob). The token itself is shown only here. */
  async create(certname: string, ttlMs: number): Promise<{ token: string; expiresAt: Date }> {
    const problem = certnameProblem(certname);
    if (problem !== undefined) throw new RingmasterError('RM_CA_TOKEN_INVALID', `invalid token certname ${JSON.stringify(certname)}: ${problem}`);
    if (!Number.isFinite(ttlMs) || ttlMs <= 0 || ttlMs > maxTokenTtlMs) {
      throw new RingmasterError('RM_CA_TOKEN_INVALID', `token lifetime must be more than 0 and at most 1 year (got ${ttlMs} ms)`);
    }
    // Hex, not base64: Puppet agents send csr_attributes as ASN.1 PrintableString, which has no '_'.
    const token = this.#random.bytes(32).toString('hex');
    return this.#mutate((tokens, now) => {
      const expiresAt = new Date(now + ttlMs);
      const kept = tokens.filter((t) => !this.#spent(t, now));
      kept.push({ sha256: hashToken(token).toString('hex'), certname, createdAt: new Date(now).toISOString(), expiresAt: expiresAt.toISOString() });
      return { tokens: kept, result: { token, expiresAt } };
    });
  }

  /**
   * Checks a presented token and, when it is good, marks it used on disk before answering, so a
   * crash between the two can lose a token but never let it sign twice.
   */
  async consume(certname: string, presented: string): Promise<ConsumeResult> {
    const token = presented.trim();
    if (token === '') return { ok: false, reason: 'unknown' };
    const presentedHash = hashToken(token);
    return this.#mutate((tokens, now) => {
      // Every entry is compared, in constant time, so timing says nothing about which hashes exist.
      let found: StoredToken | undefined;
      for (const t of tokens) {
        if (timingSafeEqual(Buffer.from(t.sha256, 'hex'), presentedHash)) found = t;
      }
      const fail = (reason: ConsumeFailure): { tokens: undefined; result: ConsumeResult } => ({ tokens: undefined, result: { ok: false, reason } });
      if (found === undefined) return fail('unknown');
      if (found.usedAt !== undefined) return fail('used');
      if (now >= Date.parse(found.expiresAt)) return fail('expired');
      if (!allowListEntryMatches(found.certname, certname)) return fail('wrong-certname');
      found.usedAt = new Date(now).toISOString();
      found.usedBy = certname;
      return { tokens, result: { ok: true } };
    });
  }

  async list(): Promise<TokenInfo[]> {
    // Writes are atomic renames, so reading without the lock sees one whole version of the file.
    return (await this.#read()).map(toInfo);
  }

  /** Drops tokens that were used or expired more than a day ago; returns how many went. */
  async prune(): Promise<number> {
    return this.#mutate((tokens, now) => {
      const kept = tokens.filter((t) => !this.#spent(t, now));
      const removed = tokens.length - kept.length;
      return { tokens: removed > 0 ? kept : undefined, result: removed };
    });
  }

  // A spent token is kept for a day so `list` can still show who used it and when.
  #spent(t: StoredToken, now: number): boolean {
    const cutoff = now - keepSpentMs;
    return (t.usedAt !== undefined && Date.parse(t.usedAt) <= cutoff) || Date.parse(t.expiresAt) <= cutoff;
  }

  async #read(): Promise<StoredToken[]> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    return parseStored(this.path, text);
  }

  /** Read, change and (when `tokens` comes back defined) durably write, all under the lock. */
  async #mutate<T>(change: (tokens: StoredToken[], now: number) => { tokens: StoredToken[] | undefined; result: T }): Promise<T> {
    await ensureDirectory(dirname(this.path), 0o700);
    return this.#lock.withLock(async () => {
      const { tokens, result } = change(await this.#read(), this.#clock.now());
      if (tokens !== undefined) {
        await writeFileAtomic(this.path, `${JSON.stringify({ version: fileVersion, tokens }, null, 2)}\n`, { mode: 0o600 });
      }
      return result;
    });
  }
}
