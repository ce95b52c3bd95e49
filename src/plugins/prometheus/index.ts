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
import { definePlugin, type PdkContext, type PluginServices } from '../../pdk/index.ts';
import { PrometheusSchema, type PrometheusConfig } from './schema.ts';

/** Kong's buckets (exporter.lua), with finer ones below 1 ms for the gateway's own time. */
const KONG_LATENCY_BUCKETS = [0.1, 0.25, 0.5, 1, 2, 5, 7, 10, 15, 20, 30, 50, 75, 100, 200, 500, 750, 1000];
const UPSTREAM_LATENCY_BUCKETS = [25, 50, 80, 100, 250, 400, 700, 1000, 2000, 5000, 10000, 30000, 60000];
/** (service, route) pairs whose histogram children are kept. */
const MAX_CACHED = 10_000;
const HEALTH_STATES = ['healthchecks_off', 'healthy', 'unhealthy', 'dns_error'] as const;

function create(config: PrometheusConfig, services: PluginServices) {
  const m = services.metrics;
  const errors = m.counter('kong_nginx_metric_errors_total', 'Number of errors while recording metrics', []);
  const requests = config.status_code_metrics
    ? m.counter('kong_http_requests_total', 'HTTP status codes per consumer/service/route in Kong', ['service', 'route', 'code', 'source', 'consumer'])
    : null;
  const latency = config.latency_metrics
    ? {
        kong: m.histogram('kong_kong_latency_ms', 'Latency added by Kong and enabled plugins for each service/route in Kong', ['service', 'route'], KONG_LATENCY_BUCKETS),
        upstream: m.histogram('kong_upstream_latency_ms', 'Latency added by upstream response for each service/route in Kong', ['service', 'route'], UPSTREAM_LATENCY_BUCKETS),
        request: m.histogram('kong_request_latency_ms', 'Total latency incurred during requests for each service/route in Kong', ['service', 'route'], UPSTREAM_LATENCY_BUCKETS),
      }
    : null;
  const bandwidth = config.bandwidth_metrics
    ? m.counter('kong_bandwidth_bytes', 'Total bandwidth (ingress/egress) throughput in bytes', ['service', 'route', 'direction', 'consumer'])
    : null;
  const decisions = config.decision_metrics
    ? m.counter(
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
  /** The latency histograms' children per (service, route): no label objects per request. Bounded (labels come from the config). */
  type Child = { observe(value: number): void };
  const children = new Map<string, { request: Child; upstream: Child; kong: Child }>();

  function record(ctx: PdkContext): void {
    const svc = ctx.service;
    const rt = ctx.route;
    const service = svc === null ? '' : (svc.name ?? svc.id);
    const route = rt === null ? '' : (rt.name ?? rt.id);
    if (decisions !== null) {
      const list = ctx.decisions;
      for (let i = 0; i < list.length; i++) decisions.inc({ service, route, plugin: list[i]!.plugin, outcome: list[i]!.outcome });
    }
    if (svc === null) return; // Kong records nothing for requests that matched no service
    const c = ctx.consumer;
    const consumer = perConsumer && c !== null ? (c.username ?? c.custom_id ?? '') : '';
    const res = ctx.response;
    if (requests !== null) requests.inc({ service, route, code: String(res.status), source: res.source === 'upstream' ? 'service' : 'kong', consumer });
    if (latency !== null) {
      const t = ctx.timings;
      const key = `${service}\u0000${route}`;
      let h = children.get(key);
      if (h === undefined) {
        h = { request: latency.request.labels(service, route), upstream: latency.upstream.labels(service, route), kong: latency.kong.labels(service, route) };
        if (children.size < MAX_CACHED) children.set(key, h);
      }
      h.request.observe(t.total);
      if (t.upstreamStart >= 0) h.upstream.observe(t.upstream);
      h.kong.observe(t.gateway);
    }
    if (bandwidth !== null) {
      const ingress = ctx.bytesReceived;
      if (ingress > 0) bandwidth.inc({ service, route, direction: 'ingress', consumer }, ingress);
      const egress = ctx.bytesSent;
      if (egress > 0) bandwidth.inc({ service, route, direction: 'egress', consumer }, egress);
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
