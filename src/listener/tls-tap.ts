import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';

// The byte stream between an agent's TCP socket and node:tls, when idle connections may be
// parked (parked.ts). node:tls runs the handshake and the connection as usual; the tap only
// watches the record framing, which TLS leaves in the clear: it counts each direction's
// protected records and keeps the last one, so that a parked connection can prove which keys
// and sequence numbers come next before it writes anything itself. It also reads the
// ClientHello's random, by which the keylog lines of this connection are recognised.

/** One direction's records: how many protected ones have passed, and the last one whole. */
export class RecordTrail {
  /** Whole records of outer type application_data (every protected TLS 1.3 record). */
  count = 0;
  #last: Buffer[] | undefined;
  #current: Buffer[] = [];
  #header = Buffer.alloc(5);
  #have = 0;
  #left = 0;

  /** Between two records: nothing of a next one has passed yet. */
  get atBoundary(): boolean {
    return this.#have === 0;
  }

  /** The last whole protected record, header included. */
  last(): Buffer | undefined {
    if (this.#last === undefined) return undefined;
    if (this.#last.length > 1) this.#last = [Buffer.concat(this.#last)];
    return this.#last[0];
  }

  feed(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.#have < 5) {
        const n = Math.min(5 - this.#have, chunk.length - at);
        chunk.copy(this.#header, this.#have, at, at + n);
        this.#current.push(chunk.subarray(at, at + n));
        this.#have += n;
        at += n;
        if (this.#have < 5) return;
        this.#left = this.#header.readUInt16BE(3);
        if (this.#left === 0) this.#finish();
        continue;
      }
      const n = Math.min(this.#left, chunk.length - at);
      this.#current.push(chunk.subarray(at, at + n));
      this.#left -= n;
      at += n;
      if (this.#left === 0) this.#finish();
    }
  }

  #finish(): void {
    if (this.#header[0] === 23) {
      this.count++;
      this.#last = this.#current;
    }
    this.#current = [];
    this.#have = 0;
  }
}

/** The first bytes of a connection, up to the ClientHello's random. */
const helloPrefix = 5 + 4 + 2 + 32;

export class TlsTap extends Duplex {
  readonly raw: Socket;
  readonly inbound = new RecordTrail();
  readonly outbound = new RecordTrail();
  /** The ClientHello's random in hex, once read. */
  clientRandom: string | undefined;
  /** This connection's TLS 1.3 application traffic secrets, from its keylog lines. */
  clientSecret: Buffer | undefined;
  serverSecret: Buffer | undefined;
  #start: Buffer | undefined = Buffer.alloc(0);
  #detached = false;
  #onData = (chunk: Buffer): void => {
    if (this.#start !== undefined) this.#hello(chunk);
    this.inbound.feed(chunk);
    if (!this.push(chunk)) this.raw.pause();
  };
  #onEnd = (): void => {
    this.push(null);
  };
  #onError = (err: Error): void => {
    this.destroy(err);
  };
  #onClose = (): void => {
    this.destroy();
  };

  #onHello: (random: string) => void;

  constructor(raw: Socket, onHello: (random: string) => void) {
    super({ allowHalfOpen: false });
    this.raw = raw;
    this.#onHello = onHello;
    raw.on('data', this.#onData);
    raw.on('end', this.#onEnd);
    raw.on('error', this.#onError);
    raw.on('close', this.#onClose);
  }

  override _read(): void {
    if (!this.#detached) this.raw.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    // Once parked, node:tls may not write again (its close would reuse a sequence number).
    if (this.#detached) {
      done();
      return;
    }
    this.outbound.feed(chunk);
    this.raw.write(chunk, done);
  }

  override _final(done: (err?: Error | null) => void): void {
    if (!this.#detached) this.raw.end();
    done();
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    if (!this.#detached) this.raw.destroy();
    done(err);
  }

  /** Hands the TCP socket over: the tap forwards nothing more either way. */
  detach(): Socket {
    this.#detached = true;
    this.raw.off('data', this.#onData);
    this.raw.off('end', this.#onEnd);
    this.raw.off('error', this.#onError);
    this.raw.off('close', this.#onClose);
    return this.raw;
  }

  #hello(chunk: Buffer): void {
    const start = Buffer.concat([this.#start!, chunk.subarray(0, helloPrefix)]);
    if (start.length < helloPrefix) {
      this.#start = start;
      return;
    }
    this.#start = undefined;
    // A handshake record holding a ClientHello: the random follows the legacy version.
    if (start[0] === 22 && start[5] === 1) {
      this.clientRandom = start.toString('hex', 11, 43);
      this.#onHello(this.clientRandom);
    }
  }
}
