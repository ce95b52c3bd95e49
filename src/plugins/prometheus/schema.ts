/**
 * Config of the prometheus plugin: Kong's fields, names and defaults
 * (kong/plugins/prometheus/schema.lua), plus Palisade's decision_metrics.
 */
import { Type, type Static } from '@sinclair/typebox';

export const PrometheusSchema = Type.Object(
  {
    per_consumer: Type.Boolean({
      default: false,
      description: 'Fill the consumer label of kong_http_requests_total and kong_bandwidth_bytes (the consumer username, else its custom_id).',
    }),
    status_code_metrics: Type.Boolean({ default: false, description: 'Export kong_http_requests_total (requests by service, route, status code and source).' }),
    ai_metrics: Type.Boolean({ default: false, description: 'Accepted for Kong compatibility; Palisade has no AI proxy plugins, so nothing is exported.' }),
    latency_metrics: Type.Boolean({
      default: false,
      description: 'Export the histograms kong_kong_latency_ms (gateway time), kong_upstream_latency_ms and kong_request_latency_ms (total).',
    }),
    bandwidth_metrics: Type.Boolean({ default: false, description: 'Export kong_bandwidth_bytes (ingress and egress bytes by service and route).' }),
    upstream_health_metrics: Type.Boolean({
      default: false,
      description: 'Export kong_upstream_target_health (state of every target of the configured upstreams, read at scrape time).',
    }),
    decision_metrics: Type.Boolean({
      default: true,
      description: 'Palisade: export palisade_security_decisions_total (authentication, authorization, rate-limit and validation decisions by plugin and outcome).',
    }),
  },
  { additionalProperties: false, description: 'Metrics in Prometheus exposition format on /metrics of the status listener.' },
);

export type PrometheusConfig = Static<typeof PrometheusSchema>;
