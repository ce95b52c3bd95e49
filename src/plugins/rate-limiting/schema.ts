/**
 * Config of the rate-limiting plugin: Kong's fields, names and defaults
 * (kong/plugins/rate-limiting/schema.lua, Kong 3.x, and the shared `redis`
 * record of Kong 3.6+ with the Enterprise Sentinel / Cluster fields), Kong's
 * deprecated flat redis_* fields, and Palisade's additions (`algorithm`,
 * `redis.url`).
 */
import { Type, type Static } from '@sinclair/typebox';
import { Enum } from '../../pdk/index.ts';

const Limit = (period: string) =>
  Type.Optional(Type.Number({ exclusiveMinimum: 0, description: `The number of HTTP requests that can be made per ${period}.` }));

const Port = (description: string, def?: number) => Type.Integer({ minimum: 0, maximum: 65535, ...(def !== undefined ? { default: def } : {}), description });
const Timeout = (description: string, def?: number) => Type.Integer({ minimum: 0, maximum: 2147483646, ...(def !== undefined ? { default: def } : {}), description });

const RedisSchema = Type.Object(
  {
    url: Type.Optional(
      Type.String({
        pattern: '^rediss?://',
        description:
          'Palisade: the Redis server as a redis:// or rediss:// (TLS) URL, e.g. rediss://user:pass@redis.example.com:6380/2. Replaces host, port, username, password and database where the URL gives them.',
      }),
    ),
    host: Type.Optional(Type.String({ minLength: 1, description: 'A string representing a host name, such as example.com.' })),
    port: Port('An integer representing a port number between 0 and 65535, inclusive.', 6379),
    timeout: Timeout('Timeout in milliseconds for connecting to Redis and for each command (connect_timeout / read_timeout override it).', 2000),
    connect_timeout: Type.Optional(Timeout('Timeout in milliseconds for establishing a connection to Redis (default: timeout).')),
    send_timeout: Type.Optional(Timeout('Timeout in milliseconds for sending a command to Redis (accepted for Kong compatibility; Palisade bounds the whole command with read_timeout).')),
    read_timeout: Type.Optional(Timeout('Timeout in milliseconds for a reply from Redis (default: timeout).')),
    username: Type.Optional(
      Type.String({
        description: "Username to use for Redis connections. If undefined, ACL authentication won't be performed. This requires Redis v6.0.0+. To be compatible with Redis v5.x.y, you can set it to `default`.",
      }),
    ),
    password: Type.Optional(Type.String({ description: 'Password to use for Redis connections. If undefined, no AUTH commands are sent to Redis.' })),
    database: Type.Integer({ minimum: 0, default: 0, description: 'Database to use for the Redis connection when using the `redis` strategy' }),
    ssl: Type.Boolean({ default: false, description: 'If set to true, uses SSL to connect to Redis.' }),
    ssl_verify: Type.Boolean({
      default: false,
      description:
        "If set to true, verifies the validity of the server SSL certificate (against Node's trusted CAs, plus NODE_EXTRA_CA_CERTS). Kong's default is false; set it to true.",
    }),
    server_name: Type.Optional(Type.String({ minLength: 1, description: 'A string representing an SNI (server name indication) value for TLS.' })),
    sentinel_master: Type.Optional(Type.String({ minLength: 1, description: 'Sentinel master to use for Redis connections. Defining this value implies using Redis Sentinel.' })),
    sentinel_role: Type.Optional(
      Enum(['master', 'slave', 'any'], {
        description: "Sentinel role to use for Redis connections. Counters are written, so Palisade always talks to the master ('any' is read as master; 'slave' is refused).",
      }),
    ),
    sentinel_nodes: Type.Optional(
      Type.Array(
        Type.Object(
          {
            host: Type.String({ minLength: 1, default: '127.0.0.1', description: 'A string representing a host name, such as example.com.' }),
            port: Port('An integer representing a port number between 0 and 65535, inclusive.', 6379),
          },
          { additionalProperties: false, description: 'A Sentinel node.' },
        ),
        { minItems: 1, description: 'Sentinel node addresses to use for Redis connections when the `redis` strategy is defined. Defining this field implies using a Redis Sentinel.' },
      ),
    ),
    sentinel_username: Type.Optional(Type.String({ description: 'Sentinel username to authenticate with a Redis Sentinel instance. If undefined, ACL authentication won\'t be performed. This requires Redis v6.2.0+.' })),
    sentinel_password: Type.Optional(Type.String({ description: 'Sentinel password to authenticate with a Redis Sentinel instance. If undefined, no AUTH commands are sent to Redis Sentinels.' })),
    sentinel_addresses: Type.Optional(
      Type.Array(Type.String({ pattern: '^[^:]+:[0-9]+$', description: 'host:port' }), { minItems: 1, description: 'Deprecated (Kong): sentinel nodes as "host:port" strings; use sentinel_nodes.' }),
    ),
    cluster_nodes: Type.Optional(
      Type.Array(
        Type.Object(
          {
            ip: Type.String({ minLength: 1, default: '127.0.0.1', description: 'A string representing a host name, such as example.com.' }),
            port: Port('An integer representing a port number between 0 and 65535, inclusive.', 6379),
          },
          { additionalProperties: false, description: 'A Redis Cluster node.' },
        ),
        { minItems: 1, description: 'Cluster addresses to use for Redis connections when the `redis` strategy is defined. Defining this field implies using a Redis Cluster.' },
      ),
    ),
    cluster_addresses: Type.Optional(
      Type.Array(Type.String({ pattern: '^[^:]+:[0-9]+$', description: 'ip:port' }), { minItems: 1, description: 'Deprecated (Kong): cluster nodes as "ip:port" strings; use cluster_nodes.' }),
    ),
    cluster_max_redirections: Type.Integer({ minimum: 0, default: 5, description: 'Maximum retry attempts for redirection.' }),
    keepalive_pool_size: Type.Optional(
      Type.Integer({ minimum: 1, description: 'Accepted for Kong compatibility; Palisade multiplexes all commands of a worker on one connection per Redis.' }),
    ),
    keepalive_backlog: Type.Optional(Type.Integer({ minimum: 0, description: 'Accepted for Kong compatibility (see keepalive_pool_size).' })),
    cloud_authentication: Type.Optional(
      Type.Object(
        {},
        {
          additionalProperties: true,
          description: "Kong Enterprise's cloud-provider authentication (AWS, GCP, Azure): accepted when empty (as exports write it); Palisade does not implement it.",
        },
      ),
    ),
    connection_is_proxied: Type.Optional(
      Type.Boolean({ description: 'If the connection to Redis is proxied (e.g. Envoy), set it `true`. Set the `host` and `port` to point to the proxy address.' }),
    ),
  },
  { additionalProperties: false, default: {}, description: 'Redis configuration (policy redis).' },
);

/** Kong's deprecated flat fields (translated into `redis`; they win over it, as in Kong). */
const Flat = {
  redis_host: Type.Optional(Type.String({ minLength: 1, description: 'Deprecated (Kong): use redis.host.' })),
  redis_port: Type.Optional(Port('Deprecated (Kong): use redis.port.')),
  redis_password: Type.Optional(Type.String({ description: 'Deprecated (Kong): use redis.password.' })),
  redis_username: Type.Optional(Type.String({ description: 'Deprecated (Kong): use redis.username.' })),
  redis_ssl: Type.Optional(Type.Boolean({ description: 'Deprecated (Kong): use redis.ssl.' })),
  redis_ssl_verify: Type.Optional(Type.Boolean({ description: 'Deprecated (Kong): use redis.ssl_verify.' })),
  redis_server_name: Type.Optional(Type.String({ minLength: 1, description: 'Deprecated (Kong): use redis.server_name.' })),
  redis_timeout: Type.Optional(Timeout('Deprecated (Kong): use redis.timeout.')),
  redis_database: Type.Optional(Type.Integer({ minimum: 0, description: 'Deprecated (Kong): use redis.database.' })),
};

export const RateLimitingSchema = Type.Object(
  {
    second: Limit('second'),
    minute: Limit('minute'),
    hour: Limit('hour'),
    day: Limit('day'),
    month: Limit('month'),
    year: Limit('year'),
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
    ...Flat,
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
export type RedisConfig = Static<typeof RedisSchema>;
export const PERIODS = ['second', 'minute', 'hour', 'day', 'month', 'year'] as const;
export type Period = (typeof PERIODS)[number];
