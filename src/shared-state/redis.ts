/**
 * Shared state on Redis (ioredis): standalone (host/port or a redis:// /
 * rediss:// URL), Sentinel, or Cluster. Rate limits take one round trip per
 * request: a Lua script (EVALSHA, with EVAL when the server lost its script
 * cache) reads every window, decides, and counts the request in all of them
 * atomically — so any number of gateway processes on one Redis together admit
 * exactly the limit. Plain counters (`add`: increment-by-N and read, for
 * response-ratelimiting) take one round trip too. Keys carry a hash tag (all
 * counters of one client land in one Cluster slot) and expire on their own.
 *
 * Connections: one client per distinct settings, shared by every plugin
 * instance and config version that uses them, created on first use (a dry
 * compile never connects) and closed one second after the last config version
 * using it is retired (a reload with the same settings keeps it).
 *
 * Failures are fast: no offline queue (only the very first connection is
 * waited for, up to connect_timeout; a request never waits for a reconnect), no resend of commands lost with a
 * connection, a command timeout; ioredis reconnects in the background and the
 * store works again as soon as Redis answers.
 */
import type { Cluster, Redis, RedisOptions } from 'ioredis';
import { isIP } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import type { Logger } from 'pino';
import type { RateVerdict, RateWindows, RedisSettings, RedisStore } from '../pdk/index.ts';
import { retryAtOf, usageOf } from './rate.ts';

/**
 * KEYS: per window i, its current (2i−1) and previous (2i) window key.
 * ARGV: now, sliding (1/0), then per window: limit, start, end, expire-at (ms).
 * Returns { admitted (1/0), cur1, prev1, cur2, prev2, … } (cur after the increment when admitted).
 */
const RATE_SCRIPT = `
local now = tonumber(ARGV[1])
local sliding = ARGV[2] == '1'
local n = #KEYS / 2
local cur, prev = {}, {}
local admit = true
for i = 1, n do
  local a = 2 + (i - 1) * 4
  local limit, s, e = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local c = tonumber(redis.call('GET', KEYS[2 * i - 1]) or '0')
  local p = 0
  if sliding then p = tonumber(redis.call('GET', KEYS[2 * i]) or '0') end
  cur[i], prev[i] = c, p
  local u = c
  if p > 0 then
    local t = now
    if t < s then t = s elseif t > e then t = e end
    u = p * (e - t) / (e - s) + c
  end
  if u >= limit then admit = false end
end
local out = { admit and 1 or 0 }
for i = 1, n do
  if admit then
    cur[i] = redis.call('INCR', KEYS[2 * i - 1])
    redis.call('PEXPIREAT', KEYS[2 * i - 1], ARGV[2 + (i - 1) * 4 + 4])
  end
  out[2 * i] = cur[i]
  out[2 * i + 1] = prev[i]
end
return out
`;

/**
 * KEYS: the counters. ARGV: per counter, what to add (0 = only read) and its expire-at (ms).
 * Returns the totals (after the additions).
 */
const ADD_SCRIPT = `
local out = {}
for i = 1, #KEYS do
  local by = tonumber(ARGV[2 * i - 1])
  if by > 0 then
    out[i] = redis.call('INCRBY', KEYS[i], by)
    redis.call('PEXPIREAT', KEYS[i], ARGV[2 * i])
  else
    out[i] = tonumber(redis.call('GET', KEYS[i]) or '0')
  end
end
return out
`;

type Client = (Redis | Cluster) & {
  palisadeRateHit(numKeys: number, ...args: (string | number)[]): Promise<number[]>;
  palisadeAdd(numKeys: number, ...args: (string | number)[]): Promise<number[]>;
};

export class RedisUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RedisUnavailableError';
  }
}

const RECONNECT = (times: number) => Math.min(50 * times, 1000);
const CLOSE_GRACE_MS = 1000;
const LOG_EVERY_MS = 10_000;

/** Where the settings point, for logs (never credentials). */
export function describeRedis(s: RedisSettings): string {
  if (s.cluster_nodes?.length) return `cluster ${s.cluster_nodes.map((n) => `${n.ip}:${n.port}`).join(',')}`;
  if (s.sentinel_master !== undefined) return `sentinel master '${s.sentinel_master}'`;
  if (s.url !== undefined) {
    try {
      const u = new URL(s.url);
      return `${u.protocol}//${u.host}${u.pathname === '/' ? '' : u.pathname}`;
    } catch {
      return 'redis (url)';
    }
  }
  return `${s.host ?? '127.0.0.1'}:${s.port}`;
}

function tlsOptions(s: RedisSettings, host: string | undefined): ConnectionOptions {
  const servername = s.server_name ?? (host !== undefined && isIP(host) === 0 ? host : undefined);
  return { rejectUnauthorized: s.ssl_verify, ...(servername !== undefined ? { servername } : {}) };
}

type IoRedis = { readonly Redis: typeof Redis; readonly Cluster: typeof Cluster };

function createClient(s: RedisSettings, io: IoRedis): Client {
  const { Redis, Cluster } = io;
  const common: RedisOptions = {
    username: s.username,
    password: s.password,
    db: s.database,
    connectTimeout: s.connect_timeout,
    commandTimeout: s.read_timeout,
    enableOfflineQueue: false, // a request never waits for a reconnect: it fails at once
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    retryStrategy: RECONNECT,
    lazyConnect: false,
    enableAutoPipelining: true,
  };
  let client: Redis | Cluster;
  if (s.cluster_nodes !== undefined && s.cluster_nodes.length > 0) {
    const { db: _db, ...redisOptions } = common;
    client = new Cluster(
      s.cluster_nodes.map((n) => ({ host: n.ip, port: n.port })),
      {
        redisOptions: { ...redisOptions, ...(s.ssl ? { tls: tlsOptions(s, undefined) } : {}) },
        maxRedirections: s.cluster_max_redirections,
        enableOfflineQueue: false,
        clusterRetryStrategy: RECONNECT,
      },
    );
  } else if (s.sentinel_master !== undefined && s.sentinel_nodes !== undefined) {
    client = new Redis({
      ...common,
      sentinels: s.sentinel_nodes.map((n) => ({ host: n.host, port: n.port })),
      name: s.sentinel_master,
      role: 'master',
      sentinelUsername: s.sentinel_username,
      sentinelPassword: s.sentinel_password,
      ...(s.ssl ? { tls: tlsOptions(s, undefined), enableTLSForSentinelMode: true } : {}),
    });
  } else if (s.url !== undefined) {
    const rediss = s.url.startsWith('rediss:');
    const host = (() => {
      try {
        return new URL(s.url!).hostname;
      } catch {
        return undefined;
      }
    })();
    // Fields the URL does not carry come from the settings.
    const u = new URL(s.url);
    client = new Redis(s.url, {
      ...common,
      username: u.username !== '' ? decodeURIComponent(u.username) : s.username,
      password: u.password !== '' ? decodeURIComponent(u.password) : s.password,
      db: u.pathname.length > 1 ? Number(u.pathname.slice(1)) : s.database,
      ...(rediss || s.ssl ? { tls: tlsOptions(s, host) } : {}),
    });
  } else {
    client = new Redis({ ...common, host: s.host, port: s.port, ...(s.ssl ? { tls: tlsOptions(s, s.host) } : {}) });
  }
  client.defineCommand('palisadeRateHit', { lua: RATE_SCRIPT });
  client.defineCommand('palisadeAdd', { lua: ADD_SCRIPT });
  return client as Client;
}

/** One connection (or Sentinel/Cluster client) shared by equal settings. */
class SharedClient {
  readonly key: string;
  readonly #settings: RedisSettings;
  readonly #log: Logger;
  #client: Client | null = null;
  #everReady = false;
  #opening: Promise<void> | null = null;
  #refs = 0;
  #closeTimer: NodeJS.Timeout | null = null;
  #lastErrorLog = 0;
  #errorsSinceLog = 0;
  closed = false;

  constructor(key: string, settings: RedisSettings, log: Logger) {
    this.key = key;
    this.#settings = settings;
    this.#log = log;
  }

  ref(): void {
    this.#refs++;
    if (this.#closeTimer !== null) {
      clearTimeout(this.#closeTimer);
      this.#closeTimer = null;
    }
  }

  unref(): void {
    if (--this.#refs > 0) return;
    this.#closeTimer = setTimeout(() => this.close(), CLOSE_GRACE_MS);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clients.delete(this.key);
    const c = this.#client;
    this.#client = null;
    c?.disconnect();
  }

  /** The client once it is ready; waits for the very first connection (bounded by connect_timeout), never for a reconnect. */
  ready(): Client | Promise<Client> {
    if (this.closed) throw new RedisUnavailableError('redis client closed');
    const c = this.#client;
    if (c !== null) {
      if (c.status === 'ready') return c;
      if (this.#everReady) throw this.#down(c);
    }
    return (this.#opening ??= this.#open()).then(() => {
      const c = this.#client;
      if (c === null || c.status !== 'ready') throw this.#down(c);
      return c;
    });
  }

  #down(c: Client | null): RedisUnavailableError {
    return new RedisUnavailableError(`redis ${describeRedis(this.#settings)} is not connected (${c?.status ?? 'closed'})`);
  }

  /** ioredis is loaded on first use only (a gateway without Redis never pays for it). */
  async #open(): Promise<void> {
    const io = await import('ioredis');
    if (this.closed) return;
    const c = createClient(this.#settings, io);
    this.#client = c;
    c.on('error', (err: Error) => {
      this.#errorsSinceLog++;
      const now = Date.now();
      if (now - this.#lastErrorLog < LOG_EVERY_MS) return;
      this.#log.warn({ redis: describeRedis(this.#settings), err: err.message, errors: this.#errorsSinceLog }, 'redis connection error');
      this.#lastErrorLog = now;
      this.#errorsSinceLog = 0;
    });
    c.on('ready', () => {
      if (this.#everReady) this.#log.info({ redis: describeRedis(this.#settings) }, 'redis connection restored');
      this.#everReady = true;
    });
    const tls = this.#settings.ssl || this.#settings.url?.startsWith('rediss:') === true;
    if (tls && !this.#settings.ssl_verify) this.#log.warn({ redis: describeRedis(this.#settings) }, 'redis TLS without certificate verification (ssl_verify: false)');
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((ok) => {
      timer = setTimeout(ok, this.#settings.connect_timeout);
      timer.unref();
      c.once('ready', () => ok());
    });
    clearTimeout(timer);
  }
}

const clients = new Map<string, SharedClient>();

/**
 * What a config version holds: acquires the shared client on its first use,
 * releases it when the version is retired (src/core/runtime.ts).
 */
export class RedisHandle implements RedisStore {
  readonly #settings: RedisSettings;
  readonly #key: string;
  readonly #log: Logger;
  #shared: SharedClient | null = null;
  #released = false;

  constructor(settings: RedisSettings, log: Logger) {
    this.#settings = settings;
    this.#key = JSON.stringify(settings);
    this.#log = log;
  }

  #client(): Client | Promise<Client> {
    if (this.#shared === null || this.#shared.closed) {
      if (this.#released) throw new RedisUnavailableError('redis store released (config replaced)');
      let shared = clients.get(this.#key);
      if (shared === undefined) clients.set(this.#key, (shared = new SharedClient(this.#key, this.#settings, this.#log)));
      shared.ref();
      this.#shared = shared;
    }
    return this.#shared.ready();
  }

  async hit(key: string, w: RateWindows, sliding: boolean, now: number): Promise<RateVerdict> {
    const client = await this.#client();
    const n = w.limits.length;
    const tag = `palisade:rl:{${key}}:`;
    const args: (string | number)[] = new Array(2 * n);
    for (let i = 0; i < n; i++) {
      const win = w.current[i]!;
      args[2 * i] = `${tag}${w.names[i]}:${win.start}`;
      args[2 * i + 1] = `${tag}${w.names[i]}:${win.prevStart}`;
    }
    args.push(now, sliding ? 1 : 0);
    for (let i = 0; i < n; i++) {
      const win = w.current[i]!;
      args.push(w.limits[i]!, win.start, win.end, sliding ? win.end + 2 * (win.end - win.start) : win.end + 1000);
    }
    const r = await client.palisadeRateHit(2 * n, ...args);
    const admitted = r[0] === 1;
    const usage = new Array<number>(n);
    let retryAt = 0;
    for (let i = 0; i < n; i++) {
      const win = w.current[i]!;
      const cur = Number(r[1 + 2 * i]);
      const prev = Number(r[2 + 2 * i]);
      usage[i] = usageOf(win.start, win.end, cur, prev, sliding, now);
      if (!admitted && usage[i]! >= w.limits[i]!) retryAt = Math.max(retryAt, retryAtOf(win.start, win.end, w.limits[i]!, cur, prev, sliding, now));
    }
    return { admitted, usage, retryAt: admitted ? 0 : Math.max(retryAt, now + 1) };
  }

  async add(key: string, fields: readonly string[], by: readonly number[], expireAt: readonly number[]): Promise<number[]> {
    const client = await this.#client();
    const n = fields.length;
    const tag = `palisade:ct:{${key}}:`;
    const args: (string | number)[] = new Array(3 * n);
    for (let i = 0; i < n; i++) {
      args[i] = tag + fields[i]!;
      args[n + 2 * i] = by[i]!;
      args[n + 2 * i + 1] = expireAt[i]!;
    }
    const r = await client.palisadeAdd(n, ...args);
    return r.map(Number);
  }

  /** The config version that held this is retired. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#shared?.unref();
  }
}
