/**
 * Config of the statsd plugin: Kong's fields, names and defaults
 * (kong/plugins/statsd/schema.lua, Kong 3.x).
 */
import { Type, type Static } from '@sinclair/typebox';
import { Enum, QueueSchema } from '../../pdk/index.ts';

export const METRIC_NAMES = [
  'kong_latency', 'latency', 'request_count', 'request_per_user', 'request_size', 'response_size', 'status_count',
  'status_count_per_user', 'unique_users', 'upstream_latency', 'status_count_per_workspace', 'status_count_per_user_per_route', 'shdict_usage',
] as const;
export const STAT_TYPES = ['counter', 'gauge', 'histogram', 'meter', 'set', 'timer'] as const;
const CONSUMER_IDENTIFIERS = ['consumer_id', 'custom_id', 'username'] as const;
const SERVICE_IDENTIFIERS = ['service_id', 'service_name', 'service_host', 'service_name_or_host'] as const;
const WORKSPACE_IDENTIFIERS = ['workspace_id', 'workspace_name'] as const;

const Metric = Type.Object(
  {
    name: Enum([...METRIC_NAMES], { description: "StatsD metric's name (see the plugin page for what each sends)." }),
    stat_type: Enum([...STAT_TYPES], { description: 'Determines what sort of event a metric represents (c, g, h, m, s, ms).' }),
    sample_rate: Type.Optional(Type.Number({ exclusiveMinimum: 0, description: 'Sampling rate (0 < rate ≤ 1; required for counter and gauge): the client sends this fraction of the events, marked @rate.' })),
    consumer_identifier: Type.Optional(Enum([...CONSUMER_IDENTIFIERS], { description: 'Authenticated user detail (default: consumer_identifier_default).' })),
    service_identifier: Type.Optional(Enum([...SERVICE_IDENTIFIERS], { description: 'Service detail (default: service_identifier_default).' })),
    workspace_identifier: Type.Optional(Enum([...WORKSPACE_IDENTIFIERS], { description: 'Workspace detail (default: workspace_identifier_default). Palisade has one workspace, "default".' })),
  },
  { additionalProperties: false, description: 'A metric sent for every logged request.' },
);

const m = (name: string, stat_type: string, sample_rate?: number) => ({ name, stat_type, ...(sample_rate === undefined ? {} : { sample_rate }) });

/** Kong's DEFAULT_METRICS. */
export const DEFAULT_METRICS = [
  m('request_count', 'counter', 1),
  m('latency', 'timer'),
  m('request_size', 'counter', 1),
  m('status_count', 'counter', 1),
  m('response_size', 'counter', 1),
  m('unique_users', 'set'),
  m('request_per_user', 'counter', 1),
  m('upstream_latency', 'timer'),
  m('kong_latency', 'timer'),
  m('status_count_per_user', 'counter', 1),
  m('status_count_per_workspace', 'counter', 1),
  m('status_count_per_user_per_route', 'counter', 1),
  m('shdict_usage', 'gauge', 1),
];

export const StatsdSchema = Type.Object(
  {
    host: Type.String({ default: 'localhost', minLength: 1, description: 'The IP address or hostname of StatsD server to send data to.' }),
    port: Type.Integer({ minimum: 0, maximum: 65535, default: 8125, description: 'The port of StatsD server to send data to.' }),
    prefix: Type.String({ default: 'kong', description: "String to prefix to each metric's name." }),
    metrics: Type.Array(Metric, { default: DEFAULT_METRICS, description: 'List of metrics to be logged.' }),
    allow_status_codes: Type.Optional(
      Type.Array(Type.String({ pattern: '^[0-9]+-[0-9]+$', description: 'A range of status codes, e.g. 200-299.' }), {
        description: 'List of status code ranges that are allowed to be logged in metrics (default: all).',
      }),
    ),
    udp_packet_size: Type.Number({
      minimum: 0,
      maximum: 65507,
      default: 0,
      description: "Combine UDP packet up to the size configured. If zero (0), don't combine the UDP packet. Must be a number between 0 and 65507 (inclusive).",
    }),
    use_tcp: Type.Boolean({ default: false, description: 'Use TCP instead of UDP.' }),
    hostname_in_prefix: Type.Boolean({ default: false, description: 'Include the `hostname` in the `prefix` for each metric name (prefix.node.<hostname with dots as _>).' }),
    consumer_identifier_default: Enum([...CONSUMER_IDENTIFIERS], { default: 'custom_id', description: "The default consumer identifier of metrics. This takes effect when a metric's consumer identifier is omitted." }),
    service_identifier_default: Enum([...SERVICE_IDENTIFIERS], {
      default: 'service_name_or_host',
      description: "The default service identifier of metrics. This takes effect when a metric's service identifier is omitted. service_host is the host the request was proxied to.",
    }),
    workspace_identifier_default: Enum([...WORKSPACE_IDENTIFIERS], { default: 'workspace_id', description: "The default workspace identifier of metrics. Palisade has one workspace: both identifiers are 'default'." }),
    retry_count: Type.Optional(Type.Integer({ description: 'Deprecated in Kong (use queue); accepted and ignored.' })),
    queue_size: Type.Optional(Type.Integer({ description: 'Deprecated in Kong (use queue); accepted and ignored.' })),
    flush_timeout: Type.Optional(Type.Number({ description: 'Deprecated in Kong (use queue); accepted and ignored.' })),
    tag_style: Type.Optional(
      Enum(['dogstatsd', 'influxdb', 'librato', 'signalfx'], {
        description: "Send metrics with tags (service, route, workspace, consumer, status) in this style instead of encoding them in the metric name. Default: no tags.",
      }),
    ),
    queue: QueueSchema,
  },
  { additionalProperties: false, description: 'Send request metrics to a StatsD (or DogStatsD, Telegraf…) server.' },
);

export type StatsdConfig = Static<typeof StatsdSchema>;
export type StatsdMetric = Static<typeof Metric>;
