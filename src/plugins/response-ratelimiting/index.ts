/**
 * response-ratelimiting — Kong's plugin (kong/plugins/response-ratelimiting:
 * access.lua, header_filter.lua, log.lua): named quotas ("videos", "images")
 * with limits per second … year, consumed by what the upstream reports in a
 * response header (`header_name`, default x-kong-limit: "videos=2, images=1"),
 * counted per consumer, credential or IP, in this gateway (policy local) or
 * in Redis (policy redis).
 *
 * access: read the client's counters; with block_on_first_violation, refuse
 * with Kong's 429 "API rate limit exceeded for '<name>'" when any quota is
 * used up; else tell the upstream what is left (X-RateLimit-Remaining-<name>).
 * response (Kong's header_filter): remove the usage header, send the client
 * Kong's X-RateLimit-Limit-<name>-<period> / X-RateLimit-Remaining-<name>-<period>;
 * when the response consumes a quota that was already used up, replace it
 * with the 429 (the upstream was called, as in Kong, and its answer is
 * dropped) and count nothing; else count the reported usage. Kong counts in
 * its log phase; Palisade counts here, before the response head is written
 * (not awaited: the client's next request sees it).
 */
import { definePlugin, type PdkContext, type PluginServices, type Reply } from '../../pdk/index.ts';
import { CLUSTER_POLICY, limitIdentifier, remaining, StoreOutage, windowOf } from '../../pdk/ratelimit.ts';
import { redisConfigError, redisSettings } from '../../pdk/redis-config.ts';
import { limitsError, Quotas } from './quotas.ts';
import { ResponseRateLimitingSchema, type ResponseRateLimitingConfig } from './schema.ts';
import { LocalQuotaStore, RedisQuotaStore, type QuotaStore } from './store.ts';

/** Where the access phase leaves the client's usage for the response phase. */
const SLOT = 'response-ratelimiting:usage';
/** Counters outlive their window by this much (clock differences between gateways). */
const GRACE_MS = 1000;

interface Usage {
  readonly group: string;
  readonly fields: readonly string[];
  readonly used: readonly number[];
  readonly now: number;
}

interface HeaderTarget {
  setHeader(name: string, value: string): void;
}

function validate(config: ResponseRateLimitingConfig): string | null {
  if (config.policy === 'cluster') return CLUSTER_POLICY;
  return limitsError(config.limits) ?? redisConfigError(config);
}

function create(config: ResponseRateLimitingConfig, services: PluginServices) {
  const problem = validate(config);
  if (problem !== null) throw new Error(problem);
  const quotas = new Quotas(config.limits);
  const slots = quotas.slots;
  const store: QuotaStore = config.policy === 'redis' ? new RedisQuotaStore(services.redis(redisSettings(config))) : new LocalQuotaStore(services.counters);
  const identify = limitIdentifier(config);
  const sc = services.scope;
  const prefix = `rrl:${sc.route ?? '*'}:${sc.service ?? '*'}:${sc.consumer ?? '*'}:`;
  const outage = new StoreOutage(services, 'response-ratelimiting', config.fault_tolerant, config.policy);
  const headerName = config.header_name.toLowerCase();
  const hide = config.hide_client_headers;
  const block = config.block_on_first_violation;

  /** Kong's client headers: the limit and what is left of every (quota, period), after `extra` (this response's usage). */
  const writeHeaders = (used: readonly number[], extra: readonly number[] | null, out: HeaderTarget): void => {
    if (hide) return;
    for (let i = 0; i < slots.length; i++) {
      const s = slots[i]!;
      out.setHeader(s.limitHeader, s.limitText);
      out.setHeader(s.remainingHeader, String(remaining(s.limit, used[i]! + (extra === null ? 0 : extra[s.quota]!))));
    }
  };

  /** The first used-up quota (usage ≥ limit in one of its periods) among those `consumed` (null: all), or -1. */
  const exhausted = (used: readonly number[], consumed: readonly number[] | null): number => {
    for (let i = 0; i < slots.length; i++) {
      const s = slots[i]!;
      if (used[i]! >= s.limit && (consumed === null || consumed[s.quota]! > 0)) return s.quota;
    }
    return -1;
  };

  /** Kong's 429 for quota `q`, with the client headers and Retry-After (when its used-up windows end). */
  const refuse = (ctx: PdkContext, q: number, u: Usage, extra: readonly number[] | null): Reply => {
    const headers: Record<string, string> = {};
    writeHeaders(u.used, extra, { setHeader: (k, v) => void (headers[k] = v) });
    let until = u.now;
    for (let i = 0; i < slots.length; i++) {
      const s = slots[i]!;
      if (s.quota === q && u.used[i]! >= s.limit) until = Math.max(until, windowOf(s.period, u.now).end);
    }
    headers['retry-after'] = String(Math.max(1, Math.ceil((until - u.now) / 1000)));
    return ctx.reject(429, `API rate limit exceeded for '${quotas.names[q]}'`, headers);
  };

  const admit = (ctx: PdkContext, u: Usage): Reply | undefined => {
    if (outage.down) outage.recovered();
    if (block) {
      const q = exhausted(u.used, null);
      if (q >= 0) return refuse(ctx, q, u, null);
    }
    // The upstream learns what is left of each quota (its smallest remainder), as in Kong.
    let i = 0;
    for (let q = 0; q < quotas.names.length; q++) {
      let least = Infinity;
      for (; i < slots.length && slots[i]!.quota === q; i++) least = Math.min(least, remaining(slots[i]!.limit, u.used[i]!));
      ctx.request.setHeader(quotas.upstreamHeaders[q]!, String(least));
    }
    ctx.shared[SLOT] = u;
    return undefined;
  };

  const count = (u: Usage, consumed: readonly number[]): void => {
    const by = new Array<number>(slots.length);
    const expireAt = new Array<number>(slots.length);
    for (let i = 0; i < slots.length; i++) {
      const s = slots[i]!;
      by[i] = consumed[s.quota]!;
      expireAt[i] = windowOf(s.period, u.now).end + GRACE_MS;
    }
    store.add(u.group, u.fields, by, expireAt).catch((err: unknown) => outage.failed(err));
  };

  return {
    access(ctx: PdkContext) {
      const now = Date.now();
      const group = prefix + identify(ctx);
      const fields = slots.map((s) => s.field + windowOf(s.period, now).start);
      let read: Promise<number[]>;
      try {
        read = store.read(group, fields);
      } catch (err) {
        return outage.fail(ctx, err);
      }
      return read.then(
        (used) => admit(ctx, { group, fields, used, now }),
        (err: unknown) => outage.fail(ctx, err),
      );
    },

    /** The usage header never reaches the client; a response that consumes a used-up quota becomes the 429. */
    response(ctx: PdkContext) {
      const r = ctx.response;
      const reported = r.getHeader(headerName);
      if (reported !== undefined) r.removeHeader(headerName);
      const u = ctx.shared[SLOT] as Usage | undefined;
      if (u === undefined) return undefined;
      // Once: the 429 that replaces the upstream response passes through this phase again.
      ctx.shared[SLOT] = undefined;
      const consumed = r.source === 'upstream' ? quotas.usage(reported) : null;
      if (consumed === null) {
        writeHeaders(u.used, null, r);
        return undefined;
      }
      const q = exhausted(u.used, consumed);
      if (q >= 0) return refuse(ctx, q, u, consumed);
      writeHeaders(u.used, consumed, r);
      count(u, consumed);
      return undefined;
    },
  };
}

export default definePlugin({
  name: 'response-ratelimiting',
  priority: 900,
  description: "Response rate limiting (Kong's response-ratelimiting): named quotas consumed by what the upstream reports in a response header, per consumer, credential or IP; local or Redis.",
  schema: ResponseRateLimitingSchema,
  validate,
  create,
});
