/**
 * Config of the response-ratelimiting plugin: Kong's fields, names and
 * defaults (kong/plugins/response-ratelimiting/schema.lua, Kong 3.x; the
 * shared `redis` record and Kong's deprecated flat redis_* fields come from
 * the PDK, src/pdk/redis-config.ts).
 */
import { Type, type Static } from '@sinclair/typebox';
import { Enum } from '../../pdk/index.ts';
import { periodLimitFields } from '../../pdk/ratelimit.ts';
import { RedisFlatFields, RedisSchema } from '../../pdk/redis-config.ts';

const Quota = Type.Object(
  {
    ...periodLimitFields('units (as the upstream reports them)'),
  },
  { additionalProperties: false, description: 'The limits of one quota (at least one period; a longer period may not have a lower limit).' },
);

export const ResponseRateLimitingSchema = Type.Object(
  {
    header_name: Type.String({
      default: 'x-kong-limit',
      pattern: "^[A-Za-z0-9!#$%&'*+.^_`|~-]+$",
      description:
        'The name of the response header used to increment the counters: the upstream reports what a response consumed, e.g. `x-kong-limit: videos=2, images=1`. The header is removed before the response reaches the client. Any name works, e.g. `X-Palisade-Limit`.',
    }),
    limit_by: Enum(['consumer', 'credential', 'ip'], {
      default: 'consumer',
      description:
        'The entity that will be used when aggregating the limits: `consumer`, `credential`, `ip`. If the `consumer` or the `credential` cannot be determined, the system will always fallback to `ip`.',
    }),
    policy: Enum(['local', 'cluster', 'redis'], {
      default: 'local',
      description:
        "The rate-limiting policies to use for retrieving and incrementing the limits: local (this gateway; shared by its workers) or redis (shared by every gateway on one Redis). Kong's 'cluster' (its database) does not exist in Palisade: use redis.",
    }),
    fault_tolerant: Type.Boolean({
      default: true,
      description:
        'A boolean value that determines if the requests should be proxied even if Palisade has troubles connecting a third-party datastore. If `true`, requests will be proxied anyway, effectively disabling the rate-limiting function until the datastore is working again (a warning is logged). If `false`, then the clients will see `503` errors.',
    }),
    redis: RedisSchema,
    ...RedisFlatFields,
    block_on_first_violation: Type.Boolean({
      default: false,
      description:
        'A boolean value that determines if the requests should be blocked as soon as one limit is being exceeded. This will block requests that are supposed to consume other limits too.',
    }),
    hide_client_headers: Type.Boolean({ default: false, description: 'Optionally hide informative response headers.' }),
    limits: Type.Record(Type.String({ minLength: 1 }), Quota, {
      minProperties: 1,
      description:
        'A map that defines rate limits for the plugin: quota name (it becomes part of header names: letters, digits, - _ . ~ and the other token characters of RFC 9110) → its limits per second, minute, hour, day, month, year.',
    }),
  },
  {
    additionalProperties: false,
    description: 'Limit how much of named quotas a client consumes, as reported by the upstream in a response header.',
  },
);

export type ResponseRateLimitingConfig = Static<typeof ResponseRateLimitingSchema>;
export type QuotaConfig = Static<typeof Quota>;
