/**
 * prometheus — Kong's plugin (kong/plugins/prometheus/{handler,exporter}.lua):
 * per-request metrics recorded in the log phase, served with the gateway's
 * own metrics (config version and reloads, Node process metrics) on GET
 * /metrics of the status listener, which needs no admin token (like Kong's
 * Status API). Metric names and labels are Kong's, so Kong's Grafana
 * dashboards keep working; what Kong does not have is named palisade_*.
 * Labels carry only service, route and consumer names and bounded values
 * (never a raw path), so their number is bounded by the config.
 */
import { definePlugin, type HistogramSeries, type PdkContext, type PluginServices, type TallySeries } from '../../pdk/index.ts';
import { PrometheusSchema, type PrometheusConfig } from './schema.ts';

/** Kong's buckets (exporter.lua), with finer ones below 1 ms for the gateway's own time. */
const KONG_LATENCY_BUCKETS = [0.1, 0.25, 0.5, 1, 2, 5, 7, 10, 15, 20, 30, 50, 75, 100, 200, 500, 750, 1000];
const UPSTREAM_LATENCY_BUCKETS = [25, 50, 80, 100, 250, 400, 700, 1000, 2000, 5000, 10000, 30000, 60000];
/** (service, route) pairs, consumers per pair and status codes per consumer whose series are kept at most. */
const MAX_CACHED = 10_000;
const HEALTH_STATES = ['healthchecks_off', 'healthy', 'unhealthy', 'dns_error'] as const;

function create(config: PrometheusConfig, services: PluginServices) {
  const m = services.metrics;
  const errors = m.counter('kong_nginx_metric_errors_total', 'Number of errors while recording metrics', []);
  const requests = config.status_code_metrics
    ? m.tallyCounter('kong_http_requests_total', 'HTTP status codes per consumer/service/route in Kong', ['service', 'route', 'code', 'source', 'consumer'])
    : null;
  const latency = config.latency_metrics
    ? {
        kong: m.tallyHistogram('kong_kong_latency_ms', 'Latency added by Kong and enabled plugins for each service/route in Kong', ['service', 'route'], KONG_LATENCY_BUCKETS),
        upstream: m.tallyHistogram('kong_upstream_latency_ms', 'Latency added by upstream response for each service/route in Kong', ['service', 'route'], UPSTREAM_LATENCY_BUCKETS),
        request: m.tallyHistogram('kong_request_latency_ms', 'Total latency incurred during requests for each service/route in Kong', ['service', 'route'], UPSTREAM_LATENCY_BUCKETS),
      }
    : null;
  const bandwidth = config.bandwidth_metrics
    ? m.tallyCounter('kong_bandwidth_bytes', 'Total bandwidth (ingress/egress) throughput in bytes', ['service', 'route', 'direction', 'consumer'])
    : null;
  const decisions = config.decision_metrics
    ? m.tallyCounter(
        'palisade_security_decisions_total',
        'Security decisions (authenticated, anonymous, deny, detect, allow) by the plugin that took them, per service/route',
        ['service', 'route', 'plugin', 'outcome'],
      )
    : null;
  if (config.upstream_health_metrics) {
    m.gauge(
      'kong_upstream_target_health',
      'Health status of targets of upstream. States = healthchecks_off|healthy|unhealthy|dns_error, value is 1 when state is populated.',
      ['upstream', 'target', 'address', 'state', 'subsystem'],
      {
        aggregator: 'max', // across workers: 1 when any worker sees the target in that state
        fill(gauge) {
          for (const t of m.upstreamTargets()) {
            for (const state of HEALTH_STATES) gauge.set({ upstream: t.upstream, target: t.target, address: t.address, state, subsystem: 'http' }, t.state === state ? 1 : 0);
          }
        },
      },
    );
  }
  const perConsumer = config.per_consumer;

  /**
   * A (service, route) pair's series, each looked up on its first use and kept (labels come from the config:
   * bounded). A series exists once something was counted in it, as with prom-client's inc()/observe().
   */
  class RouteSeries {
    readonly service: string;
    readonly route: string;
    request: HistogramSeries | null = null;
    upstream: HistogramSeries | null = null;
    kong: HistogramSeries | null = null;
    /** Per consumer label. */
    readonly consumers = new Map<string, ConsumerSeries>();
    /** Security decisions by plugin, then outcome. */
    readonly decisions = new Map<string, Map<string, TallySeries>>();
    constructor(service: string, route: string) {
      this.service = service;
      this.route = route;
    }
    consumer(consumer: string): ConsumerSeries {
      let c = this.consumers.get(consumer);
      if (c === undefined) {
        c = { consumer, codes: new Map(), ingress: null, egress: null };
        if (this.consumers.size < MAX_CACHED) this.consumers.set(consumer, c);
      }
      return c;
    }
    decision(plugin: string, outcome: string): TallySeries {
      let byOutcome = this.decisions.get(plugin);
      if (byOutcome === undefined && this.decisions.size < MAX_CACHED) this.decisions.set(plugin, (byOutcome = new Map()));
      let series = byOutcome?.get(outcome);
      if (series === undefined) {
        series = decisions!.series({ service: this.service, route: this.route, plugin, outcome });
        byOutcome?.set(outcome, series);
      }
      return series;
    }
  }
  interface ConsumerSeries {
    readonly consumer: string;
    /** Status counts by code × 2 + (1 when the upstream answered). */
    readonly codes: Map<number, TallySeries>;
    ingress: TallySeries | null;
    egress: TallySeries | null;
  }
  /** By the route's config entity (a route's service is fixed): no key is built per request. */
  const byRoute = new WeakMap<object, RouteSeries>();
  let noRoute: RouteSeries | null = null;

  function routeSeries(ctx: PdkContext): RouteSeries {
    const rt = ctx.route;
    let r = rt === null ? noRoute : byRoute.get(rt);
    if (r === undefined || r === null) {
      const svc = ctx.service;
      r = new RouteSeries(svc === null ? '' : (svc.name ?? svc.host ?? svc.id), rt === null ? '' : (rt.name ?? rt.id)); // Kong: name, else host
      if (rt === null) noRoute = r;
      else byRoute.set(rt, r);
    }
    return r;
  }

  function record(ctx: PdkContext): void {
    const svc = ctx.service;
    const r = routeSeries(ctx);
    const { service, route } = r;
    if (decisions !== null) {
      const list = ctx.decisions;
      for (let i = 0; i < list.length; i++) r.decision(list[i]!.plugin, list[i]!.outcome).value++;
    }
    if (svc === null) return; // Kong records nothing for requests that matched no service
    const ct = ctx.consumer;
    const c = r.consumer(perConsumer && ct !== null ? (ct.username ?? ct.custom_id ?? '') : '');
    const consumer = c.consumer;
    const res = ctx.response;
    if (requests !== null) {
      const upstream = res.source === 'upstream';
      const code = res.status * 2 + (upstream ? 1 : 0);
      let count = c.codes.get(code);
      if (count === undefined) {
        count = requests.series({ service, route, code: String(res.status), source: upstream ? 'service' : 'kong', consumer });
        if (c.codes.size < MAX_CACHED) c.codes.set(code, count);
      }
      count.value++;
    }
    if (latency !== null) {
      const t = ctx.timings;
      (r.request ??= latency.request.series({ service, route })).observe(t.total);
      if (t.upstreamStart >= 0) (r.upstream ??= latency.upstream.series({ service, route })).observe(t.upstream);
      (r.kong ??= latency.kong.series({ service, route })).observe(t.gateway);
    }
    if (bandwidth !== null) {
      if (ctx.bytesReceived > 0) (c.ingress ??= bandwidth.series({ service, route, direction: 'ingress', consumer })).value += ctx.bytesReceived;
      if (ctx.bytesSent > 0) (c.egress ??= bandwidth.series({ service, route, direction: 'egress', consumer })).value += ctx.bytesSent;
    }
  }

  return {
    log(ctx: PdkContext): void {
      try {
        record(ctx);
      } catch (err) {
        errors.inc();
        services.logger.error({ err, request_id: ctx.requestId }, 'prometheus: recording metrics failed');
      }
    },
  };
}

export default definePlugin({
  name: 'prometheus',
  priority: 13,
  description: "Prometheus metrics (Kong's prometheus): requests, latencies, bandwidth, upstream health and security decisions on /metrics.",
  schema: PrometheusSchema,
  create,
});
