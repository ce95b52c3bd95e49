/**
 * rate-limiting — Kong's plugin (kong/plugins/rate-limiting/handler.lua):
 * limits per second, minute, hour, day, month and year, counted per consumer,
 * credential, IP, service, header, path or consumer group, in this gateway
 * (policy local) or in Redis shared by many gateways (policy redis).
 *
 * Palisade differences: the check and the count are one atomic step (Kong
 * reads, then increments later in a timer, so concurrent requests can slip
 * past the limit); `algorithm: sliding` (the default) avoids the double burst
 * at a window edge; no database policy (`cluster` → use redis); a store outage
 * with fault_tolerant false answers 503 (Kong: 500).
 */
import { createHash } from 'node:crypto';
import { definePlugin, type PdkContext, type PluginServices, type RateVerdict, type RateWindows, type Reply } from '../../pdk/index.ts';
import { periodsOf, redisSettings, validate } from './config.ts';
import { HeaderSet } from './headers.ts';
import { RateLimitingSchema, type RateLimitingConfig } from './schema.ts';
import { Windows } from './windows.ts';

/** Where the access phase leaves the verdict on an admitted request for the response phase. */
const SLOT = 'rate-limiting:headers';
const OUTAGE_LOG_EVERY_MS = 10_000;
const PERIOD_TAG = { second: 's', minute: 'm', hour: 'h', day: 'd', month: 'M', year: 'y' } as const;

/** Long identifiers (header values) are hashed: bounded keys in memory and in Redis. */
function bounded(v: string): string {
  return v.length <= 128 ? v : createHash('sha256').update(v).digest('base64url');
}

/** The counted entity of a request, tagged by kind (a header value can never pose as an IP); the client IP when absent. */
function identifier(config: RateLimitingConfig): (ctx: PdkContext) => string {
  const ip = (ctx: PdkContext) => 'i:' + ctx.request.clientIp;
  switch (config.limit_by) {
    case 'consumer':
      return (ctx) => (ctx.consumer !== null ? 'c:' + ctx.consumer.id : ctx.credential !== null ? 'k:' + ctx.credential.id : ip(ctx));
    case 'credential':
      return (ctx) => (ctx.credential !== null ? 'k:' + ctx.credential.id : ip(ctx));
    case 'service':
      return (ctx) => (ctx.service !== null ? 's:' + ctx.service.id : ip(ctx));
    case 'header': {
      const name = config.header_name!.toLowerCase();
      return (ctx) => {
        const v = ctx.request.header(name);
        return v !== undefined && v !== '' ? 'h:' + bounded(v) : ip(ctx);
      };
    }
    case 'path': {
      const path = config.path!;
      return (ctx) => (ctx.request.path === path ? 'p:' + path : ip(ctx));
    }
    case 'consumer-group':
      return (ctx) => {
        const g = ctx.consumer?.groups[0];
        return g !== undefined ? 'g:' + g : ip(ctx);
      };
    default:
      return ip;
  }
}

interface Admitted {
  v: RateVerdict;
  w: RateWindows;
  now: number;
}

type Hit = (key: string, w: RateWindows, sliding: boolean, now: number) => RateVerdict | Promise<RateVerdict>;

/** Store failures: counted, logged at most every 10 s (with how many requests they touched), recovery logged once. */
class Outage {
  readonly #services: PluginServices;
  readonly #tolerant: boolean;
  readonly #policy: string;
  #since = 0;
  #total = 0;
  #lastLog = 0;
  #down = false;

  constructor(services: PluginServices, tolerant: boolean, policy: string) {
    this.#services = services;
    this.#tolerant = tolerant;
    this.#policy = policy;
  }

  failed(err: unknown): void {
    this.#since++;
    this.#total++;
    this.#down = true;
    const now = Date.now();
    if (now - this.#lastLog < OUTAGE_LOG_EVERY_MS) return;
    this.#lastLog = now;
    const what = this.#tolerant ? 'requests pass without rate limiting (fault_tolerant)' : 'requests are refused with 503 (fault_tolerant: false)';
    this.#services.logger.warn(
      { policy: this.#policy, err: (err as Error)?.message ?? String(err), requests: this.#since, requests_total: this.#total, fault_tolerant: this.#tolerant },
      `rate-limiting: counter store unavailable, ${what}`,
    );
    this.#since = 0;
  }

  get down(): boolean {
    return this.#down;
  }

  recovered(): void {
    this.#down = false;
    this.#services.logger.info({ policy: this.#policy, requests_total: this.#total }, 'rate-limiting: counter store available again');
    this.#lastLog = 0;
  }
}

function create(config: RateLimitingConfig, services: PluginServices) {
  const problem = validate(config);
  if (problem !== null) throw new Error(problem);
  const { periods, limits } = periodsOf(config);
  const windows = new Windows(periods, limits);
  const sliding = config.algorithm === 'sliding';
  let hit: Hit;
  if (config.policy === 'redis') {
    const store = services.redis(redisSettings(config));
    hit = (k, w, s, n) => store.hit(k, w, s, n);
  } else {
    const store = services.counters;
    if (store.hit === undefined) throw new Error("this gateway's counter store cannot count rate limits");
    hit = store.hit.bind(store);
  }
  const identify = identifier(config);
  const sc = services.scope;
  const prefix = `${sc.route ?? '*'}:${sc.service ?? '*'}:${sc.consumer ?? '*'}:${periods.map((p) => PERIOD_TAG[p]).join('')}:`;
  const headers = config.hide_client_headers ? null : new HeaderSet(periods, limits);
  const outage = new Outage(services, config.fault_tolerant, config.policy);
  const errorCode = config.error_code;
  const errorMessage = config.error_message;

  const decide = (ctx: PdkContext, v: RateVerdict, w: RateWindows, now: number): Reply | undefined => {
    if (outage.down) outage.recovered();
    if (v.admitted) {
      if (headers !== null) ctx.shared[SLOT] = { v, w, now } satisfies Admitted;
      return undefined;
    }
    return ctx.reject(errorCode, errorMessage, headers !== null ? headers.build(v, w, now) : {});
  };
  const fail = (ctx: PdkContext, err: unknown): Reply | undefined => {
    outage.failed(err);
    return config.fault_tolerant ? undefined : ctx.reject(503, 'The rate limit could not be checked; try again later', { 'retry-after': '1' });
  };

  return {
    access(ctx: PdkContext) {
      const now = Date.now();
      const w = windows.at(now);
      let r: RateVerdict | Promise<RateVerdict>;
      try {
        r = hit(prefix + identify(ctx), w, sliding, now);
      } catch (err) {
        return fail(ctx, err);
      }
      if (r instanceof Promise) return r.then((v) => decide(ctx, v, w, now), (err: unknown) => fail(ctx, err));
      return decide(ctx, r, w, now);
    },
    /** Headers of an admitted request go on whatever answer follows (the upstream's or a later plugin's). */
    response(ctx: PdkContext) {
      if (headers === null) return;
      const a = ctx.shared[SLOT] as Admitted | undefined;
      if (a === undefined) return;
      headers.write(a.v, a.w, a.now, ctx.response);
    },
  };
}

export default definePlugin({
  name: 'rate-limiting',
  priority: 910,
  description: "Rate limiting (Kong's rate-limiting): requests per second … year, per consumer, credential, IP, service, header, path or consumer group; local (exact across workers) or Redis.",
  schema: RateLimitingSchema,
  validate,
  create,
});
