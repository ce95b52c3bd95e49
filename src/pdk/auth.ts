/**
 * What every authentication plugin shares: Kong's `anonymous` semantics,
 * `hide_credentials`, and brute-force protection (per client IP and per
 * identity, counted in the shared counter store, lockout answered 429 with
 * Retry-After).
 *
 * Kong's semantics for several auth plugins on one route:
 * - without `anonymous`, every plugin must succeed ("all of them");
 * - with `anonymous` on each, the first that succeeds wins and the others skip;
 *   if none succeeds the request goes on as the anonymous consumer ("any of
 *   them"), which a consumer-scoped plugin (e.g. request-termination) may stop.
 */
import { Type, type Static } from '@sinclair/typebox';
import type { CounterStore, PdkConsumer, PdkContext, PluginServices } from './index.ts';
import { problem, type Reply } from './reply.ts';

export const AnonymousField = Type.Optional(
  Type.String({
    description: 'Consumer (id or username) to use when authentication fails, instead of answering 401 — lets several auth plugins mean "any of them".',
  }),
);

export const HideCredentialsField = Type.Boolean({ default: false, description: 'Remove the credential from the request before it is proxied.' });

export const BruteForceSchema = Type.Object(
  {
    enabled: Type.Boolean({ default: true, description: 'Count failed attempts and lock out clients that fail too often.' }),
    window: Type.Integer({ minimum: 1, default: 60, description: 'Seconds over which failures are counted.' }),
    max_failures_per_ip: Type.Integer({ minimum: 0, default: 30, description: 'Failures from one client IP within the window before it is locked out (0 = no IP lockout).' }),
    max_failures_per_identity: Type.Integer({
      minimum: 0,
      default: 10,
      description: 'Failures for one identity (username, key id) within the window before it is locked out (0 = no identity lockout).',
    }),
    lockout: Type.Integer({ minimum: 1, default: 300, description: 'Seconds a locked-out IP or identity gets 429.' }),
  },
  { additionalProperties: false, default: {}, description: 'Palisade: brute-force protection.' },
);
export type BruteForceConfig = Static<typeof BruteForceSchema>;

/** Resolve the `anonymous` consumer once at create(); a missing one is a config error. */
export function anonymousConsumer(services: PluginServices, ref: string | undefined): PdkConsumer | null {
  if (ref === undefined || ref === '') return null;
  const c = services.consumers.find(ref);
  if (c === null) throw new Error(`anonymous consumer '${ref}' does not exist`);
  return c;
}

/** Another auth plugin already identified a real (non-anonymous) consumer: skip ("any of them" mode). */
export function alreadyAuthenticated(ctx: PdkContext, anonymous: PdkConsumer | null): boolean {
  return anonymous !== null && ctx.credential !== null && !ctx.anonymous;
}

/**
 * On failure: fall back to the anonymous consumer when configured, else answer
 * with the reply `build` makes (built only when it is sent).
 */
export function failOrAnonymous(ctx: PdkContext, anonymous: PdkConsumer | null, build: () => Reply): Reply | undefined {
  if (anonymous === null) return build();
  ctx.authenticate(anonymous, null, true);
  return undefined;
}

type SyncLocks = CounterStore & { lockedForSync?(key: string): number };

/** Brute-force protection for one plugin instance. */
export class FailureGuard {
  readonly #cfg: BruteForceConfig;
  readonly #store: SyncLocks;
  readonly #scope: string;

  constructor(cfg: BruteForceConfig, store: CounterStore, plugin: string) {
    this.#cfg = cfg;
    this.#store = store as SyncLocks;
    this.#scope = plugin;
  }

  #locked(key: string): number | Promise<number> {
    return this.#store.lockedForSync ? this.#store.lockedForSync(key) : this.#store.lockedFor(key);
  }

  #reply(ctx: PdkContext, ms: number): Reply {
    return problem(429, 'Too many failed authentication attempts; retry later', ctx.requestId, { 'retry-after': String(Math.ceil(ms / 1000)) });
  }

  /** A 429 when the client IP (or, when given, the identity) is locked out. */
  check(ctx: PdkContext, identity: string | null = null): Reply | null | Promise<Reply | null> {
    if (!this.#cfg.enabled) return null;
    const ip = this.#cfg.max_failures_per_ip > 0 ? this.#locked(`bf:ip:${ctx.request.clientIp}`) : 0;
    const id = identity !== null && this.#cfg.max_failures_per_identity > 0 ? this.#locked(`bf:id:${this.#scope}:${identity}`) : 0;
    if (typeof ip === 'number' && typeof id === 'number') {
      const ms = Math.max(ip, id);
      return ms > 0 ? this.#reply(ctx, ms) : null;
    }
    return Promise.all([ip, id]).then(([a, b]) => (Math.max(a, b) > 0 ? this.#reply(ctx, Math.max(a, b)) : null));
  }

  /** Record a failed attempt (never delays the answer). */
  fail(ctx: PdkContext, identity: string | null = null): void {
    const c = this.#cfg;
    if (!c.enabled) return;
    const windowMs = c.window * 1000;
    const count = (key: string, max: number) => {
      if (max <= 0) return;
      this.#store.increment(`bf:n:${key}`, 1, windowMs).then(
        (n) => (n >= max ? this.#store.lock(`bf:${key}`, c.lockout * 1000) : undefined),
        () => {},
      );
    };
    count(`ip:${ctx.request.clientIp}`, c.max_failures_per_ip);
    if (identity !== null) count(`id:${this.#scope}:${identity}`, c.max_failures_per_identity);
  }
}
