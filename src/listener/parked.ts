import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { RecordProtection, maxCiphertext, maxPlaintext, recordType, tls13Suite, type Tls13Suite } from './tls13.ts';
import type { RecordTrail, TlsTap } from './tls-tap.ts';

// An idle agent connection taken out of OpenSSL. node:tls keeps 40–50 KB of native state per
// connection (OpenSSL's connection, the peer's certificate, its buffers) for as long as it is
// open; a kept-alive agent connection is mostly idle. A TLS 1.3 connection that has been idle
// for `listeners[].parkIdleAfter` is handed to this object instead: the TLS socket is destroyed
// (freeing that state), and the few bytes that TLS 1.3 needs after its handshake are kept, the
// two traffic secrets and sequence numbers. Records are then sealed and opened here (tls13.ts).
//
// The keys and sequence numbers are not guessed: the last protected record of each direction
// (kept by the tap) must open under the traffic secret at the sequence number found, or the
// connection is not parked. So a sequence number is never used twice under one key. TLS 1.2
// connections, and any whose last record was not application data (a KeyUpdate or anything
// else), stay with OpenSSL.

const alert = { closeNotify: 0, unexpectedMessage: 10, badRecordMac: 20, recordOverflow: 22 } as const;
const keyUpdate = 24;
/** How many protected handshake records (EncryptedExtensions … Finished) may come before the first application record. */
const handshakeRecords = 16;

/**
 * The parked socket that replaces the connection, or why it stays with OpenSSL: for good, or (`again`)
 * only for now, as bytes were still on their way, so that the next sweep may try once more.
 */
export type ParkResult = { parked: ParkedSocket } | { kept: string; again?: true };

/** Takes an idle TLS 1.3 connection out of OpenSSL; the caller must not use `tls` afterwards when it succeeds. */
export function park(tls: TLSSocket, tap: TlsTap): ParkResult {
  if (tls.getProtocol() !== 'TLSv1.3') return { kept: 'not TLS 1.3' };
  const suite = tls13Suite(tls.getCipher().standardName);
  if (!suite) return { kept: 'cipher suite' };
  if (!tap.clientSecret || !tap.serverSecret) return { kept: 'no traffic secrets' };
  if (!tap.inbound.atBoundary || !tap.outbound.atBoundary) return { kept: 'a record is in flight', again: true };
  if (tls.writableLength > 0 || tap.writableLength > 0 || tap.raw.writableLength > 0) return { kept: 'writes pending', again: true };
  const read = resume(suite, tap.clientSecret, tap.inbound);
  const write = resume(suite, tap.serverSecret, tap.outbound);
  if (!read || !write) return { kept: 'last records do not open under the traffic secrets' };
  const raw = tap.detach();
  const parked = new ParkedSocket(raw, read, write);
  tls.destroy();
  return { parked };
}

/** The protection that follows a trail's last record, when that record is application data under `secret`. */
function resume(suite: Tls13Suite, secret: Buffer, trail: RecordTrail): RecordProtection | undefined {
  const last = trail.last();
  if (!last) return undefined;
  const p = new RecordProtection(suite, secret);
  for (let h = 0; h <= handshakeRecords && trail.count - 1 - h >= 0; h++) {
    const opened = p.open(last, trail.count - 1 - h);
    if (opened) return opened.type === recordType.applicationData ? p : undefined;
  }
  return undefined;
}

/**
 * The parked connection, with the socket methods an agent connection uses (agent-http.ts):
 * 'data' (application data), 'drain', 'close', 'error'; write, end, destroy, pause, resume.
 */
export class ParkedSocket extends EventEmitter {
  readonly raw: Socket;
  #read: RecordProtection;
  #write: RecordProtection;
  /** A record header split across reads; made only when one is (a parked connection keeps little). */
  #header: Buffer | undefined;
  #have = 0;
  #record: Buffer | undefined;
  #got = 0;
  #closing = false;

  constructor(raw: Socket, read: RecordProtection, write: RecordProtection) {
    super();
    this.raw = raw;
    this.#read = read;
    this.#write = write;
    raw.on('data', (chunk: Buffer) => this.#data(chunk));
    raw.on('drain', () => this.emit('drain'));
    raw.on('error', (err: Error) => this.emit('error', err));
    raw.on('close', () => this.emit('close'));
    // A peer that closes TCP without close_notify: nothing more can be read.
    raw.on('end', () => raw.end());
    raw.resume();
  }

  get remoteAddress(): string | undefined {
    return this.raw.remoteAddress;
  }

  write(data: Buffer | string): boolean {
    if (this.#closing || this.raw.destroyed) return false;
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    if (bytes.length === 0) return true;
    if (bytes.length <= maxPlaintext) return this.raw.write(this.#write.seal(recordType.applicationData, bytes));
    const records: Buffer[] = [];
    for (let at = 0; at < bytes.length; at += maxPlaintext) records.push(this.#write.seal(recordType.applicationData, bytes.subarray(at, at + maxPlaintext)));
    return this.raw.write(Buffer.concat(records));
  }

  /** close_notify, then the end of the TCP stream. */
  end(): void {
    if (this.#closing || this.raw.destroyed) return;
    this.#closing = true;
    this.raw.end(this.#write.seal(recordType.alert, Buffer.of(1, alert.closeNotify)));
  }

  destroy(): void {
    this.raw.destroy();
  }

  pause(): this {
    this.raw.pause();
    return this;
  }

  resume(): this {
    this.raw.resume();
    return this;
  }

  #data(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length && !this.raw.destroyed && !this.#closing) {
      if (this.#record === undefined) {
        let header: Buffer;
        if (this.#have === 0 && chunk.length - at >= 5) {
          header = chunk.subarray(at, at + 5);
          at += 5;
        } else {
          const n = Math.min(5 - this.#have, chunk.length - at);
          this.#header ??= Buffer.alloc(5);
          chunk.copy(this.#header, this.#have, at, at + n);
          this.#have += n;
          at += n;
          if (this.#have < 5) return;
          header = this.#header;
        }
        const length = header.readUInt16BE(3);
        if (header[0] !== recordType.applicationData) return this.#fail(alert.unexpectedMessage);
        if (length > maxCiphertext) return this.#fail(alert.recordOverflow);
        this.#record = Buffer.allocUnsafe(5 + length);
        header.copy(this.#record, 0);
        this.#have = 5;
        this.#got = 5;
      }
      const n = Math.min(this.#record.length - this.#got, chunk.length - at);
      chunk.copy(this.#record, this.#got, at, at + n);
      this.#got += n;
      at += n;
      if (this.#got < this.#record.length) return;
      const record = this.#record;
      this.#record = undefined;
      this.#have = 0;
      this.#open(record);
    }
  }

  #open(record: Buffer): void {
    const opened = this.#read.open(record);
    if (!opened) return this.#fail(alert.badRecordMac);
    const { type, content } = opened;
    if (content.length > maxPlaintext) return this.#fail(alert.recordOverflow);
    if (type === recordType.applicationData) {
      if (content.length > 0) this.emit('data', content);
      return;
    }
    if (type === recordType.alert) {
      // close_notify: the agent is done; anything else ends the connection as well.
      if (content.length === 2 && content[1] === alert.closeNotify) this.end();
      else this.raw.destroy();
      return;
    }
    if (type === recordType.handshake && content.length === 5 && content[0] === keyUpdate && content.readUIntBE(1, 3) === 1 && content[4]! <= 1) {
      // KeyUpdate (RFC 8446 §4.6.3): later records come under the agent's next secret, and
      // when it asks, ringmaster's own KeyUpdate goes out under the current one before its own moves on.
      this.#read.update();
      if (content[4] === 1) {
        this.raw.write(this.#write.seal(recordType.handshake, Buffer.of(keyUpdate, 0, 0, 1, 0)));
        this.#write.update();
      }
      return;
    }
    this.#fail(alert.unexpectedMessage);
  }

  /** A fatal alert, then the end: nothing read after a bad record reaches the agent connection. */
  #fail(description: number): void {
    this.#closing = true;
    this.#record = undefined;
    this.raw.pause();
    this.raw.end(this.#write.seal(recordType.alert, Buffer.of(2, description)));
    setTimeout(() => this.raw.destroy(), 1_000).unref();
  }
}
