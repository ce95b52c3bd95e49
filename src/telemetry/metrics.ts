/**
 * The gateway's metrics: one prom-client Registry per gateway process, shared
 * by every config version (a reload keeps the values), served on /metrics of
 * the status listener. Plugins reach it through the PDK (`services.metrics`, a
 * view scoped to their config version); the core adds the config metrics and
 * Node's process metrics. With cluster workers, the primary asks every worker
 * for its registry (prom-client's AggregatorRegistry: counters and histograms
 * summed, gauges by their declared aggregator) and appends its own metrics.
 */
import cluster from 'node:cluster';
import { AggregatorRegistry, collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { MetricAggregator, MetricsService, UpstreamTargetHealth } from '../pdk/index.ts';
import type { Balancer } from '../core/balancer.ts';
import { TallyCounter, TallyHistogram } from './tally.ts';

type Fill = (gauge: Gauge<string>) => void;
type AnyMetric = Counter<string> | Gauge<string> | Histogram<string>;

const sameList = (a: readonly (string | number)[], b: readonly (string | number)[]) => a.length === b.length && a.every((v, i) => v === b[i]);

export class GatewayMetrics {
  readonly registry = new Registry();
  /** Per gauge name: the fill functions of the config versions in use (run at each scrape). */
  readonly #fills = new Map<string, Set<Fill>>();
  readonly #shapes = new Map<string, { type: string; labels: readonly string[]; buckets?: readonly number[] }>();

  static #detached: GatewayMetrics | null = null;
  /** Metrics nobody serves: for configs compiled only to be checked (palisade config validate). */
  static detached(): GatewayMetrics {
    return (GatewayMetrics.#detached ??= new GatewayMetrics({ processMetrics: false }));
  }

  /** `processMetrics`: Node's process metrics (prom-client's default metrics: CPU, memory, event loop lag, GC). */
  constructor(opts: { processMetrics?: boolean } = {}) {
    if (opts.processMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }

  #existing(name: string, type: string, labels: readonly string[], buckets?: readonly number[]): AnyMetric | null {
    const shape = this.#shapes.get(name);
    if (shape === undefined) {
      this.#shapes.set(name, { type, labels: [...labels], buckets: buckets && [...buckets] });
      return null;
    }
    if (shape.type !== type || !sameList(shape.labels, labels) || (buckets !== undefined && !sameList(shape.buckets ?? [], buckets))) {
      throw new Error(`metric ${name} is already defined as a ${shape.type} with labels [${shape.labels.join(', ')}]`);
    }
    return this.registry.getSingleMetric(name) as AnyMetric;
  }

  /** Get or create a counter (same name, same labels = the same metric). */
  counter(name: string, help: string, labelNames: readonly string[], collect?: (c: Counter<string>) => void): Counter<string> {
    const hit = this.#existing(name, 'counter', labelNames);
    if (hit !== null) return hit as Counter<string>;
    return new Counter({
      name, help, labelNames: [...labelNames], registers: [this.registry],
      ...(collect ? { collect(this: Counter<string>) { collect(this); } } : {}),
    });
  }

  histogram(name: string, help: string, labelNames: readonly string[], buckets: readonly number[]): Histogram<string> {
    const hit = this.#existing(name, 'histogram', labelNames, buckets);
    if (hit !== null) return hit as Histogram<string>;
    return new Histogram({ name, help, labelNames: [...labelNames], buckets: [...buckets], registers: [this.registry] });
  }

  /** Get or create a counter for the hot path (tally.ts). */
  tallyCounter(name: string, help: string, labelNames: readonly string[]): TallyCounter {
    const hit = this.#existing(name, 'tally counter', labelNames);
    if (hit !== null) return hit as unknown as TallyCounter;
    const c = new TallyCounter(name, help, [...labelNames]);
    this.registry.registerMetric(c as unknown as AnyMetric);
    return c;
  }

  /** Get or create a histogram for the hot path (tally.ts). */
  tallyHistogram(name: string, help: string, labelNames: readonly string[], buckets: readonly number[]): TallyHistogram {
    const hit = this.#existing(name, 'tally histogram', labelNames, buckets);
    if (hit !== null) return hit as unknown as TallyHistogram;
    const h = new TallyHistogram(name, help, [...labelNames], buckets);
    this.registry.registerMetric(h as unknown as AnyMetric);
    return h;
  }

  /** A gauge; with fills registered (see scope()), it is cleared and filled by them at each scrape. */
  gauge(name: string, help: string, labelNames: readonly string[], aggregator: MetricAggregator = 'sum'): Gauge<string> {
    const hit = this.#existing(name, 'gauge', labelNames);
    if (hit !== null) return hit as Gauge<string>;
    const fills = this.#fills;
    return new Gauge({
      name, help, labelNames: [...labelNames], aggregator, registers: [this.registry],
      collect(this: Gauge<string>) {
        const set = fills.get(name);
        if (set === undefined) return;
        this.reset();
        for (const fill of set) fill(this);
      },
    });
  }

  /** Fill gauge `name` at each scrape (after clearing it) until the returned function is called. */
  fill(name: string, fn: Fill): () => void {
    let set = this.#fills.get(name);
    if (set === undefined) this.#fills.set(name, (set = new Set()));
    set.add(fn);
    return () => void set.delete(fn);
  }

  /**
   * The view plugins of one config version get (PluginServices.metrics).
   * `release()` (when the version is retired) removes its gauge fills.
   */
  scope(upstreams: () => readonly UpstreamTargetHealth[]): MetricsService & { release(): void } {
    const removers: (() => void)[] = [];
    return {
      counter: (name, help, labels) => this.counter(name, help, labels),
      histogram: (name, help, labels, buckets) => this.histogram(name, help, labels, buckets),
      tallyCounter: (name, help, labels) => this.tallyCounter(name, help, labels),
      tallyHistogram: (name, help, labels, buckets) => this.tallyHistogram(name, help, labels, buckets),
      gauge: (name, help, labels, options) => {
        const g = this.gauge(name, help, labels, options?.aggregator);
        if (options?.fill) removers.push(this.fill(name, options.fill));
        return g;
      },
      upstreamTargets: upstreams,
      release: () => {
        for (const remove of removers.splice(0)) remove();
      },
    };
  }

  /** The exposition text of this process. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

/** What the config metrics read (the gateway's or the cluster primary's counts). */
export interface ConfigSource {
  readonly version: string;
  readonly reloads: number;
  readonly reloadFailures: number;
}

/**
 * palisade_config_info{version}, palisade_config_reloads_total and
 * palisade_config_reload_failures_total, read at scrape time. Registered once
 * per gateway: by the single process, or by the cluster primary (the workers
 * apply what the primary loaded and do not count reloads themselves).
 */
export function registerConfigMetrics(m: GatewayMetrics, source: () => ConfigSource): void {
  m.counter('palisade_config_reloads_total', 'Config reloads applied (file watch, SIGHUP, admin API).', [], (c) => {
    c.reset();
    c.inc(source().reloads);
  });
  m.counter('palisade_config_reload_failures_total', 'Config reloads refused (invalid file or config); the running config stayed.', [], (c) => {
    c.reset();
    c.inc(source().reloadFailures);
  });
  m.gauge('palisade_config_info', 'The config version (hash) running: value 1.', ['version'], 'max');
  m.fill('palisade_config_info', (g) => g.set({ version: source().version }, 1));
}

/** Health of the targets of the configured upstreams (Kong's upstream_target_health states). */
export function upstreamTargetHealth(balancers: ReadonlyMap<string, Balancer>): UpstreamTargetHealth[] {
  const out: UpstreamTargetHealth[] = [];
  for (const b of balancers.values()) {
    const hc = b.config?.healthchecks;
    const checked =
      hc !== undefined &&
      (hc.active.healthy.interval > 0 || hc.active.unhealthy.interval > 0 ||
        hc.passive.unhealthy.tcp_failures > 0 || hc.passive.unhealthy.timeouts > 0 || hc.passive.unhealthy.http_failures > 0);
    for (const t of b.targets) {
      out.push({ upstream: b.name, target: t.address, address: t.address, state: !checked ? 'healthchecks_off' : t.healthy ? 'healthy' : 'unhealthy' });
    }
  }
  return out;
}

/**
 * Cluster: in a worker, answer the primary's requests with this registry; in
 * the primary, return a function giving the whole gateway's exposition text
 * (every worker's metrics aggregated, then the primary's own).
 */
export function serveClusterWorker(m: GatewayMetrics): void {
  new AggregatorRegistry(); // installs the worker's answer to the primary's requests (idempotent)
  AggregatorRegistry.setRegistries([m.registry]);
}

export function clusterMetrics(primary: GatewayMetrics): () => Promise<string> {
  if (!cluster.isPrimary) throw new Error('clusterMetrics() runs in the cluster primary');
  const aggregator = new AggregatorRegistry();
  return async () => {
    const [workers, own] = await Promise.all([aggregator.clusterMetrics(), primary.text()]);
    return workers.endsWith('\n') || workers === '' ? workers + own : `${workers}\n${own}`;
  };
}
