/**
 * response-ratelimiting — Kong's plugin (kong/plugins/response-ratelimiting:
 * access.lua, header_filter.lua, log.lua): named quotas ("videos", "images")
 * with limits per second … year, consumed by what the upstream reports in a
 * response header (`header_name`, default x-kong-limit: "videos=2, images=1"),
 * counted per consumer, credential or IP, in this gateway (policy local) or
 * in Redis (policy redis).
 *
 * access: read the client's counters; refuse with Kong's 429 "API rate limit
 * exceeded for '<name>'" when a quota is used up (block_on_first_violation:
 * any quota; otherwise: a quota this route's responses consume, see below);
 * else tell the upstream what is left (X-RateLimit-Remaining-<name>).
 * response: remove the usage header, send the client Kong's
 * X-RateLimit-Limit-<name>-<period> / X-RateLimit-Remaining-<name>-<period>,
 * and count the reported usage (sent before the response head is written,
 * not awaited: the next request of the client sees it).
 *
 * Palisade difference: Kong lets such a request reach the upstream and then
 * replaces the upstream's answer with an empty 429 (header_filter). The PDK
 * cannot change the status of an upstream response, so Palisade refuses it
 * before the upstream is called, knowing from earlier responses which quotas
 * a route consumes (its footprint, learnt per plugin instance and config
 * version): the upstream does no work that is thrown away.
 */
import { definePlugin, type PdkContext, type PluginServices, type Reply } from '../../pdk/index.ts';
import { CLUSTER_POLICY, limitIdentifier, remaining, StoreOutage, windowOf } from '../../pdk/ratelimit.ts';
import { redisConfigError, redisSettings } from '../../pdk/redis-config.ts';
import { limitsError, Quotas, type Slot } from './quotas.ts';
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

/** Kong's client headers: the limit and what is left of every (quota, period), after `extra` (this response's usage). */
function writeHeaders(slots: readonly Slot[], used: readonly number[], extra: readonly number[] | null, out: HeaderTarget): void {
  for (let i = 0; i < slots.length; i++) {
    const s = slots[i]!;
    out.setHeader(s.limitHeader, s.limitText);
    out.setHeader(s.remainingHeader, String(remaining(s.limit, used[i]! + (extra === null ? 0 : extra[s.quota]!))));
  }
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
  /** Route id → the quotas its responses have consumed. */
  const footprints = new Map<string, boolean[]>();

  /** The quota this request may not use any more, or -1. */
  const exhausted = (used: readonly number[], route: string): number => {
    const footprint = block ? null : footprints.get(route);
    if (footprint === undefined) return -1;
    for (let i = 0; i < slots.length; i++) {
      const s = slots[i]!;
      if (used[i]! >= s.limit && (footprint === null || footprint[s.quota])) return s.quota;
    }
    return -1;
  };

  const refuse = (ctx: PdkContext, q: number, used: readonly number[], now: number): Reply => {
    const headers: Record<string, string> = {};
    if (!hide) writeHeaders(slots, used, null, { setHeader: (k, v) => void (headers[k] = v) });
    let until = now;
    for (let i = 0; i < slots.length; i++) {
      const s = slots[i]!;
      if (s.quota === q && used[i]! >= s.limit) until = Math.max(until, windowOf(s.period, now).end);
    }
    headers['retry-after'] = String(Math.max(1, Math.ceil((until - now) / 1000)));
    return ctx.reject(429, `API rate limit exceeded for '${quotas.names[q]}'`, headers);
  };

  const decide = (ctx: PdkContext, group: string, fields: string[], used: number[], now: number): Reply | undefined => {
    if (outage.down) outage.recovered();
    const q = exhausted(used, ctx.route?.id ?? '');
    if (q >= 0) return refuse(ctx, q, used, now);
    // The upstream learns what is left of each quota (its smallest remainder), as in Kong.
    let i = 0;
    for (let q = 0; q < quotas.names.length; q++) {
      let least = Infinity;
      for (; i < slots.length && slots[i]!.quota === q; i++) least = Math.min(least, remaining(slots[i]!.limit, used[i]!));
      ctx.request.setHeader(quotas.upstreamHeaders[q]!, String(least));
    }
    ctx.shared[SLOT] = { group, fields, used, now } satisfies Usage;
    return undefined;
  };

  const count = (route: string, u: Usage, consumed: readonly number[]): void => {
    let footprint = footprints.get(route);
    if (footprint === undefined) footprints.set(route, (footprint = new Array<boolean>(quotas.names.length).fill(false)));
    const by = new Array<number>(slots.length);
    const expireAt = new Array<number>(slots.length);
    for (let i = 0; i < slots.length; i++) {
      const s = slots[i]!;
      by[i] = consumed[s.quota]!;
      if (by[i]! > 0) footprint[s.quota] = true;
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
        (used) => decide(ctx, group, fields, used, now),
        (err: unknown) => outage.fail(ctx, err),
      );
    },

    /** The usage header never reaches the client; the usage it reports is counted. */
    response(ctx: PdkContext) {
      const r = ctx.response;
      const reported = r.getHeader(headerName);
      if (reported !== undefined) r.removeHeader(headerName);
      const u = ctx.shared[SLOT] as Usage | undefined;
      if (u === undefined) return;
      const consumed = r.source === 'upstream' ? quotas.usage(reported) : null;
      if (!hide) writeHeaders(slots, u.used, consumed, r);
      if (consumed !== null) count(ctx.route?.id ?? '', u, consumed);
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
