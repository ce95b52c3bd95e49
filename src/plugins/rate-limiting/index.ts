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
import { definePlugin, type PdkContext, type PluginServices, type RateVerdict, type RateWindows, type Reply } from '../../pdk/index.ts';
import { limitIdentifier, PERIOD_TAG, StoreOutage, Windows } from '../../pdk/ratelimit.ts';
import { redisSettings } from '../../pdk/redis-config.ts';
import { periodsOf, validate } from './config.ts';
import { HeaderSet } from './headers.ts';
import { RateLimitingSchema, type RateLimitingConfig } from './schema.ts';

/** Where the access phase leaves the verdict on an admitted request for the response phase. */
const SLOT = 'rate-limiting:headers';

interface Admitted {
  v: RateVerdict;
  w: RateWindows;
  now: number;
}

type Hit = (key: string, w: RateWindows, sliding: boolean, now: number) => RateVerdict | Promise<RateVerdict>;

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
  const identify = limitIdentifier(config);
  const sc = services.scope;
  const prefix = `${sc.route ?? '*'}:${sc.service ?? '*'}:${sc.consumer ?? '*'}:${periods.map((p) => PERIOD_TAG[p]).join('')}:`;
  const headers = config.hide_client_headers ? null : new HeaderSet(periods, limits);
  const outage = new StoreOutage(services, 'rate-limiting', config.fault_tolerant, config.policy);
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

  return {
    access(ctx: PdkContext) {
      const now = Date.now();
      const w = windows.at(now);
      let r: RateVerdict | Promise<RateVerdict>;
      try {
        r = hit(prefix + identify(ctx), w, sliding, now);
      } catch (err) {
        return outage.fail(ctx, err);
      }
      if (r instanceof Promise) return r.then((v) => decide(ctx, v, w, now), (err: unknown) => outage.fail(ctx, err));
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
