import type { Socket } from 'node:net';

// Jetty's idle timeout (puppetserver's idle-timeout-milliseconds, 30 s by default) for a simulated
// compiler: a connection with no request in progress for that long is closed by the server. It
// runs on the compiler's injected clock rather than Node's own keepAliveTimeout, which counts real
// time, so that tests move it by hand and a simulation on another clock keeps it in step.

export type Schedule = (ms: number, fn: () => void) => { cancel(): void };

type Watched = { active: number; timer: { cancel(): void } | undefined };

export class IdleConnections {
  #timeoutMs: number;
  #schedule: Schedule;
  #watched = new WeakMap<Socket, Watched>();

  /** A timeout of 0 never closes a connection. */
  constructor(timeoutMs: number, schedule: Schedule) {
    this.#timeoutMs = timeoutMs;
    this.#schedule = schedule;
  }

  /** A new connection: idle until its first request arrives. */
  opened(socket: Socket): void {
    const w: Watched = { active: 0, timer: undefined };
    this.#watched.set(socket, w);
    socket.once('close', () => {
      w.timer?.cancel();
      w.timer = undefined;
    });
    this.#arm(socket, w);
  }

  /** A request arrived on the connection; `ended` when its response is done (or cut off). */
  requestStarted(socket: Socket): { ended(): void } {
    let w = this.#watched.get(socket);
    if (w === undefined) {
      this.opened(socket);
      w = this.#watched.get(socket)!;
    }
    const watched = w;
    watched.timer?.cancel();
    watched.timer = undefined;
    watched.active += 1;
    let done = false;
    return {
      ended: () => {
        if (done) return;
        done = true;
        watched.active -= 1;
        this.#arm(socket, watched);
      },
    };
  }

  #arm(socket: Socket, w: Watched): void {
    if (this.#timeoutMs <= 0 || w.active > 0 || socket.destroyed) return;
    w.timer?.cancel();
    w.timer = this.#schedule(this.#timeoutMs, () => {
      w.timer = undefined;
      socket.destroy();
    });
  }
}
