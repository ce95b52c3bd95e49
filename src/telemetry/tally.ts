/**
 * Counters and histograms for what every request records (the prometheus
 * plugin): a series is looked up once and kept by its user, then counting is
 * a number addition and observing a bucket search. prom-client hashes and
 * validates the label object on every inc()/observe() (~1 µs each, six per
 * request for the prometheus plugin); these are read only at scrape time.
 *
 * They are metrics of the gateway's prom-client Registry like the others
 * (prom-client's metric contract: name, help, type, aggregator, get(),
 * reset()), with the same exposition and the same JSON for the cluster
 * primary's aggregation (summed across workers).
 */
import type { HistogramSeries, TallySeries } from '../pdk/index.ts';

type Labels = Readonly<Record<string, string>>;
interface MetricValue {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

/** The series key: label values in label-name order. */
const keyOf = (names: readonly string[], labels: Labels): string => names.map((n) => labels[n] ?? '').join('\u0000');

/** Only the declared label names, each a string (as prom-client keeps them). */
function ownLabels(names: readonly string[], labels: Labels): Record<string, string> {
  const out: Record<string, string> = {};
  for (const n of names) {
    const v = labels[n];
    if (v === undefined) throw new Error(`label ${n} is missing`);
    out[n] = v;
  }
  for (const n of Object.keys(labels)) if (!names.includes(n)) throw new Error(`label ${n} is not one of [${names.join(', ')}]`);
  return out;
}

class CounterSeries implements TallySeries {
  value = 0;
  readonly labels: Record<string, string>;
  constructor(labels: Record<string, string>) {
    this.labels = labels;
  }
}

export class TallyCounter {
  readonly type = 'counter';
  readonly aggregator = 'sum';
  readonly #series = new Map<string, CounterSeries>();
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];

  constructor(name: string, help: string, labelNames: readonly string[]) {
    this.name = name;
    this.help = help;
    this.labelNames = labelNames;
  }

  /** The series of these labels (made on first use): add to its `value`. */
  series(labels: Labels): TallySeries {
    const own = ownLabels(this.labelNames, labels); // checked on every lookup: lookups are rare (their results are kept)
    const key = keyOf(this.labelNames, own);
    let s = this.#series.get(key);
    if (s === undefined) this.#series.set(key, (s = new CounterSeries(own)));
    return s;
  }

  get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: MetricValue[] }> {
    const values: MetricValue[] = [];
    for (const s of this.#series.values()) values.push({ labels: { ...s.labels }, value: s.value });
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values });
  }

  reset(): void {
    this.#series.clear();
  }
}

class BucketSeries implements HistogramSeries {
  /** Observations per bucket (not cumulative); the last one is +Inf. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  readonly labels: Record<string, string>;
  readonly bounds: readonly number[];

  constructor(labels: Record<string, string>, bounds: readonly number[]) {
    this.labels = labels;
    this.bounds = bounds;
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    if (!Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${value}`); // as prom-client
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
  }
}

export class TallyHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly #series = new Map<string, BucketSeries>();
  readonly buckets: readonly number[];
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];

  constructor(name: string, help: string, labelNames: readonly string[], buckets: readonly number[]) {
    this.name = name;
    this.help = help;
    this.labelNames = labelNames;
    this.buckets = [...buckets].sort((a, b) => a - b);
  }

  /** The series of these labels (made on first use): observe() into it. */
  series(labels: Labels): HistogramSeries {
    const own = ownLabels(this.labelNames, labels);
    const key = keyOf(this.labelNames, own);
    let s = this.#series.get(key);
    if (s === undefined) this.#series.set(key, (s = new BucketSeries(own, this.buckets)));
    return s;
  }

  /** As prom-client's histograms: per series, cumulative `le` buckets, +Inf, then _sum and _count. */
  get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: MetricValue[] }> {
    const values: MetricValue[] = [];
    const bucket = `${this.name}_bucket`;
    for (const s of this.#series.values()) {
      if (s.count === 0) continue; // nothing observed yet: prom-client would not have the series either
      let acc = 0;
      for (let i = 0; i < this.buckets.length; i++) {
        acc += s.counts[i]!;
        values.push({ labels: { le: this.buckets[i]!, ...s.labels }, value: acc, metricName: bucket });
      }
      values.push({ labels: { le: '+Inf', ...s.labels }, value: s.count, metricName: bucket });
      values.push({ labels: { ...s.labels }, value: s.sum, metricName: `${this.name}_sum` });
      values.push({ labels: { ...s.labels }, value: s.count, metricName: `${this.name}_count` });
    }
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values });
  }

  reset(): void {
    this.#series.clear();
  }
}
