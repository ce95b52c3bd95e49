/**
 * The verdict on a User-Agent: the user's `allow` rules, then `deny`, then the
 * built-in rules (rules.ts), as Kong examines it (kong/plugins/bot-detection/
 * handler.lua). Everything is compiled once per config version; verdicts of
 * recent User-Agents are remembered in a bounded cache (10,000 per plugin
 * instance, as Kong's).
 */
import { KONG_BUILT_IN, SCANNER_BUILT_IN } from './rules.ts';

export const ALLOWED = 0;
export const ALLOW_LISTED = 1;
export const DENY_LISTED = 2;
export const BOT = 3;
export type Verdict = typeof ALLOWED | typeof ALLOW_LISTED | typeof DENY_LISTED | typeof BOT;

/**
 * Kong's built-in rules look at the first and at the last 512 characters
 * (real User-Agents are shorter): some of them cost more than linear time
 * (a 16 KB value made of "Google" took 90 ms), so a huge header must not
 * reach them whole; padding before or after a crawler's name does not hide
 * it. The scanner list is linear and sees the whole value, so an attack tool
 * cannot be hidden by padding at all. The user's rules see the whole value,
 * as in Kong.
 */
const BUILT_IN_SCAN = 512;
const CACHE_SIZE = 10_000;
/** Longer User-Agents are examined every time (they would make the cache large). */
const CACHEABLE = 512;

/** A Kong (PCRE) pattern as a RegExp: a leading (?i) becomes the i flag. Throws on a bad pattern. */
export function compile(pattern: string): RegExp {
  return pattern.startsWith('(?i)') ? new RegExp(pattern.slice(4), 'i') : new RegExp(pattern);
}

/** The first pattern of a list that does not compile, as "<field>[<index>]: why", or null. */
export function patternError(field: string, patterns: readonly string[]): string | null {
  for (let i = 0; i < patterns.length; i++) {
    try {
      compile(patterns[i]!);
    } catch (err) {
      return `${field}[${i}]: not a valid regular expression: ${(err as Error).message}`;
    }
  }
  return null;
}

const any = (rules: readonly RegExp[], s: string) => {
  for (let i = 0; i < rules.length; i++) if (rules[i]!.test(s)) return true;
  return false;
};

export class UserAgentMatcher {
  readonly #allow: readonly RegExp[];
  readonly #deny: readonly RegExp[];
  readonly #cache = new Map<string, Verdict>();

  constructor(allow: readonly string[], deny: readonly string[]) {
    this.#allow = allow.map(compile);
    this.#deny = deny.map(compile);
  }

  verdict(userAgent: string): Verdict {
    const cached = this.#cache.get(userAgent);
    if (cached !== undefined) return cached;
    const v = this.#examine(userAgent.trim());
    if (userAgent.length <= CACHEABLE) {
      // Bounded: the oldest entry makes room (insertion order).
      if (this.#cache.size >= CACHE_SIZE) this.#cache.delete(this.#cache.keys().next().value!);
      this.#cache.set(userAgent, v);
    }
    return v;
  }

  #examine(ua: string): Verdict {
    if (any(this.#allow, ua)) return ALLOW_LISTED;
    if (any(this.#deny, ua)) return DENY_LISTED;
    if (SCANNER_BUILT_IN.test(ua)) return BOT;
    if (ua.length <= BUILT_IN_SCAN) return any(KONG_BUILT_IN, ua) ? BOT : ALLOWED;
    return any(KONG_BUILT_IN, ua.slice(0, BUILT_IN_SCAN)) || any(KONG_BUILT_IN, ua.slice(-BUILT_IN_SCAN)) ? BOT : ALLOWED;
  }
}
