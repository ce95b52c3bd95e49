/**
 * Config of the http-log plugin: Kong's fields, names and defaults
 * (kong/plugins/http-log/schema.lua, Kong 3.x with its `queue` record), plus
 * Palisade's `redact` and `ssl_verify`.
 */
import { Type, type Static } from '@sinclair/typebox';
import { CustomFieldsByLuaField, Enum, QueueSchema, RedactField } from '../../pdk/index.ts';

export const HttpLogSchema = Type.Object(
  {
    http_endpoint: Type.String({
      pattern: '^[Hh][Tt][Tt][Pp][Ss]?://',
      description: 'URL log batches are sent to (http or https; user:password@ in the URL becomes Basic authentication).',
    }),
    method: Enum(['POST', 'PUT', 'PATCH'], { default: 'POST', description: 'HTTP method of the requests to http_endpoint.' }),
    content_type: Enum(['application/json', 'application/json; charset=utf-8'], { default: 'application/json', description: 'Content-Type of the requests (JSON only).' }),
    timeout: Type.Number({ minimum: 0, default: 10000, description: 'Milliseconds to connect to the endpoint and to get its answer before a batch counts as failed (and is retried).' }),
    keepalive: Type.Number({ minimum: 0, default: 60000, description: 'Milliseconds an idle connection to the endpoint is kept open.' }),
    headers: Type.Optional(
      Type.Record(Type.String({ pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$" }), Type.String(), {
        description: 'Headers sent with every request to the endpoint (not Host, Content-Length or Content-Type).',
      }),
    ),
    queue: QueueSchema,
    retry_count: Type.Optional(Type.Integer({ description: 'Deprecated in Kong 3 (ignored: queue.max_retry_time bounds the retries).' })),
    queue_size: Type.Optional(Type.Integer({ minimum: 1, description: 'Deprecated in Kong 3: when set, used as queue.max_batch_size.' })),
    flush_timeout: Type.Optional(Type.Number({ minimum: 0, description: 'Deprecated in Kong 3: when set, used as queue.max_coalescing_delay (seconds).' })),
    custom_fields_by_lua: CustomFieldsByLuaField,
    ssl_verify: Type.Boolean({ default: true, description: 'Palisade: verify the certificate of an https endpoint (Kong follows its global TLS setting).' }),
    redact: RedactField,
  },
  { additionalProperties: false, description: 'Send the log record of every request, in batches, to an HTTP endpoint.' },
);

export type HttpLogConfig = Static<typeof HttpLogSchema>;
