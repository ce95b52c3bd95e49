/**
 * Kong's `redis` record (Kong 3.6+, with the Enterprise Sentinel / Cluster
 * fields), Kong's deprecated flat redis_* fields, Palisade's `redis.url`, and
 * their translation into the settings `services.redis()` takes: shared by the
 * plugins with a redis policy (rate-limiting, response-ratelimiting).
 */
import { Type, type Static } from '@sinclair/typebox';
import type { RedisSettings } from './index.ts';
import { Enum } from './schema.ts';

const Port = (description: string, def?: number) => Type.Integer({ minimum: 0, maximum: 65535, ...(def !== undefined ? { default: def } : {}), description });
const Timeout = (description: string, def?: number) => Type.Integer({ minimum: 0, maximum: 2147483646, ...(def !== undefined ? { default: def } : {}), description });

export const RedisSchema = Type.Object(
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
export const RedisFlatFields = {
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

export type RedisConfig = Static<typeof RedisSchema>;

/** A plugin config carrying the redis settings: `policy`, the `redis` record and the flat fields. */
export interface RedisConfigured {
  readonly policy: string;
  readonly redis: RedisConfig;
  readonly redis_host?: string;
  readonly redis_port?: number;
  readonly redis_password?: string;
  readonly redis_username?: string;
  readonly redis_ssl?: boolean;
  readonly redis_ssl_verify?: boolean;
  readonly redis_server_name?: string;
  readonly redis_timeout?: number;
  readonly redis_database?: number;
}

function hostPort(s: string): { host: string; port: number } {
  const i = s.lastIndexOf(':');
  return { host: s.slice(0, i), port: Number(s.slice(i + 1)) };
}

/** Kong's redis record after the flat fields and shorthands are applied. */
function mergedRedis(config: RedisConfigured) {
  const r = { ...config.redis };
  if (config.redis_host !== undefined) r.host = config.redis_host;
  if (config.redis_port !== undefined) r.port = config.redis_port;
  if (config.redis_password !== undefined) r.password = config.redis_password;
  if (config.redis_username !== undefined) r.username = config.redis_username;
  if (config.redis_ssl !== undefined) r.ssl = config.redis_ssl;
  if (config.redis_ssl_verify !== undefined) r.ssl_verify = config.redis_ssl_verify;
  if (config.redis_server_name !== undefined) r.server_name = config.redis_server_name;
  if (config.redis_timeout !== undefined) r.timeout = config.redis_timeout;
  if (config.redis_database !== undefined) r.database = config.redis_database;
  if (r.sentinel_nodes === undefined && r.sentinel_addresses !== undefined) r.sentinel_nodes = r.sentinel_addresses.map(hostPort);
  if (r.cluster_nodes === undefined && r.cluster_addresses !== undefined) r.cluster_nodes = r.cluster_addresses.map((a) => ({ ip: hostPort(a).host, port: hostPort(a).port }));
  return r;
}

/** Kong's entity checks of the redis settings (and Palisade's), or null. */
export function redisConfigError(config: RedisConfigured): string | null {
  const r = mergedRedis(config);
  const sentinel = r.sentinel_master !== undefined || r.sentinel_nodes !== undefined;
  const cluster = r.cluster_nodes !== undefined;
  if (r.url !== undefined) {
    try {
      new URL(r.url);
    } catch {
      return 'redis.url is not a valid URL (redis://[user:password@]host[:port][/database] or rediss://…)';
    }
  }
  if (sentinel && (r.sentinel_master === undefined || r.sentinel_nodes === undefined)) return 'redis.sentinel_master and redis.sentinel_nodes must be set together';
  const cloud = r.cloud_authentication as Record<string, unknown> | undefined;
  if (cloud !== undefined && Object.keys(cloud).length > 0) return 'redis.cloud_authentication is not supported by Palisade: use username / password (or a rediss:// url)';
  if (r.sentinel_role === 'slave') return "redis.sentinel_role 'slave' cannot be used: rate limiting writes its counters, so it talks to the master";
  if (sentinel && cluster) return 'redis.cluster_nodes and redis.sentinel_* are mutually exclusive';
  if (cluster && r.database !== 0) return 'redis.database must be 0 with redis.cluster_nodes (a Redis Cluster has only database 0)';
  if (config.policy === 'redis' && r.host === undefined && r.url === undefined && !sentinel && !cluster) {
    return "redis.host is required when policy is 'redis' (or redis.url, redis.sentinel_master with redis.sentinel_nodes, or redis.cluster_nodes)";
  }
  return null;
}

/** What the Redis store connects with. */
export function redisSettings(config: RedisConfigured): RedisSettings {
  const r = mergedRedis(config);
  const s: Record<string, unknown> = {
    url: r.url,
    host: r.host,
    port: r.port,
    username: r.username,
    password: r.password,
    database: r.database,
    connect_timeout: r.connect_timeout ?? r.timeout,
    read_timeout: r.read_timeout ?? r.timeout,
    ssl: r.ssl,
    ssl_verify: r.ssl_verify,
    server_name: r.server_name,
    sentinel_master: r.sentinel_master,
    sentinel_nodes: r.sentinel_nodes,
    sentinel_username: r.sentinel_username,
    sentinel_password: r.sentinel_password,
    cluster_nodes: r.cluster_nodes,
    cluster_max_redirections: r.cluster_max_redirections,
  };
  for (const k of Object.keys(s)) if (s[k] === undefined) delete s[k];
  return s as unknown as RedisSettings;
}
