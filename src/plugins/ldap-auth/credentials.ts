/**
 * ldap-auth's request side: the `Authorization: <header_type> base64(user:pass)`
 * parser (Kong's retrieve_credentials), and the bind-result cache keyed by an
 * HMAC of (username, password) under a random per-instance key — the
 * password is never kept, not even as a plain hash.
 */
import { createHmac, randomBytes } from 'node:crypto';

export interface Presented {
  readonly username: string;
  readonly password: string;
}

/** Not this plugin's scheme (another auth plugin's header): not a failed attempt. */
export const OTHER_SCHEME = 0;
/** This scheme, but not base64(username:password) with both non-empty. */
export const MALFORMED = 1;

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const MAX = 1024;

/**
 * Kong: the value must start with the header type (case-insensitive), then
 * whitespace, then base64 of `username:password` — the username ends at the
 * first colon (the password may hold more), and the password is not empty
 * (an empty password would be an unauthenticated bind, RFC 4513 §5.1.2).
 * Palisade also refuses an empty username.
 */
export function parseAuthorization(value: string, scheme: string): Presented | typeof OTHER_SCHEME | typeof MALFORMED {
  let i = 0;
  while (i < value.length && (value.charCodeAt(i) === 32 || value.charCodeAt(i) === 9)) i++;
  if (value.length < i + scheme.length + 1 || value.slice(i, i + scheme.length).toLowerCase() !== scheme) return OTHER_SCHEME;
  let j = i + scheme.length;
  const ws = j;
  while (j < value.length && (value.charCodeAt(j) === 32 || value.charCodeAt(j) === 9)) j++;
  if (j === ws) return OTHER_SCHEME;
  const b64 = value.slice(j).trimEnd();
  if (b64.length === 0 || b64.length > MAX * 3 || !BASE64.test(b64)) return MALFORMED;
  const decoded = Buffer.from(b64, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0 || colon === decoded.length - 1) return MALFORMED;
  const username = decoded.slice(0, colon);
  const password = decoded.slice(colon + 1);
  if (username.length > MAX || password.length > MAX) return MALFORMED;
  return { username, password };
}

export interface CachedBind {
  readonly ok: boolean;
  readonly groups: readonly string[] | null;
}

/** Bounded TTL cache of bind results (success and failure, like Kong's ttl/neg_ttl), with in-flight deduplication. */
export class BindCache {
  readonly #key = randomBytes(32);
  readonly #ttlMs: number;
  readonly #max: number;
  readonly #entries = new Map<string, { expires: number; value: CachedBind }>();
  readonly #pending = new Map<string, Promise<CachedBind>>();

  constructor(ttlSeconds: number, max = 10_000) {
    this.#ttlMs = ttlSeconds * 1000;
    this.#max = max;
  }

  /** The cache key: HMAC-SHA-256 over (username, password), never the password. */
  keyOf(p: Presented): string {
    return createHmac('sha256', this.#key).update(p.username).update('\0').update(p.password).digest('base64url');
  }

  get(key: string): CachedBind | undefined {
    const e = this.#entries.get(key);
    if (e === undefined) return undefined;
    if (e.expires <= Date.now()) {
      this.#entries.delete(key);
      return undefined;
    }
    return e.value;
  }

  /** Look up, or run `load` once for all concurrent callers of the same key; errors are not cached. */
  load(key: string, load: () => Promise<CachedBind>): Promise<CachedBind> {
    const inflight = this.#pending.get(key);
    if (inflight !== undefined) return inflight;
    const p = load().then(
      (value) => {
        this.#pending.delete(key);
        if (this.#ttlMs > 0) {
          if (this.#entries.size >= this.#max) this.#entries.delete(this.#entries.keys().next().value!);
          this.#entries.set(key, { expires: Date.now() + this.#ttlMs, value });
        }
        return value;
      },
      (err: unknown) => {
        this.#pending.delete(key);
        throw err;
      },
    );
    this.#pending.set(key, p);
    return p;
  }
}
