/**
 * Config of the rate-limiting plugin: Kong's fields, names and defaults
 * (kong/plugins/rate-limiting/schema.lua, Kong 3.x; the shared `redis` record
 * and Kong's deprecated flat redis_* fields come from the PDK,
 * src/pdk/redis-config.ts), and Palisade's addition `algorithm`.
 */
import { Type, type Static } from '@sinclair/typebox';
import { Enum } from '../../pdk/index.ts';
import { periodLimitFields } from '../../pdk/ratelimit.ts';
import { RedisFlatFields, RedisSchema } from '../../pdk/redis-config.ts';

export const RateLimitingSchema = Type.Object(
  {
    ...periodLimitFields('HTTP requests'),
    limit_by: Enum(['consumer', 'credential', 'ip', 'service', 'header', 'path', 'consumer-group'], {
      default: 'consumer',
      description:
        'The entity that is used when aggregating the limits: consumer (falls back to the credential, then the client IP), credential, ip, service, header (header_name), path (path), consumer-group (the consumer\'s first group). Without that entity the client IP is used.',
    }),
    header_name: Type.Optional(Type.String({ minLength: 1, pattern: '^[A-Za-z0-9!#$%&\'*+.^_`|~-]+$', description: 'A string representing an HTTP header name (limit_by header).' })),
    path: Type.Optional(Type.String({ pattern: '^/', description: 'A string representing a URL path, such as /path/to/resource (limit_by path). Must start with a forward slash (/).' })),
    policy: Enum(['local', 'cluster', 'redis'], {
      default: 'local',
      description:
        "The rate-limiting policies to use for retrieving and incrementing the limits: local (this gateway; exact across its workers) or redis (shared by every gateway on one Redis). Kong's 'cluster' (its database) does not exist in Palisade: use redis.",
    }),
    fault_tolerant: Type.Boolean({
      default: true,
      description:
        'A boolean value that determines if the requests should be proxied even if Palisade has troubles connecting a third-party data store. If `true`, requests will be proxied anyway, effectively disabling the rate-limiting function until the data store is working again (a warning is logged). If `false`, then the clients will see `503` errors.',
    }),
    redis: RedisSchema,
    ...RedisFlatFields,
    hide_client_headers: Type.Boolean({ default: false, description: 'Optionally hide informative response headers.' }),
    error_code: Type.Integer({ minimum: 100, maximum: 599, default: 429, description: 'Set a custom error code to return when the rate limit is exceeded.' }),
    error_message: Type.String({ default: 'API rate limit exceeded', description: 'Set a custom error message to return when the rate limit is exceeded.' }),
    sync_rate: Type.Number({
      default: -1,
      description:
        'How often to sync counter data to the central data store. A value of -1 results in synchronous behavior. Accepted for Kong compatibility; Palisade is always synchronous with Redis (one atomic round trip per request).',
    }),
    algorithm: Enum(['sliding', 'fixed'], {
      default: 'sliding',
      description:
        "Palisade: sliding (weighs the previous window's count by how much of it still overlaps the last full window: no double burst at a window edge) or fixed (Kong's calendar windows: counts reset at each window start).",
    }),
  },
  { additionalProperties: false, description: 'Limit how many requests a client can make in a second, minute, hour, day, month or year.' },
);

export type RateLimitingConfig = Static<typeof RateLimitingSchema>;
