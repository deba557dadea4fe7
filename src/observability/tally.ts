// Counters and histograms for the metrics every agent request moves. prom-client hashes and
// validates the label set on each observation; the gateway's request path made four of those
// per request. A tally keeps one series per label set in a Map, found by a key string the caller
// builds from the label values, and only builds the label object the first time a key is seen.
// At scrape time it hands the registry the same shape prom-client's own metrics do, so the text
// exposition is prom-client's. Label values are bounded by the caller (configured names and
// fixed lists), as for any metric.

/** One exported sample, as prom-client's registry reads it. */
export type TallySample = { labels: Record<string, string | number>; value: number; metricName?: string };
export type TallyExport = { name: string; help: string; type: 'counter' | 'histogram'; aggregator: 'sum'; values: TallySample[] };

type CounterSeries = { labels: Record<string, string>; value: number };

export class TallyCounter {
  readonly name: string;
  readonly help: string;
  #series = new Map<string, CounterSeries>();

  constructor(name: string, help: string) {
    this.name = name;
    this.help = help;
  }

  /** Adds `by` to the series of `key`; `labels` is called only for a key not seen before. */
  add(key: string, labels: () => Record<string, string>, by = 1): void {
    if (!(by >= 0) || !Number.isFinite(by)) throw new TypeError(`a counter only grows: ${by}`);
    const s = this.#series.get(key);
    if (s) s.value += by;
    else this.#series.set(key, { labels: labels(), value: by });
  }

  get(): Promise<TallyExport> {
    const values = [...this.#series.values()].map((s) => ({ labels: s.labels, value: s.value }));
    return Promise.resolve({ name: this.name, help: this.help, type: 'counter', aggregator: 'sum', values });
  }

  reset(): void {
    this.#series.clear();
  }
}

type HistogramSeries = { labels: Record<string, string>; counts: number[]; sum: number; count: number };

export class TallyHistogram {
  readonly name: string;
  readonly help: string;
  #bounds: number[];
  #series = new Map<string, HistogramSeries>();

  /** `bounds`: the buckets' upper bounds, ascending; +Inf is added. */
  constructor(name: string, help: string, bounds: readonly number[]) {
    for (let i = 1; i < bounds.length; i++) if (!(bounds[i]! > bounds[i - 1]!)) throw new Error(`bucket bounds of ${name} must ascend`);
    this.name = name;
    this.help = help;
    this.#bounds = [...bounds];
  }

  observe(key: string, labels: () => Record<string, string>, value: number): void {
    if (!Number.isFinite(value)) throw new TypeError(`not a finite observation: ${value}`);
    let s = this.#series.get(key);
    if (!s) {
      s = { labels: labels(), counts: new Array<number>(this.#bounds.length).fill(0), sum: 0, count: 0 };
      this.#series.set(key, s);
    }
    s.sum += value;
    s.count++;
    const bounds = this.#bounds;
    for (let i = 0; i < bounds.length; i++) {
      if (value <= bounds[i]!) {
        s.counts[i]!++;
        break;
      }
    }
  }

  get(): Promise<TallyExport> {
    const values: TallySample[] = [];
    const bucket = `${this.name}_bucket`;
    for (const s of this.#series.values()) {
      let acc = 0;
      for (let i = 0; i < this.#bounds.length; i++) {
        acc += s.counts[i]!;
        values.push({ labels: { ...s.labels, le: this.#bounds[i]! }, value: acc, metricName: bucket });
      }
      values.push({ labels: { ...s.labels, le: '+Inf' }, value: s.count, metricName: bucket });
      values.push({ labels: s.labels, value: s.sum, metricName: `${this.name}_sum` });
      values.push({ labels: s.labels, value: s.count, metricName: `${this.name}_count` });
    }
    return Promise.resolve({ name: this.name, help: this.help, type: 'histogram', aggregator: 'sum', values });
  }

  reset(): void {
    this.#series.clear();
  }
}
