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

/**
 * What both kinds share: name, labels, the series by label values, prom-client's metric contract. `make` creates
 * a series, `values` gives its exposition values (none: not exposed).
 */
class Tally<S extends { readonly labels: Record<string, string>; reset(): void }> {
  readonly aggregator = 'sum';
  readonly #series = new Map<string, S>();
  readonly type: 'counter' | 'histogram';
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
  readonly #make: (labels: Record<string, string>) => S;
  readonly #values: (s: S, out: MetricValue[]) => void;

  constructor(type: 'counter' | 'histogram', name: string, help: string, labelNames: readonly string[], make: (labels: Record<string, string>) => S, values: (s: S, out: MetricValue[]) => void) {
    this.type = type;
    this.name = name;
    this.help = help;
    this.labelNames = labelNames;
    this.#make = make;
    this.#values = values;
  }

  /** The series of these labels (made on first use). Checked on every lookup: lookups are rare (their results are kept). */
  series(labels: Labels): S {
    const own = ownLabels(this.labelNames, labels);
    const key = keyOf(this.labelNames, own);
    let s = this.#series.get(key);
    if (s === undefined) this.#series.set(key, (s = this.#make(own)));
    return s;
  }

  get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: MetricValue[] }> {
    const values: MetricValue[] = [];
    for (const s of this.#series.values()) this.#values(s, values);
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values });
  }

  /** Zeroes every series in place: their users keep them, so they must stay the ones exposed. */
  reset(): void {
    for (const s of this.#series.values()) s.reset();
  }
}

class CounterSeries implements TallySeries {
  value = 0;
  readonly labels: Record<string, string>;
  constructor(labels: Record<string, string>) {
    this.labels = labels;
  }

  reset(): void {
    this.value = 0;
  }
}

/** A counter: add to a series' `value`. */
export class TallyCounter extends Tally<CounterSeries> {
  constructor(name: string, help: string, labelNames: readonly string[]) {
    super('counter', name, help, labelNames, (labels) => new CounterSeries(labels), (s, out) => void out.push({ labels: { ...s.labels }, value: s.value }));
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

  reset(): void {
    this.counts.fill(0);
    this.sum = 0;
    this.count = 0;
  }
}

/** A histogram: observe() into a series. Exposed as prom-client's: per series, cumulative `le` buckets, +Inf, then _sum and _count. */
export class TallyHistogram extends Tally<BucketSeries> {
  constructor(name: string, help: string, labelNames: readonly string[], buckets: readonly number[]) {
    const bounds = [...buckets].sort((a, b) => a - b);
    const bucket = `${name}_bucket`;
    super('histogram', name, help, labelNames, (labels) => new BucketSeries(labels, bounds), (s, out) => {
      if (s.count === 0) return; // nothing observed yet: prom-client would not have the series either
      let acc = 0;
      for (let i = 0; i < bounds.length; i++) {
        acc += s.counts[i]!;
        out.push({ labels: { le: bounds[i]!, ...s.labels }, value: acc, metricName: bucket });
      }
      out.push({ labels: { le: '+Inf', ...s.labels }, value: s.count, metricName: bucket });
      out.push({ labels: { ...s.labels }, value: s.sum, metricName: `${name}_sum` });
      out.push({ labels: { ...s.labels }, value: s.count, metricName: `${name}_count` });
    });
  }
}
