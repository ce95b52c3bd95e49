/**
 * Rate-limit windows in memory: the local policy of a single-process gateway,
 * and the book the cluster primary keeps while it hands out quota leases to
 * its workers (src/shared-state/cluster.ts). The arithmetic of the sliding
 * estimate and of "when may the next request pass" is shared with the Redis
 * store (src/shared-state/redis.ts), so every store decides alike.
 *
 * A request is admitted while usage < limit (Kong's rule: remaining =
 * limit − usage, stop when remaining ≤ 0), in every window at once.
 * - fixed: usage = the count of the current window.
 * - sliding: usage = prev × (part of the previous window still inside the
 *   sliding interval) + cur = prev × (end − now) / (end − start) + cur.
 */
import type { RateWindows } from '../pdk/index.ts';

/** Usage of one window at `now` from its current and previous counts. */
export function usageOf(start: number, end: number, cur: number, prev: number, sliding: boolean, now: number): number {
  if (!sliding || prev === 0) return cur;
  const t = now < start ? start : now >= end ? end : now;
  return (prev * (end - t)) / (end - start) + cur;
}

/** How many more requests fit under `limit` at this usage (0 when none). */
export function room(limit: number, usage: number): number {
  const r = limit - usage;
  return r > 0 ? Math.ceil(r) : 0;
}

/**
 * The earliest time a request fits again in a full window: fixed — its end;
 * sliding — when the previous window's weight has decayed enough (in this
 * window, or in the next one when this one alone is full).
 */
export function retryAtOf(start: number, end: number, limit: number, cur: number, prev: number, sliding: boolean, now: number): number {
  if (!sliding) return end;
  const len = end - start;
  let at: number;
  if (cur < limit && prev > 0) at = end - ((limit - cur) * len) / prev;
  else at = end + len * (1 - limit / cur);
  return Math.max(Math.floor(at) + 1, now + 1);
}

interface Entry {
  /** Per window: start, previous start, counts. */
  start: number[];
  end: number[];
  prevStart: number[];
  cur: number[];
  prev: number[];
  /** When the entry is of no more use (its largest window and the one after it are over). */
  expiresAt: number;
}

function newEntry(n: number): Entry {
  return { start: new Array(n).fill(0), end: new Array(n).fill(0), prevStart: new Array(n).fill(0), cur: new Array(n).fill(0), prev: new Array(n).fill(0), expiresAt: 0 };
}

export class RateTable {
  readonly #entries = new Map<string, Entry>();

  get size(): number {
    return this.#entries.size;
  }

  /** The entry of `key`, rolled forward to the given windows (a window older than the entry's counts in the entry's). */
  #entry(key: string, w: RateWindows): Entry {
    const n = w.limits.length;
    let e = this.#entries.get(key);
    if (e === undefined || e.start.length !== n) {
      e = newEntry(n);
      this.#entries.set(key, e);
    }
    let horizon = 0;
    for (let i = 0; i < n; i++) {
      const win = w.current[i]!;
      if (win.start > e.start[i]!) {
        // The previous window's count survives only when it is the window right before.
        e.prev[i] = e.start[i] === win.prevStart ? e.cur[i]! : 0;
        e.prevStart[i] = win.prevStart;
        e.start[i] = win.start;
        e.end[i] = win.end;
        e.cur[i] = 0;
      }
      const keep = e.end[i]! + (e.end[i]! - e.start[i]!) * 2;
      if (keep > horizon) horizon = keep;
    }
    e.expiresAt = horizon;
    return e;
  }

  /**
   * Grant up to `want` requests in every window at once: as many as all of
   * them have room for, capped at a 1/`share` part of that room (at least 1)
   * so that one cluster worker does not take every token. Writes each window's
   * usage (after the grant) into `usage`; returns the number granted (0..want).
   */
  take(key: string, w: RateWindows, sliding: boolean, now: number, want: number, share: number, usage: number[]): number {
    const e = this.#entry(key, w);
    const n = w.limits.length;
    let free = Infinity;
    for (let i = 0; i < n; i++) {
      const u = usageOf(e.start[i]!, e.end[i]!, e.cur[i]!, e.prev[i]!, sliding, now);
      usage[i] = u;
      const r = room(w.limits[i]!, u);
      if (r < free) free = r;
    }
    if (free === 0) return 0;
    let g = share > 1 ? Math.max(1, Math.floor(free / share)) : free;
    if (g > want) g = want;
    for (let i = 0; i < n; i++) {
      e.cur[i]! += g;
      usage[i]! += g;
    }
    return g;
  }

  /** When a refused request could pass at the earliest (the latest over the full windows). */
  retryAt(key: string, w: RateWindows, sliding: boolean, now: number): number {
    const e = this.#entry(key, w);
    let at = now + 1;
    for (let i = 0; i < w.limits.length; i++) {
      const limit = w.limits[i]!;
      if (room(limit, usageOf(e.start[i]!, e.end[i]!, e.cur[i]!, e.prev[i]!, sliding, now)) > 0) continue;
      const t = retryAtOf(e.start[i]!, e.end[i]!, limit, e.cur[i]!, e.prev[i]!, sliding, now);
      if (t > at) at = t;
    }
    return at;
  }

  /** The current window starts of `key` and the end of its smallest window (after a take). */
  current(key: string): { starts: number[]; end: number } {
    const e = this.#entries.get(key);
    return e === undefined ? { starts: [], end: 0 } : { starts: e.start.slice(), end: e.end[0] ?? 0 };
  }

  has(key: string): boolean {
    return this.#entries.has(key);
  }

  /** Return `n` unused leased requests counted in the windows starting at `starts` (current or previous). */
  giveBack(key: string, starts: readonly number[], n: number): void {
    const e = this.#entries.get(key);
    if (e === undefined || n <= 0 || starts.length !== e.start.length) return;
    for (let i = 0; i < starts.length; i++) {
      if (e.start[i] === starts[i]) e.cur[i] = Math.max(0, e.cur[i]! - n);
      else if (e.prevStart[i] === starts[i]) e.prev[i] = Math.max(0, e.prev[i]! - n);
    }
  }

  sweep(now: number): void {
    for (const [k, e] of this.#entries) if (e.expiresAt <= now) this.#entries.delete(k);
  }
}
