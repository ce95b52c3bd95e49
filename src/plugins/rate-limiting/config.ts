/**
 * Cross-field rules (Kong's custom_validator and entity checks, with Kong's
 * messages where Kong has one) and the translation of the config into what
 * the stores take: the periods in use, and the Redis settings (the flat
 * redis_* fields and the deprecated *_addresses folded in, as Kong does).
 */
import type { RedisSettings } from '../../pdk/index.ts';
import { PERIODS, type Period, type RateLimitingConfig } from './schema.ts';

export const CLUSTER_POLICY =
  "policy 'cluster' keeps counters in Kong's database, which Palisade does not have: use policy 'redis' to share the limits between gateway nodes (or 'local' for one gateway, exact across its workers)";

/** The configured periods, smallest first, with their limits. */
export function periodsOf(config: RateLimitingConfig): { periods: Period[]; limits: number[] } {
  const periods: Period[] = [];
  const limits: number[] = [];
  for (const p of PERIODS) {
    const v = config[p];
    if (typeof v === 'number') {
      periods.push(p);
      limits.push(v);
    }
  }
  return { periods, limits };
}

const fmt = (n: number) => n.toFixed(1);

function hostPort(s: string): { host: string; port: number } {
  const i = s.lastIndexOf(':');
  return { host: s.slice(0, i), port: Number(s.slice(i + 1)) };
}

/** Kong's redis record after the flat fields and shorthands are applied. */
function mergedRedis(config: RateLimitingConfig) {
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

function redisError(config: RateLimitingConfig): string | null {
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

export function validate(config: RateLimitingConfig): string | null {
  const { periods, limits } = periodsOf(config);
  if (periods.length === 0) return "at least one of these fields must be non-empty: 'config.second', 'config.minute', 'config.hour', 'config.day', 'config.month', 'config.year'";
  for (let i = 0; i < periods.length; i++) {
    for (let j = i + 1; j < periods.length; j++) {
      if (limits[j]! < limits[i]!) return `The limit for ${periods[j]}(${fmt(limits[j]!)}) cannot be lower than the limit for ${periods[i]}(${fmt(limits[i]!)})`;
    }
  }
  if (config.policy === 'cluster') return CLUSTER_POLICY;
  if (config.limit_by === 'header' && config.header_name === undefined) return "header_name is required when limit_by is 'header'";
  if (config.limit_by === 'path' && config.path === undefined) return "path is required when limit_by is 'path'";
  if (config.policy !== 'redis' && config.sync_rate !== -1) return 'sync_rate can only be used with the redis policy';
  if (config.policy === 'redis' && config.sync_rate !== -1 && config.sync_rate < 0.02) return 'sync_rate must be greater than 0.02, or -1 to disable';
  return redisError(config);
}

/** What the Redis store connects with. */
export function redisSettings(config: RateLimitingConfig): RedisSettings {
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
