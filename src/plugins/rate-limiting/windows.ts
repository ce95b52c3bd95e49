/**
 * Kong's calendar windows, in UTC: a second, minute, hour or day starts on
 * its boundary since the epoch; a month or year on the first day of the
 * calendar month or year. Window objects are immutable and cached: a new one
 * exists only once the previous has ended, so the per-request cost is a
 * comparison.
 */
import type { RateWindow, RateWindows } from '../../pdk/index.ts';
import type { Period } from './schema.ts';

const FIXED: Partial<Record<Period, number>> = { second: 1000, minute: 60_000, hour: 3_600_000, day: 86_400_000 };

/** Nominal window lengths in seconds (Kong's EXPIRATION table): RateLimit-Policy's w=. */
export const WINDOW_SECONDS: Record<Period, number> = { second: 1, minute: 60, hour: 3600, day: 86400, month: 2592000, year: 31536000 };

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
