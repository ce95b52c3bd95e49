/**
 * The configured quotas, compiled once: one slot per (quota, period) with its
 * limit, counter field and header names; Kong's checks of the `limits` map;
 * and the parser of the upstream's usage header ("videos=2, images=1").
 */
import { PERIOD_TAG, PERIODS, periodLimitsError, type Period } from '../../pdk/ratelimit.ts';
import type { QuotaConfig } from './schema.ts';

const TOKEN = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;
/** Larger reported amounts are ignored (a broken header must not poison a counter). */
const MAX_AMOUNT = 1_000_000_000;
const DIGITS = /^\d{1,10}$/;

/** Kong's checks of the limits map (and the quota names, which become header names), or null. */
export function limitsError(limits: Record<string, QuotaConfig>): string | null {
  const lower = new Map<string, string>();
  for (const [name, quota] of Object.entries(limits)) {
    if (!TOKEN.test(name)) return `limits: '${name}' cannot be a quota name: it becomes part of header names (letters, digits and !#$%&'*+.^_\`|~- only)`;
    const twin = lower.get(name.toLowerCase());
    if (twin !== undefined) return `limits: '${twin}' and '${name}' differ only in case (header names do not)`;
    lower.set(name.toLowerCase(), name);
    const error = periodLimitsError(quota, `limits.${name}: `);
    if (error !== null) return error;
  }
  return null;
}

/** One limit of one quota. */
export interface Slot {
  readonly quota: number;
  readonly period: Period;
  readonly limit: number;
  /** Counter field without the window start ("videos:m:"). */
  readonly field: string;
  readonly limitHeader: string;
  readonly limitText: string;
  readonly remainingHeader: string;
}

export class Quotas {
  /** Quota names, in config order. */
  readonly names: readonly string[];
  /** Every (quota, period), grouped by quota, periods smallest first. */
  readonly slots: readonly Slot[];
  /** X-RateLimit-Remaining-<name>, sent upstream. */
  readonly upstreamHeaders: readonly string[];
  readonly #index: Map<string, number>;

  constructor(limits: Record<string, QuotaConfig>) {
    this.names = Object.keys(limits);
    this.#index = new Map(this.names.map((n, i) => [n, i]));
    this.upstreamHeaders = this.names.map((n) => `x-ratelimit-remaining-${n}`);
    const slots: Slot[] = [];
    this.names.forEach((name, quota) => {
      for (const period of PERIODS) {
        const limit = limits[name]![period];
        if (typeof limit !== 'number') continue;
        slots.push({
          quota,
          period,
          limit,
          field: `${name}:${PERIOD_TAG[period]}:`,
          limitHeader: `x-ratelimit-limit-${name}-${period}`,
          limitText: String(limit),
          remainingHeader: `x-ratelimit-remaining-${name}-${period}`,
        });
      }
    });
    this.slots = slots;
  }

  /**
   * What the upstream reports a response consumed, per quota (Kong's
   * parse_header): comma-separated name=amount pairs, unknown names ignored,
   * the last amount of a name wins; amounts are whole numbers ≥ 0. Null when
   * nothing was consumed.
   */
  usage(header: string | string[] | undefined): number[] | null {
    if (header === undefined) return null;
    let out: number[] | null = null;
    for (const value of typeof header === 'string' ? [header] : header) {
      for (const part of value.split(',')) {
        const eq = part.indexOf('=');
        if (eq < 0 || part.indexOf('=', eq + 1) >= 0) continue;
        const q = this.#index.get(part.slice(0, eq).trim());
        if (q === undefined) continue;
        const text = part.slice(eq + 1).trim();
        if (!DIGITS.test(text)) continue;
        const n = Number(text);
        if (n > MAX_AMOUNT) continue;
        (out ??= new Array<number>(this.names.length).fill(0))[q] = n;
      }
    }
    return out !== null && out.some((n) => n > 0) ? out : null;
  }
}
