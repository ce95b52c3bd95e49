/**
 * Active health checks: periodic HTTP probes of each target, Kong's semantics —
 * healthy targets probed every `healthy.interval` s, unhealthy ones every
 * `unhealthy.interval` s; thresholds of successes / failures flip the state.
 */
import { request } from 'undici';
import type { Logger } from 'pino';
import type { Balancer, Target } from './balancer.ts';

interface Counters {
  successes: number;
  tcp: number;
  timeouts: number;
  http: number;
}

export class ActiveHealthChecker {
  readonly #balancer: Balancer;
  readonly #log: Logger;
  readonly #counters = new Map<Target, Counters>();
  #timers: NodeJS.Timeout[] = [];
  #stopped = false;
  /** A round still probing (index 0: healthy targets, 1: unhealthy ones) is not started again. */
  readonly #running = [false, false];

  constructor(balancer: Balancer, log: Logger) {
    this.#balancer = balancer;
    this.#log = log;
  }

  start(): void {
    const active = this.#balancer.config?.healthchecks.active;
    if (!active) return;
    for (const [healthy, interval] of [
      [true, active.healthy.interval],
      [false, active.unhealthy.interval],
    ] as const) {
      if (interval <= 0) continue;
      const timer = setInterval(() => void this.#round(healthy), interval * 1000);
      timer.unref();
      this.#timers.push(timer);
    }
  }

  stop(): void {
    this.#stopped = true;
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
  }

  async #round(healthy: boolean): Promise<void> {
    // A probe can take longer than the interval (up to active.timeout): rounds must not overlap, or
    // one target gets several probes at once and each counts towards the thresholds.
    const slot = healthy ? 0 : 1;
    if (this.#running[slot]) return;
    this.#running[slot] = true;
    try {
      const targets = this.#balancer.targets.filter((t) => t.healthy === healthy);
      const concurrency = this.#balancer.config!.healthchecks.active.concurrency;
      for (let i = 0; i < targets.length && !this.#stopped; i += concurrency) {
        await Promise.all(targets.slice(i, i + concurrency).map((t) => this.#probe(t)));
      }
    } finally {
      this.#running[slot] = false;
    }
  }

  async #probe(t: Target): Promise<void> {
    const active = this.#balancer.config!.healthchecks.active;
    const c = this.#counters.get(t) ?? { successes: 0, tcp: 0, timeouts: 0, http: 0 };
    this.#counters.set(t, c);
    let outcome: 'success' | 'tcp' | 'timeouts' | 'http' | null;
    const timeout = Math.max(1, active.timeout * 1000);
    try {
      const res = await request(`${active.type}://${t.address}${active.http_path}`, {
        method: 'GET',
        headersTimeout: timeout,
        bodyTimeout: timeout,
        signal: AbortSignal.timeout(timeout),
      });
      await res.body.dump();
      outcome = active.healthy.http_statuses.includes(res.statusCode)
        ? 'success'
        : active.unhealthy.http_statuses.includes(res.statusCode)
          ? 'http'
          : null;
    } catch (err) {
      // AbortSignal.timeout() rejects with a DOMException named TimeoutError (whose numeric `code` is 23).
      const e = err as { code?: unknown; name?: string };
      outcome = e.name === 'TimeoutError' || e.code === 'UND_ERR_HEADERS_TIMEOUT' || e.code === 'UND_ERR_CONNECT_TIMEOUT' || e.code === 'UND_ERR_BODY_TIMEOUT' ? 'timeouts' : 'tcp';
    }
    if (this.#stopped || outcome === null) return;
    if (outcome === 'success') {
      c.tcp = c.timeouts = c.http = 0;
      c.successes++;
      if (!t.healthy && active.healthy.successes > 0 && c.successes >= active.healthy.successes) this.#flip(t, true);
      return;
    }
    c.successes = 0;
    c[outcome]++;
    const limit = outcome === 'tcp' ? active.unhealthy.tcp_failures : outcome === 'timeouts' ? active.unhealthy.timeouts : active.unhealthy.http_failures;
    if (t.healthy && limit > 0 && c[outcome] >= limit) this.#flip(t, false);
  }

  #flip(t: Target, healthy: boolean): void {
    this.#balancer.setHealth(t, healthy);
    this.#counters.set(t, { successes: 0, tcp: 0, timeouts: 0, http: 0 });
    this.#log.warn({ upstream: this.#balancer.name, target: t.address, healthy }, healthy ? 'target healthy again' : 'target marked unhealthy');
  }
}
