/**
 * The headers a client sees, as Kong sends them — X-RateLimit-Limit-<Window>
 * and X-RateLimit-Remaining-<Window> for every window; RateLimit-Limit,
 * RateLimit-Remaining and RateLimit-Reset for the window with the fewest
 * requests left (on a tie, the longer window); Retry-After on a refusal —
 * plus the fields of draft-ietf-httpapi-ratelimit-headers:
 *   RateLimit-Policy: "second";q=10;w=1, "minute";q=100;w=60
 *   RateLimit: "second";r=9;t=1, "minute";r=42;t=18
 */
import type { RateVerdict, RateWindows } from '../../pdk/index.ts';
import { remaining, WINDOW_SECONDS, type Period } from '../../pdk/ratelimit.ts';

export interface HeaderTarget {
  setHeader(name: string, value: string): void;
}

const seconds = (ms: number) => Math.max(1, Math.ceil(ms / 1000));

export class HeaderSet {
  readonly #periods: readonly Period[];
  readonly #limits: readonly number[];
  readonly #limitText: string[];
  readonly #xLimit: string[];
  readonly #xRemaining: string[];
  readonly #policy: string;
  /** `"minute";r=` (with the list separator before all but the first). */
  readonly #ietf: string[];

  constructor(periods: readonly Period[], limits: readonly number[]) {
    this.#periods = periods;
    this.#limits = limits;
    this.#limitText = limits.map((l) => String(l));
    this.#xLimit = periods.map((p) => `x-ratelimit-limit-${p}`);
    this.#xRemaining = periods.map((p) => `x-ratelimit-remaining-${p}`);
    this.#ietf = periods.map((p, i) => `${i === 0 ? '' : ', '}"${p}";r=`);
    this.#policy = periods.map((p, i) => `"${p}";q=${Math.ceil(limits[i]!)};w=${WINDOW_SECONDS[p]}`).join(', ');
  }

  /**
   * Write the headers of a verdict with `set` (straight onto the response:
   * no intermediate object on the hot path). Retry-After when refused.
   */
  write(v: RateVerdict, w: RateWindows, now: number, out: HeaderTarget): void {
    let bestRemaining = Infinity;
    let bestLimit = '';
    let bestRemainingText = '';
    let bestReset = 0;
    let ietf = '';
    for (let i = 0; i < this.#periods.length; i++) {
      const rem = remaining(this.#limits[i]!, v.usage[i]!);
      const remText = String(rem);
      const reset = seconds((!v.admitted && rem === 0 ? v.retryAt : w.current[i]!.end) - now);
      out.setHeader(this.#xLimit[i]!, this.#limitText[i]!);
      out.setHeader(this.#xRemaining[i]!, remText);
      // Periods come smallest first: on a tie the later (longer) window wins, as in Kong.
      if (rem <= bestRemaining) {
        bestRemaining = rem;
        bestLimit = this.#limitText[i]!;
        bestRemainingText = remText;
        bestReset = reset;
      }
      ietf += this.#ietf[i]! + remText + ';t=' + reset;
    }
    out.setHeader('ratelimit-limit', bestLimit);
    out.setHeader('ratelimit-remaining', bestRemainingText);
    out.setHeader('ratelimit-reset', String(bestReset));
    out.setHeader('ratelimit-policy', this.#policy);
    out.setHeader('ratelimit', ietf);
    if (!v.admitted) out.setHeader('retry-after', String(seconds(v.retryAt - now)));
  }

  /** The same as an object (for a refusal's Reply). */
  build(v: RateVerdict, w: RateWindows, now: number): Record<string, string> {
    const h: Record<string, string> = {};
    this.write(v, w, now, { setHeader: (k, value) => void (h[k] = value) });
    return h;
  }
}
