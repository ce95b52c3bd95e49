/**
 * Config of the opentelemetry plugin: Kong's fields, names and defaults
 * (kong/plugins/opentelemetry/schema.lua and typedefs.propagation, Kong 3.x).
 */
import { Type, type Static } from '@sinclair/typebox';
import { Enum, QueueSchema } from '../../pdk/index.ts';

/** Header formats Kong knows; Palisade implements w3c, b3 and b3-single (the others are refused). */
export const FORMATS = ['w3c', 'b3', 'b3-single', 'jaeger', 'ot', 'aws', 'gcp', 'datadog'] as const;
export const IMPLEMENTED = new Set<string>(['w3c', 'b3', 'b3-single']);

const Url = (description: string) => Type.String({ pattern: '^https?://[^\\s]+$', description });

/** Kong's opentelemetry queue: its queue parameters with max_batch_size 200. */
const OtelQueue = Type.Object(
  {
    ...QueueSchema.properties,
    max_batch_size: Type.Integer({ minimum: 1, maximum: 1000000, default: 200, description: 'Maximum number of spans sent in one OTLP request.' }),
  },
  { additionalProperties: false, default: {}, description: "Kong's queue parameters for the spans waiting to be exported: batching, bound (max_entries; the oldest spans are dropped and counted) and retries." },
);

export const OpentelemetrySchema = Type.Object(
  {
    traces_endpoint: Type.Optional(Url('OTLP/HTTP endpoint the traces are POSTed to (e.g. http://collector:4318/v1/traces), as OTLP JSON.')),
    endpoint: Type.Optional(Url('Deprecated in Kong (use traces_endpoint); accepted as traces_endpoint.')),
    logs_endpoint: Type.Optional(Url('Kong exports logs over OTLP here; Palisade exports traces only (use http-log for logs): setting it is refused.')),
    headers: Type.Optional(
      Type.Record(Type.String({ pattern: '^[!#$%&\'*+.^_`|~0-9A-Za-z-]+$' }), Type.String(), {
        description: 'The custom headers to be added in the HTTP request sent to the OTLP server (e.g. the authentication token of the APM backend).',
      }),
    ),
    resource_attributes: Type.Optional(
      Type.Record(Type.String({ minLength: 1 }), Type.String({ minLength: 1 }), {
        description: 'Resource attributes of every span (service.name defaults to palisade; service.version and service.instance.id are set).',
      }),
    ),
    queue: OtelQueue,
    batch_span_count: Type.Optional(Type.Integer({ description: 'Deprecated in Kong (use queue.max_batch_size): the number of spans to be sent in a single batch.' })),
    batch_flush_delay: Type.Optional(Type.Integer({ description: 'Deprecated in Kong (use queue.max_coalescing_delay): the delay, in seconds, between two consecutive batches.' })),
    connect_timeout: Type.Integer({ minimum: 0, maximum: 2147483646, default: 1000, description: 'Timeout in milliseconds for connecting to the OTLP server.' }),
    send_timeout: Type.Integer({ minimum: 0, maximum: 2147483646, default: 5000, description: 'Timeout in milliseconds for sending a batch to the OTLP server.' }),
    read_timeout: Type.Integer({ minimum: 0, maximum: 2147483646, default: 5000, description: "Timeout in milliseconds for the OTLP server's answer." }),
    http_response_header_for_traceid: Type.Optional(Type.String({ minLength: 1, description: 'Specifies a custom header for the `trace_id`. If set, the plugin sets the corresponding header in the response.' })),
    header_type: Enum(['preserve', 'ignore', 'b3', 'b3-single', 'w3c', 'jaeger', 'ot', 'aws', 'gcp', 'datadog'], {
      default: 'preserve',
      description: 'Deprecated in Kong (use propagation): used only when propagation.extract and propagation.inject are not set — preserve: extract any format, inject the incoming one; ignore: start new traces; a format: inject that one.',
    }),
    sampling_rate: Type.Optional(
      Type.Number({
        minimum: 0,
        maximum: 1,
        description:
          "Probability that a trace is sampled (decided on the trace id, so every node decides alike), unless the caller's decision is respected (respect_incoming_sampling). Default 1 (Kong takes the default from kong.conf).",
      }),
    ),
    respect_incoming_sampling: Enum(['not_sampled', 'always', 'never'], {
      default: 'not_sampled',
      description:
        "Palisade: which sampling decision of the caller (traceparent flags, X-B3-Sampled, b3) is kept. not_sampled (Kong's behaviour): a caller's \"not sampled\" is kept, a \"sampled\" goes through sampling_rate (a client cannot force tracing); always: the caller decides both ways (behind a trusted edge that samples); never: sampling_rate alone decides (a client can neither force nor avoid tracing).",
    }),
    propagation: Type.Object(
      {
        extract: Type.Optional(Type.Array(Enum([...FORMATS]), { description: 'Header formats used to extract tracing context from incoming requests; the first one found is used. Empty: never continue an incoming trace.' })),
        clear: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { description: 'Header names removed from the request after extraction (not sent upstream).' })),
        inject: Type.Optional(
          Type.Array(Enum(['preserve', ...FORMATS]), { description: 'Header formats used to inject tracing context upstream; preserve = the format of the incoming request (default_format when none). Empty: inject nothing.' }),
        ),
        default_format: Enum([...FORMATS], { default: 'w3c', description: 'The format injected with preserve when the request carried no tracing header.' }),
      },
      { additionalProperties: false, default: {}, description: 'Tracing context propagation (Kong typedefs.propagation).' },
    ),
  },
  { additionalProperties: false, description: 'Traces exported over OTLP/HTTP, W3C trace context propagation.' },
);

export type OpentelemetryConfig = Static<typeof OpentelemetrySchema>;
