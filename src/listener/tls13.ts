import { createCipheriv, createDecipheriv, createHmac, type CipherGCMTypes, type CipherChaCha20Poly1305Types } from 'node:crypto';

// TLS 1.3 record protection (RFC 8446 §5.2–5.4, §7.1–7.3) for connections parked out of
// OpenSSL (see parked.ts): the traffic keys are derived from a traffic secret, each record is
// sealed or opened with the AEAD under a nonce made from the write IV and the record's sequence
// number, and a KeyUpdate moves to the next secret. The handshake itself is never done here.

type Aead = CipherGCMTypes | CipherChaCha20Poly1305Types;
export type Tls13Suite = { readonly aead: Aead; readonly hash: 'sha256' | 'sha384'; readonly keyLength: number; readonly hashLength: number };

const suites: Record<string, Tls13Suite> = {
  TLS_AES_128_GCM_SHA256: { aead: 'aes-128-gcm', hash: 'sha256', keyLength: 16, hashLength: 32 },
  TLS_AES_256_GCM_SHA384: { aead: 'aes-256-gcm', hash: 'sha384', keyLength: 32, hashLength: 48 },
  TLS_CHACHA20_POLY1305_SHA256: { aead: 'chacha20-poly1305', hash: 'sha256', keyLength: 32, hashLength: 32 },
};

/** The suite of a TLS 1.3 cipher by its standard name; undefined for any other cipher. */
export function tls13Suite(standardName: string): Tls13Suite | undefined {
  return suites[standardName];
}

export const recordType = { changeCipherSpec: 20, alert: 21, handshake: 22, applicationData: 23 } as const;
/** Largest TLSPlaintext fragment (2^14) and largest TLSCiphertext fragment (2^14 + 256). */
export const maxPlaintext = 16_384;
export const maxCiphertext = 16_384 + 256;
const tagLength = 16;
/** Records sealed under one key before the connection is closed rather than risk the AEAD's limits (RFC 8446 §5.5). */
const maxRecordsPerKey = 2 ** 24;

/** HKDF-Expand-Label(secret, label, "", length); one HMAC block suffices for every output used here. */
export function expandLabel(hash: Tls13Suite['hash'], secret: Buffer, label: string, length: number): Buffer {
  const full = Buffer.from(`tls13 ${label}`, 'latin1');
  const info = Buffer.alloc(2 + 1 + full.length + 1 + 1);
  info.writeUInt16BE(length, 0);
  info[2] = full.length;
  full.copy(info, 3);
  info[3 + full.length] = 0;
  info[4 + full.length] = 1;
  return createHmac(hash, secret).update(info).digest().subarray(0, length);
}

/** An opened record: its inner content type and content. */
export type Opened = { type: number; content: Buffer };

/** One direction's protection: the traffic secret, its key and IV, and the next sequence number. */
export class RecordProtection {
  readonly suite: Tls13Suite;
  /**
   * The traffic secret, its key and its IV, one after the other in one buffer of its own: a parked
   * connection holds two of these for as long as it stays open, so they are one allocation each
   * rather than three, and never a slice of Node's shared 8 KB pool (which would keep the whole
   * slab alive).
   */
  #material: Buffer;
  seq: number;

  constructor(suite: Tls13Suite, secret: Buffer, seq = 0) {
    if (secret.length !== suite.hashLength) throw new Error(`a ${suite.hash} traffic secret has ${suite.hashLength} bytes, not ${secret.length}`);
    this.suite = suite;
    this.#material = Buffer.allocUnsafeSlow(suite.hashLength + suite.keyLength + 12);
    this.#derive(secret);
    this.seq = seq;
  }

  /** The next traffic secret (KeyUpdate, §7.2); the sequence number starts again at 0. */
  update(): void {
    this.#derive(expandLabel(this.suite.hash, this.#secret(), 'traffic upd', this.suite.hashLength));
    this.seq = 0;
  }

  #derive(secret: Buffer): void {
    const { hash, hashLength, keyLength } = this.suite;
    secret.copy(this.#material, 0);
    expandLabel(hash, secret, 'key', keyLength).copy(this.#material, hashLength);
    expandLabel(hash, secret, 'iv', 12).copy(this.#material, hashLength + keyLength);
  }

  #secret(): Buffer {
    return this.#material.subarray(0, this.suite.hashLength);
  }

  #key(): Buffer {
    return this.#material.subarray(this.suite.hashLength, this.suite.hashLength + this.suite.keyLength);
  }

  /** A whole record (header and protected fragment) carrying `content` of inner type `type`. */
  seal(type: number, content: Buffer): Buffer {
    if (content.length > maxPlaintext) throw new Error(`a record carries at most ${maxPlaintext} bytes`);
    if (this.seq >= maxRecordsPerKey) throw new Error('too many records under one key');
    const length = content.length + 1 + tagLength;
    const record = Buffer.allocUnsafe(5 + length);
    record[0] = recordType.applicationData;
    record[1] = 3;
    record[2] = 3;
    record.writeUInt16BE(length, 3);
    const cipher = createCipheriv(this.suite.aead as CipherGCMTypes, this.#key(), this.#nonce(this.seq), { authTagLength: tagLength });
    cipher.setAAD(record.subarray(0, 5));
    let at = 5 + cipher.update(content).copy(record, 5);
    at += cipher.update(Buffer.of(type)).copy(record, at);
    at += cipher.final().copy(record, at);
    cipher.getAuthTag().copy(record, at);
    this.seq++;
    return record;
  }

  /**
   * Opens a whole record (header and fragment) at sequence number `seq` (the next one by
   * default); undefined when it does not authenticate there. The sequence number moves on only
   * when it does.
   */
  open(record: Buffer, seq = this.seq): Opened | undefined {
    if (record.length < 5 + tagLength + 1 || record.length > 5 + maxCiphertext) return undefined;
    const decipher = createDecipheriv(this.suite.aead as CipherGCMTypes, this.#key(), this.#nonce(seq), { authTagLength: tagLength });
    decipher.setAAD(record.subarray(0, 5));
    decipher.setAuthTag(record.subarray(record.length - tagLength));
    let inner: Buffer;
    try {
      inner = Buffer.concat([decipher.update(record.subarray(5, record.length - tagLength)), decipher.final()]);
    } catch {
      return undefined;
    }
    this.seq = seq + 1;
    // TLSInnerPlaintext: content, the type byte, then zero padding (§5.4).
    let end = inner.length - 1;
    while (end >= 0 && inner[end] === 0) end--;
    return { type: end < 0 ? 0 : inner[end]!, content: inner.subarray(0, Math.max(0, end)) };
  }

  #nonce(seq: number): Buffer {
    const nonce = Buffer.from(this.#material.subarray(this.suite.hashLength + this.suite.keyLength));
    const hi = Math.floor(seq / 2 ** 32);
    const lo = seq >>> 0;
    nonce.writeUInt32BE((nonce.readUInt32BE(4) ^ hi) >>> 0, 4);
    nonce.writeUInt32BE((nonce.readUInt32BE(8) ^ lo) >>> 0, 8);
    return nonce;
  }
}
