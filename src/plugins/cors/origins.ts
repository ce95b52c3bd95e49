/**
 * Origin matching as Kong's cors handler does it: origins are normalized to
 * scheme://host[:port] (default ports dropped), exact entries compare
 * normalized values, regex entries are anchored at both ends and match the
 * host alone unless the regex contains a ':'.
 */

export interface NormalizedOrigin {
  /** scheme://host[:port] without a default port, or the raw value when it has no host. */
  readonly domain: string;
  readonly host: string;
}

interface Entry {
  readonly regex: RegExp | null;
  readonly domain: string;
  readonly byHost: boolean;
}

/** Characters of a plain (non-regex) origin, as Kong tells them apart. */
const PLAIN = /^[A-Za-z0-9.:/-]+$/;
const URL_HEAD = /^([A-Za-z0-9][A-Za-z0-9+.-]*):\/\/([^/?#]*)/;

export function normalizeOrigin(origin: string): NormalizedOrigin {
  const m = URL_HEAD.exec(origin);
  if (m === null) return { domain: origin, host: origin };
  const scheme = m[1]!;
  let authority = m[2]!;
  const at = authority.lastIndexOf('@');
  if (at >= 0) authority = authority.slice(at + 1);
  let host = authority;
  let port = '';
  const colon = authority.lastIndexOf(':');
  if (colon >= 0 && authority.indexOf(']', colon) < 0) {
    host = authority.slice(0, colon);
    port = authority.slice(colon + 1);
  }
  if (host === '') return { domain: origin, host: origin };
  const lower = scheme.toLowerCase();
  if ((lower === 'http' && port === '80') || (lower === 'https' && port === '443')) port = '';
  return { domain: `${scheme}://${host}${port === '' ? '' : `:${port}`}`, host };
}

/** Kong's anchoring of an origin regex: a leading ^ is dropped, a trailing $ ensured, the match anchored at the start. */
export function compileOriginRegex(entry: string): RegExp {
  let src = entry.endsWith('$') ? entry : `${entry}$`;
  if (src.startsWith('^')) src = src.slice(1);
  return new RegExp(`^(?:${src})`);
}

export function isPlainOrigin(entry: string): boolean {
  return PLAIN.test(entry);
}

/** Small bounded cache of normalized request origins (Kong keeps an LRU of them). */
const CACHE_MAX = 1000;
const cache = new Map<string, NormalizedOrigin>();

function normalizedRequestOrigin(origin: string): NormalizedOrigin {
  let n = cache.get(origin);
  if (n === undefined) {
    n = normalizeOrigin(origin);
    if (cache.size >= CACHE_MAX) cache.clear();
    cache.set(origin, n);
  }
  return n;
}

/** Outcome of a request origin that is present but not allowed. */
export const DENIED = Symbol('cors.denied');

/**
 * The compiled `origins` list. decide() returns the Access-Control-Allow-Origin
 * value ('*' = every origin), null when no value applies (no Origin sent and a
 * list configured), or DENIED.
 */
export class OriginPolicy {
  /** True when the value depends on the request Origin, so caches must Vary on it. */
  readonly varies: boolean;
  readonly #single: string | null;
  readonly #singleDomain: string;
  readonly #star: boolean;
  readonly #entries: readonly Entry[];

  constructor(origins: readonly string[] | undefined) {
    const list = origins ?? [];
    const any = list.length === 0 || (list.length === 1 && list[0] === '*');
    this.varies = !any;
    this.#single = !any && list.length === 1 && isPlainOrigin(list[0]!) ? list[0]! : null;
    this.#singleDomain = this.#single === null ? '' : normalizeOrigin(this.#single).domain;
    this.#star = any || list.includes('*');
    this.#entries = list
      .filter((e) => e !== '*')
      .map((e) =>
        isPlainOrigin(e)
          ? { regex: null, domain: normalizeOrigin(e).domain, byHost: !e.includes(':') }
          : { regex: compileOriginRegex(e), domain: '', byHost: !e.includes(':') },
      );
  }

  decide(origin: string | undefined): string | null | typeof DENIED {
    if (!this.varies) return '*';
    if (this.#single !== null) {
      if (origin === undefined || normalizedRequestOrigin(origin).domain === this.#singleDomain) return this.#single;
      return DENIED;
    }
    if (origin === undefined) return null;
    if (this.#star) return '*';
    const n = normalizedRequestOrigin(origin);
    const entries = this.#entries;
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      const ok = e.regex === null ? e.domain === n.domain : e.regex.test(e.byHost ? n.host : n.domain);
      if (ok) return n.domain;
    }
    return DENIED;
  }
}
