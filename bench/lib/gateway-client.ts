// A lean HTTP/1.1 client over node:tls for the gateway benchmark's keep-alive and paced phases.
// The load client shares a core with the scripted backend; with undici it spent 100–130 µs of
// that core per request, so at half of ringmaster's maximum the client's own queueing reached
// the p99 of every front door alike. This one writes prebuilt requests and reads answers with
// just enough parsing to frame them (Content-Length or chunked) and to find the backend's tag in
// the body, which is all the benchmark needs. It is not a general HTTP client.
import { connect, type TLSSocket } from 'node:tls';
import { ChunkedDecoder } from '../../src/listener/head.ts';

export type LeanTarget = { port: number; ca: string; cert: string; key: string };
/** An answer: its status, whether the body carried `tag`, and the body's first bytes for errors. */
export type LeanAnswer = { status: number; tagged: boolean; start: string };

const headEnd = Buffer.from('\r\n\r\n');

type Pending = { bytes: Buffer; resolve: (a: LeanAnswer) => void; reject: (e: Error) => void };

/** One keep-alive TLS connection, one request at a time. */
class LeanConnection {
  readonly socket: TLSSocket;
  #pool: LeanPool;
  #current: Pending | undefined;
  #head: Buffer | undefined;
  #status = 0;
  /** Body bytes still to come (Content-Length), or -1 while reading chunked framing. */
  #left = 0;
  #chunk: ChunkedDecoder | undefined;
  #close = false;
  #tagged = false;
  #tail: Buffer = Buffer.alloc(0);
  #start = '';
  #timer: NodeJS.Timeout | undefined;
  ready: Promise<void>;
  dead = false;

  constructor(pool: LeanPool, t: LeanTarget) {
    this.#pool = pool;
    this.socket = connect({ host: '127.0.0.1', port: t.port, servername: 'localhost', ca: t.ca, cert: t.cert, key: t.key, rejectUnauthorized: true });
    this.socket.setNoDelay(true);
    this.ready = new Promise((resolve, reject) => {
      this.socket.once('secureConnect', () => resolve());
      this.socket.once('error', reject);
    });
    this.ready.catch(() => undefined);
    this.socket.on('data', (d: Buffer) => this.#data(d));
    this.socket.on('error', (err: Error) => this.#fail(err));
    this.socket.on('close', () => this.#fail(new Error('connection closed by the front door')));
  }

  send(p: Pending, timeoutMs: number): void {
    this.#current = p;
    this.#head = undefined;
    this.#tagged = false;
    this.#tail = Buffer.alloc(0);
    this.#start = '';
    this.#timer = setTimeout(() => this.socket.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    this.socket.write(p.bytes);
  }

  #data(d: Buffer): void {
    if (!this.#current) {
      this.socket.destroy(new Error('bytes from the front door with no request outstanding'));
      return;
    }
    let body = d;
    if (this.#head === undefined || this.#status === 0) {
      const buf = this.#head === undefined ? d : Buffer.concat([this.#head, d]);
      const end = buf.indexOf(headEnd);
      if (end < 0) {
        this.#head = buf;
        return;
      }
      const head = buf.toString('latin1', 0, end).toLowerCase();
      this.#head = buf.subarray(0, 0);
      this.#status = Number(head.slice(9, 12));
      this.#close = /\r\nconnection:\s*close/.test(head);
      const length = /\r\ncontent-length:\s*(\d+)/.exec(head);
      if (/\r\ntransfer-encoding:\s*chunked/.test(head)) {
        this.#left = -1;
        this.#chunk = new ChunkedDecoder();
      } else {
        this.#left = length ? Number(length[1]) : 0;
        this.#chunk = undefined;
      }
      body = buf.subarray(end + 4);
    }
    if (this.#chunk) {
      const r = this.#chunk.push(body, (data) => this.#body(data));
      if (r === 'error' || r === 'extra') this.socket.destroy(new Error(`chunked answer ${r === 'error' ? 'badly framed' : 'followed by stray bytes'}`));
      else if (r === 'end') this.#finish();
    } else {
      const used = Math.min(this.#left, body.length);
      if (used > 0) this.#body(body.subarray(0, used));
      this.#left -= used;
      if (this.#left === 0) this.#finish();
    }
  }

  #body(data: Buffer): void {
    if (this.#start.length < 120) this.#start += data.toString('latin1', 0, 120 - this.#start.length);
    if (this.#tagged) return;
    const tag = this.#pool.tag;
    const hay = this.#tail.length > 0 ? Buffer.concat([this.#tail, data]) : data;
    if (hay.indexOf(tag) >= 0) this.#tagged = true;
    else this.#tail = hay.subarray(Math.max(0, hay.length - tag.length + 1));
  }

  #finish(): void {
    const p = this.#current!;
    clearTimeout(this.#timer);
    this.#current = undefined;
    const answer = { status: this.#status, tagged: this.#tagged, start: this.#start };
    this.#status = 0;
    this.#head = undefined;
    if (this.#close) {
      this.dead = true;
      this.socket.destroy();
    }
    p.resolve(answer);
    this.#pool.released(this);
  }

  #fail(err: Error): void {
    clearTimeout(this.#timer);
    const was = !this.dead;
    this.dead = true;
    const p = this.#current;
    this.#current = undefined;
    p?.reject(err);
    if (was) this.#pool.released(this);
  }
}

/** Up to `size` connections to one front door with one agent identity; requests beyond wait FIFO. */
export class LeanPool {
  readonly tag: Buffer;
  #target: LeanTarget;
  #size: number;
  #idle: LeanConnection[] = [];
  #all = new Set<LeanConnection>();
  #waiting: Pending[] = [];
  #opening = 0;
  #timeoutMs: number;
  #onConnect: () => void;

  constructor(target: LeanTarget, o: { connections: number; tag: string; timeoutMs: number; onConnect: () => void }) {
    this.#target = target;
    this.#size = o.connections;
    this.tag = Buffer.from(o.tag);
    this.#timeoutMs = o.timeoutMs;
    this.#onConnect = o.onConnect;
  }

  request(bytes: Buffer): Promise<LeanAnswer> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ bytes, resolve, reject });
      this.#dispatch();
    });
  }

  released(c: LeanConnection): void {
    if (c.dead) this.#all.delete(c);
    else this.#idle.push(c);
    this.#dispatch();
  }

  #dispatch(): void {
    while (this.#waiting.length > 0) {
      const c = this.#idle.pop();
      if (c) {
        c.send(this.#waiting.shift()!, this.#timeoutMs);
        continue;
      }
      // Connections being opened will each take a waiting request when they are ready.
      if (this.#all.size >= this.#size || this.#opening >= this.#waiting.length) return;
      this.#open();
    }
  }

  #open(): void {
    const c = new LeanConnection(this, this.#target);
    this.#all.add(c);
    this.#opening++;
    c.ready.then(
      () => {
        this.#opening--;
        this.#onConnect();
        this.released(c);
      },
      (err: Error) => {
        this.#opening--;
        this.#all.delete(c);
        // A connection that cannot be made fails the request that asked for it.
        this.#waiting.shift()?.reject(err);
        this.#dispatch();
      },
    );
  }

  destroy(): void {
    for (const c of this.#all) c.socket.destroy();
    this.#all.clear();
    this.#idle = [];
  }
}
