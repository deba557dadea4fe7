import type { Clock } from '../lib/clock.ts';

// The JRuby pool of one simulated compiler: a fixed number of slots, borrowed by every request
// that runs Ruby, and a strict FIFO of waiters, which is what puppetserver's pool does. It keeps
// the figures jruby-metrics reports and the busy-slot time the fleet report turns into utilisation.

export type BorrowReason = { kind: string; method: string; uri: string };

export type Lease = {
  /** Time spent waiting for the slot. */
  readonly waitedMs: number;
  /** Gives the slot back; the first waiter gets it at once. Calling it twice does nothing. */
  release(): void;
};

type Borrowed = { since: number; reason: BorrowReason };
type Waiter = { since: number; reason: BorrowReason; grant: (lease: Lease) => void };

export type InstanceEntry = { time: number; 'duration-millis': number; reason: { request: { 'request-method': string; uri: string; 'route-id': string } } };

export type JrubyMetrics = {
  'num-jrubies': number;
  'num-free-jrubies': number;
  'requested-count': number;
  'borrow-count': number;
  'return-count': number;
  'average-borrow-time': number;
  'average-wait-time': number;
  'requested-instances': InstanceEntry[];
  'borrowed-instances': InstanceEntry[];
};

export class JrubyPool {
  readonly slots: number;
  #clock: Clock;
  /** False while the compiler boots: requests queue and nothing is granted. */
  #isOpen: boolean;
  #waiters: Waiter[] = [];
  #head = 0;
  #borrowed = new Set<Borrowed>();
  #returnedBusyMs = 0;
  #waitTotalMs = 0;
  #requested = 0;
  #granted = 0;
  #returned = 0;
  #maxBusy = 0;

  constructor(slots: number, clock: Clock, options: { open?: boolean } = {}) {
    this.slots = slots;
    this.#clock = clock;
    this.#isOpen = options.open ?? true;
  }

  get busy(): number {
    return this.#borrowed.size;
  }

  get queued(): number {
    return this.#waiters.length - this.#head;
  }

  /** The most slots ever borrowed at once; never above `slots`. */
  get maxBusy(): number {
    return this.#maxBusy;
  }

  get granted(): number {
    return this.#granted;
  }

  open(): void {
    this.#isOpen = true;
    this.#grantWaiting();
  }

  /**
   * Queues for a slot; `grant` runs synchronously when the slot is given (at once, or inside the
   * release of another), so that what it starts is timed from that instant even on a manual clock.
   */
  borrow(reason: BorrowReason, grant: (lease: Lease) => void): void {
    this.#requested += 1;
    this.#waiters.push({ since: this.#clock.now(), reason, grant });
    this.#grantWaiting();
  }

  /** Slot-milliseconds spent borrowed so far, the slots still out counted up to now. */
  busySlotMs(): number {
    const now = this.#clock.now();
    let open = 0;
    for (const b of this.#borrowed) open += now - b.since;
    return this.#returnedBusyMs + open;
  }

  metrics(): JrubyMetrics {
    const now = this.#clock.now();
    const entry = (since: number, reason: BorrowReason): InstanceEntry => ({
      time: since,
      'duration-millis': now - since,
      reason: { request: { 'request-method': reason.method.toLowerCase(), uri: reason.uri, 'route-id': reason.kind } },
    });
    return {
      'num-jrubies': this.slots,
      'num-free-jrubies': this.#isOpen ? this.slots - this.busy : 0,
      'requested-count': this.#requested,
      'borrow-count': this.#granted,
      'return-count': this.#returned,
      'average-borrow-time': this.#returned === 0 ? 0 : Math.round(this.#returnedBusyMs / this.#returned),
      'average-wait-time': this.#granted === 0 ? 0 : Math.round(this.#waitTotalMs / this.#granted),
      'requested-instances': this.#waiters.slice(this.#head).map((w) => entry(w.since, w.reason)),
      'borrowed-instances': [...this.#borrowed].map((b) => entry(b.since, b.reason)),
    };
  }

  #grantWaiting(): void {
    while (this.#isOpen && this.#borrowed.size < this.slots && this.#head < this.#waiters.length) {
      const waiter = this.#waiters[this.#head]!;
      this.#head += 1;
      const now = this.#clock.now();
      const borrowed: Borrowed = { since: now, reason: waiter.reason };
      this.#borrowed.add(borrowed);
      this.#granted += 1;
      this.#waitTotalMs += now - waiter.since;
      this.#maxBusy = Math.max(this.#maxBusy, this.#borrowed.size);
      let released = false;
      waiter.grant({
        waitedMs: now - waiter.since,
        release: () => {
          if (released || !this.#borrowed.has(borrowed)) return;
          released = true;
          this.#borrowed.delete(borrowed);
          this.#returned += 1;
          this.#returnedBusyMs += this.#clock.now() - borrowed.since;
          this.#grantWaiting();
        },
      });
    }
    // The queue is an array read from a moving head; drop the consumed part now and then.
    if (this.#head > 1024 && this.#head * 2 > this.#waiters.length) {
      this.#waiters = this.#waiters.slice(this.#head);
      this.#head = 0;
    }
  }
}
