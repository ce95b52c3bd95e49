/**
 * What the limiting plugins (rate-limiting, response-ratelimiting) share:
 * Kong's calendar windows, the counted entity of a request (`limit_by`), and
 * the bookkeeping of a counter-store outage (fault_tolerant).
 *
 * Windows are Kong's, in UTC: a second, minute, hour or day starts on its
 * boundary since the epoch; a month or year on the first day of the calendar
 * month or year. Window objects are immutable and cached: a new one exists
 * only once the previous has ended, so the per-request cost is a comparison.
 */
import { createHash } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import type { PdkContext, PluginServices, RateWindow, RateWindows, Reply } from './index.ts';

export const PERIODS = ['second', 'minute', 'hour', 'day', 'month', 'year'] as const;
export type Period = (typeof PERIODS)[number];

/** One letter per period, for counter keys and fields. */
export const PERIOD_TAG: Record<Period, string> = { second: 's', minute: 'm', hour: 'h', day: 'd', month: 'M', year: 'y' };

/**
 * Kong's checks of a set of per-period limits: at least one, and a longer period never lower than a
 * shorter one (Kong's messages). `at` prefixes the message (e.g. 'limits.videos: '; without it the message is a
 * sentence of its own), `field` names a period's field. Null when they hold.
 */
export function periodLimitsError(limits: Partial<Record<Period, number>>, at = '', field = (p: Period) => `'${p}'`): string | null {
  const periods = PERIODS.filter((p) => typeof limits[p] === 'number');
  if (periods.length === 0) return `${at}at least one of these fields must be non-empty: ${PERIODS.map(field).join(', ')}`;
  const fmt = (n: number) => n.toFixed(1);
  for (let i = 0; i < periods.length; i++) {
    for (let j = i + 1; j < periods.length; j++) {
      const lo = limits[periods[i]!]!;
      const hi = limits[periods[j]!]!;
      if (hi < lo) return `${at}${at === '' ? 'The' : 'the'} limit for ${periods[j]}(${fmt(hi)}) cannot be lower than the limit for ${periods[i]}(${fmt(lo)})`;
    }
  }
  return null;
}

/** Kong's optional per-period limit fields (second … year); `what` names the unit counted, e.g. 'HTTP requests'. */
export function periodLimitFields(what: string) {
  const limit = (period: Period) => Type.Optional(Type.Number({ exclusiveMinimum: 0, description: `The number of ${what} allowed per ${period}.` }));
  return { second: limit('second'), minute: limit('minute'), hour: limit('hour'), day: limit('day'), month: limit('month'), year: limit('year') };
}

/** Nominal window lengths in seconds (Kong's EXPIRATION table): RateLimit-Policy's w=. */
export const WINDOW_SECONDS: Record<Period, number> = { second: 1, minute: 60, hour: 3600, day: 86400, month: 2592000, year: 31536000 };

/** Kong's policy 'cluster' (its database) does not exist in Palisade. */
export const CLUSTER_POLICY =
  "policy 'cluster' keeps counters in Kong's database, which Palisade does not have: use policy 'redis' to share the limits between gateway nodes (or 'local' for one gateway, exact across its workers)";

const FIXED: Partial<Record<Period, number>> = { second: 1000, minute: 60_000, hour: 3_600_000, day: 86_400_000 };

function calendar(period: Period, now: number): RateWindow {
  const size = FIXED[period];
  if (size !== undefined) {
    const start = now - (now % size);
    return { start, end: start + size, prevStart: start - size };
  }
  const d = new Date(now);
  const y = d.getUTCFullYear();
  if (period === 'year') return { start: Date.UTC(y, 0, 1), end: Date.UTC(y + 1, 0, 1), prevStart: Date.UTC(y - 1, 0, 1) };
  const m = d.getUTCMonth();
  return { start: Date.UTC(y, m, 1), end: Date.UTC(y, m + 1, 1), prevStart: Date.UTC(y, m - 1, 1) };
}

/** The current window of one period (cached until it ends). */
const cache = new Map<Period, RateWindow>();
export function windowOf(period: Period, now: number): RateWindow {
  const w = cache.get(period);
  if (w !== undefined && now >= w.start && now < w.end) return w;
  const next = calendar(period, now);
  cache.set(period, next);
  return next;
}

/**
 * The windows of one plugin instance (its periods, smallest first): the same
 * RateWindows object until the smallest window ends (windows are nested:
 * every boundary of a larger period is one of the smaller).
 */
export class Windows {
  readonly periods: readonly Period[];
  readonly limits: readonly number[];
  #current: RateWindows;
  #until: number;

  constructor(periods: readonly Period[], limits: readonly number[]) {
    this.periods = periods;
    this.limits = limits;
    this.#current = this.#build(Date.now());
    this.#until = this.#current.current[0]!.end;
  }

  at(now: number): RateWindows {
    const c = this.#current;
    if (now < this.#until && now >= c.current[0]!.start) return c;
    this.#current = this.#build(now);
    this.#until = this.#current.current[0]!.end;
    return this.#current;
  }

  #build(now: number): RateWindows {
    return { names: this.periods, limits: this.limits, current: this.periods.map((p) => windowOf(p, now)) };
  }
}

/** Requests (or units) still allowed at this usage: Kong's remaining = limit − usage, never negative, rounded up. */
export function remaining(limit: number, usage: number): number {
  const r = limit - usage;
  return r > 0 ? Math.ceil(r) : 0;
}

/** Long identifiers (header values) are hashed: bounded keys in memory and in Redis. */
function bounded(v: string): string {
  return v.length <= 128 ? v : createHash('sha256').update(v).digest('base64url');
}

export interface LimitBy {
  readonly limit_by: 'consumer' | 'credential' | 'ip' | 'service' | 'header' | 'path' | 'consumer-group';
  /** limit_by header. */
  readonly header_name?: string;
  /** limit_by path. */
  readonly path?: string;
}

/**
 * The counted entity of a request, tagged by kind (a header value can never
 * pose as an IP); the client IP when the entity is absent (Kong's fallback).
 * consumer falls back to the credential, then the IP.
 */
export function limitIdentifier(config: LimitBy): (ctx: PdkContext) => string {
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

const OUTAGE_LOG_EVERY_MS = 10_000;

/**
 * Counter-store failures of one plugin instance: counted, logged at most
 * every 10 s (with how many requests they touched), recovery logged once.
 */
export class StoreOutage {
  readonly #services: PluginServices;
  readonly #plugin: string;
  readonly #tolerant: boolean;
  readonly #policy: string;
  #since = 0;
  #total = 0;
  #lastLog = 0;
  #down = false;

  constructor(services: PluginServices, plugin: string, tolerant: boolean, policy: string) {
    this.#services = services;
    this.#plugin = plugin;
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
      `${this.#plugin}: counter store unavailable, ${what}`,
    );
    this.#since = 0;
  }

  /** A store failure on a request: pass it (fault_tolerant) or refuse it with 503. */
  fail(ctx: PdkContext, err: unknown): Reply | undefined {
    this.failed(err);
    return this.#tolerant ? undefined : ctx.reject(503, 'The rate limit could not be checked; try again later', { 'retry-after': '1' });
  }

  get down(): boolean {
    return this.#down;
  }

  recovered(): void {
    this.#down = false;
    this.#services.logger.info({ policy: this.#policy, requests_total: this.#total }, `${this.#plugin}: counter store available again`);
    this.#lastLog = 0;
  }
}
