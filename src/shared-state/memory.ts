/**
 * In-process counters and locks with expiry: the default store of a
 * single-process gateway, and the store the cluster primary keeps for its
 * workers (src/shared-state/cluster.ts).
 */
import type { CounterStore, RateVerdict, RateWindows } from '../pdk/index.ts';
import { RateTable } from './rate.ts';

interface Entry {
  value: number;
  expiresAt: number;
}

export class MemoryCounterStore implements CounterStore {
  readonly #counters = new Map<string, Entry>();
  readonly #locks = new Map<string, number>();
  readonly #sweeper: NodeJS.Timeout;
  /** Rate-limit windows (rate-limiting's local policy; the cluster primary's lease book). */
  readonly rates = new RateTable();

  constructor(sweepMs = 10_000) {
    this.#sweeper = setInterval(() => this.sweep(), sweepMs);
    this.#sweeper.unref();
  }

  incrementSync(key: string, by: number, windowMs: number, now = Date.now()): number {
    const e = this.#counters.get(key);
    if (e === undefined || e.expiresAt <= now) {
      this.#counters.set(key, { value: by, expiresAt: now + windowMs });
      return by;
    }
    e.value += by;
    return e.value;
  }

  getSync(key: string, now = Date.now()): number {
    const e = this.#counters.get(key);
    return e === undefined || e.expiresAt <= now ? 0 : e.value;
  }

  lockSync(key: string, ttlMs: number, now = Date.now()): void {
    this.#locks.set(key, now + ttlMs);
  }

  /** Absolute expiry of a lock (ms since epoch), for mirroring to workers. */
  lockUntil(key: string): number {
    return this.#locks.get(key) ?? 0;
  }

  setLockUntil(key: string, until: number): void {
    this.#locks.set(key, until);
  }

  lockedForSync(key: string, now = Date.now()): number {
    const until = this.#locks.get(key);
    if (until === undefined) return 0;
    if (until <= now) {
      this.#locks.delete(key);
      return 0;
    }
    return until - now;
  }

  deleteSync(key: string): void {
    this.#counters.delete(key);
    this.#locks.delete(key);
  }

  async increment(key: string, by: number, windowMs: number): Promise<number> {
    return this.incrementSync(key, by, windowMs);
  }
  async get(key: string): Promise<number> {
    return this.getSync(key);
  }
  async lock(key: string, ttlMs: number): Promise<void> {
    this.lockSync(key, ttlMs);
  }
  async lockedFor(key: string): Promise<number> {
    return this.lockedForSync(key);
  }
  async delete(key: string): Promise<void> {
    this.deleteSync(key);
  }

  /** Synchronous: one Map lookup and a few additions. */
  hit(key: string, windows: RateWindows, sliding: boolean, now: number): RateVerdict {
    const usage = new Array<number>(windows.limits.length);
    const granted = this.rates.take(key, windows, sliding, now, 1, 1, usage);
    return { admitted: granted > 0, usage, retryAt: granted > 0 ? 0 : this.rates.retryAt(key, windows, sliding, now) };
  }

  sweep(now = Date.now()): void {
    for (const [k, e] of this.#counters) if (e.expiresAt <= now) this.#counters.delete(k);
    for (const [k, until] of this.#locks) if (until <= now) this.#locks.delete(k);
    this.rates.sweep(now);
  }

  close(): void {
    clearInterval(this.#sweeper);
  }
}
