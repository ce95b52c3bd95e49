/**
 * Where the quota counters live: this gateway's counter store (policy local;
 * exact across cluster workers, the primary keeps the count) or Redis (policy
 * redis: one round trip to read every counter of a client, one to add to
 * them). A counter is per client, quota, period and calendar window; it
 * expires a second after its window ends.
 */
import type { CounterStore, RedisStore } from '../../pdk/index.ts';

export interface QuotaStore {
  /** Current totals of the counters `fields` of the client `group`. */
  read(group: string, fields: readonly string[]): Promise<number[]>;
  /** Add `by[i]` to counter `fields[i]` (0 = leave it), expiring at `expireAt[i]` (ms since the epoch). */
  add(group: string, fields: readonly string[], by: readonly number[], expireAt: readonly number[]): Promise<void>;
}

export class LocalQuotaStore implements QuotaStore {
  readonly #counters: CounterStore;

  constructor(counters: CounterStore) {
    this.#counters = counters;
  }

  read(group: string, fields: readonly string[]): Promise<number[]> {
    return Promise.all(fields.map((f) => this.#counters.get(`${group}|${f}`)));
  }

  async add(group: string, fields: readonly string[], by: readonly number[], expireAt: readonly number[]): Promise<void> {
    const now = Date.now();
    const pending: Promise<number>[] = [];
    for (let i = 0; i < fields.length; i++) {
      if (by[i]! > 0) pending.push(this.#counters.increment(`${group}|${fields[i]}`, by[i]!, Math.max(1, expireAt[i]! - now)));
    }
    await Promise.all(pending);
  }
}

export class RedisQuotaStore implements QuotaStore {
  readonly #redis: RedisStore;
  readonly #zeros = new Map<number, number[]>();

  constructor(redis: RedisStore) {
    this.#redis = redis;
  }

  read(group: string, fields: readonly string[]): Promise<number[]> {
    let zeros = this.#zeros.get(fields.length);
    if (zeros === undefined) this.#zeros.set(fields.length, (zeros = new Array<number>(fields.length).fill(0)));
    return this.#redis.add(group, fields, zeros, zeros);
  }

  async add(group: string, fields: readonly string[], by: readonly number[], expireAt: readonly number[]): Promise<void> {
    await this.#redis.add(group, fields, by, expireAt);
  }
}
