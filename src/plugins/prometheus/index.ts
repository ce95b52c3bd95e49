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

  /** A (service, route) pair's series, looked up once (labels come from the config: bounded). */
  interface RouteSeries {
    readonly service: string;
    readonly route: string;
    readonly request: HistogramSeries | null;
    readonly upstream: HistogramSeries | null;
    readonly kong: HistogramSeries | null;
    /** Per consumer label: status counts by code × 2 + (1 when the upstream answered), and bandwidth. */
    readonly consumers: Map<string, ConsumerSeries>;
  }
  interface ConsumerSeries {
    readonly codes: Map<number, TallySeries>;
    readonly ingress: TallySeries | null;
    readonly egress: TallySeries | null;
  }
  const cache = new Map<string, RouteSeries>();

  function routeSeries(service: string, route: string): RouteSeries {
    const key = `${service}\u0000${route}`;
    let r = cache.get(key);
    if (r === undefined) {
      const labels = { service, route };
      r = {
        service, route,
        request: latency?.request.series(labels) ?? null,
        upstream: latency?.upstream.series(labels) ?? null,
        kong: latency?.kong.series(labels) ?? null,
        consumers: new Map(),
      };
      if (cache.size < MAX_CACHED) cache.set(key, r);
    }
    return r;
  }

  function consumerSeries(r: RouteSeries, consumer: string): ConsumerSeries {
    let c = r.consumers.get(consumer);
    if (c === undefined) {
      const { service, route } = r;
      c = {
        codes: new Map(),
        ingress: bandwidth?.series({ service, route, direction: 'ingress', consumer }) ?? null,
        egress: bandwidth?.series({ service, route, direction: 'egress', consumer }) ?? null,
      };
      if (r.consumers.size < MAX_CACHED) r.consumers.set(consumer, c);
    }
    return c;
  }

  function record(ctx: PdkContext): void {
    const svc = ctx.service;
    const rt = ctx.route;
    const service = svc === null ? '' : (svc.name ?? svc.id);
    const route = rt === null ? '' : (rt.name ?? rt.id);
    if (decisions !== null) {
      const list = ctx.decisions;
      for (let i = 0; i < list.length; i++) decisions.series({ service, route, plugin: list[i]!.plugin, outcome: list[i]!.outcome }).value++;
    }
    if (svc === null) return; // Kong records nothing for requests that matched no service
    const r = routeSeries(service, route);
    const ct = ctx.consumer;
    const c = consumerSeries(r, perConsumer && ct !== null ? (ct.username ?? ct.custom_id ?? '') : '');
    const res = ctx.response;
    if (requests !== null) {
      const upstream = res.source === 'upstream';
      const code = res.status * 2 + (upstream ? 1 : 0);
      let count = c.codes.get(code);
      if (count === undefined) {
        count = requests.series({ service, route, code: String(res.status), source: upstream ? 'service' : 'kong', consumer: perConsumer && ct !== null ? (ct.username ?? ct.custom_id ?? '') : '' });
        if (c.codes.size < MAX_CACHED) c.codes.set(code, count);
      }
      count.value++;
    }
    const t = ctx.timings;
    r.request?.observe(t.total);
    if (t.upstreamStart >= 0) r.upstream?.observe(t.upstream);
    r.kong?.observe(t.gateway);
    if (c.ingress !== null && ctx.bytesReceived > 0) c.ingress.value += ctx.bytesReceived;
    if (c.egress !== null && ctx.bytesSent > 0) c.egress.value += ctx.bytesSent;
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
