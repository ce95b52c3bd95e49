/**
 * Key sets: inline (a credential's `jwk` / `jwks`) and remote (`jwks_url`).
 *
 * A remote set is fetched on first use, used for `ttl` and then refetched in
 * the background (requests go on with the keys they have), and refetched at
 * once when a token names a `kid` the set lacks — at most once per
 * `minInterval`, so that random kids cannot turn the gateway into a load
 * generator against the identity provider. A failed fetch (network, status,
 * size, JSON, no usable key) is logged and keeps the last good keys; a set
 * that never loaded makes verification fail closed. Every change of the keys
 * bumps `generation`, which invalidates the verified-token cache.
 *
 * Remote sets live in a process-wide registry keyed by URL and settings, so a
 * config reload keeps the keys it already has instead of refetching them.
 */
import type { Logger } from 'pino';
import { importJwk, type PublicKey } from './keys.ts';

/** Largest JWK Set document accepted. */
const MAX_BYTES = 512 * 1024;

/** Import the usable keys of a JWK Set; `onSkip` hears why the others were left out. */
export function importKeySet(doc: unknown, onSkip: (index: number, reason: string) => void): PublicKey[] {
  const keys = doc !== null && typeof doc === 'object' ? (doc as { keys?: unknown }).keys : undefined;
  if (!Array.isArray(keys)) throw new Error('not a JWK Set (no "keys" array)');
  const out: PublicKey[] = [];
  for (const [i, jwk] of keys.entries()) {
    try {
      out.push(importJwk(jwk as Record<string, unknown>));
    } catch (err) {
      onSkip(i, (err as Error).message);
    }
  }
  return out;
}

export interface RemoteSettings {
  ttlMs: number;
  minIntervalMs: number;
  timeoutMs: number;
}

export class RemoteKeySet {
  readonly url: string;
  readonly #settings: RemoteSettings;
  #log: Logger;
  #keys: readonly PublicKey[] | null = null;
  #fingerprint = '';
  /** Bumped whenever the keys change. */
  generation = 0;
  #fetchedAt = 0;
  #attemptAt = Number.NEGATIVE_INFINITY;
  #inflight: Promise<void> | null = null;
  /** Fetches started (observability, tests). */
  fetches = 0;

  constructor(url: string, settings: RemoteSettings, log: Logger) {
    this.url = url;
    this.#settings = settings;
    this.#log = log;
  }

  set logger(log: Logger) {
    this.#log = log;
  }

  /** The current keys (null until a fetch succeeded); starts a background refresh when they are older than the TTL. */
  keys(now: number): readonly PublicKey[] | null {
    if (this.#keys !== null && now - this.#fetchedAt >= this.#settings.ttlMs && this.#inflight === null && now - this.#attemptAt >= this.#retryMs()) {
      void this.#refresh();
    }
    return this.#keys;
  }

  /** First load: wait for it (or for the fetch in flight). Does not refetch while a failed attempt is recent. */
  load(now: number): Promise<void> | null {
    if (this.#keys !== null) return null;
    if (this.#inflight !== null) return this.#inflight;
    if (now - this.#attemptAt < this.#retryMs()) return null;
    return this.#refresh();
  }

  /** A token named an unknown kid: refetch, unless one was started less than minInterval ago (then null). */
  refreshForUnknownKid(now: number): Promise<void> | null {
    if (this.#inflight !== null) return this.#inflight;
    if (now - this.#attemptAt < this.#settings.minIntervalMs) return null;
    return this.#refresh();
  }

  /** After a failure, retry no more often than the kid-refresh limit (at least once a second). */
  #retryMs(): number {
    return Math.max(1000, this.#settings.minIntervalMs);
  }

  #refresh(): Promise<void> {
    this.#attemptAt = Date.now();
    this.fetches++;
    const p = this.#fetch().finally(() => {
      this.#inflight = null;
    });
    this.#inflight = p;
    return p;
  }

  async #fetch(): Promise<void> {
    try {
      const res = await fetch(this.url, {
        signal: AbortSignal.timeout(this.#settings.timeoutMs),
        redirect: 'manual',
        headers: { accept: 'application/jwk-set+json, application/json' },
      });
      if (res.status !== 200) {
        await res.body?.cancel();
        throw new Error(`HTTP status ${res.status}`);
      }
      let doc: unknown;
      try {
        doc = JSON.parse(await readCapped(res));
      } catch (err) {
        throw (err as Error).name === 'SyntaxError' ? new Error('invalid JSON') : err;
      }
      const keys = importKeySet(doc, (i, reason) => this.#log.warn({ jwks_url: this.url, key: i, reason }, 'jwt: key left out of the JWK Set'));
      if (keys.length === 0) throw new Error('no usable key in the JWK Set');
      const fingerprint = keys.map((k) => k.fingerprint).join('\n');
      if (fingerprint !== this.#fingerprint) {
        this.#keys = keys;
        this.#fingerprint = fingerprint;
        this.generation++;
        this.#log.info({ jwks_url: this.url, keys: keys.length, kids: keys.map((k) => k.kid) }, 'jwt: JWK Set loaded');
      }
      this.#fetchedAt = Date.now();
    } catch (err) {
      const e = err as Error;
      this.#log.warn(
        { jwks_url: this.url, reason: e.name === 'TimeoutError' ? 'timeout' : e.message, keeping: this.#keys?.length ?? 0 },
        'jwt: JWK Set fetch failed; keeping the last good keys',
      );
    }
  }
}

async function readCapped(res: Response): Promise<string> {
  const declared = Number(res.headers.get('content-length') ?? -1);
  if (declared > MAX_BYTES) {
    await res.body?.cancel();
    throw new Error(`JWK Set larger than ${MAX_BYTES} bytes`);
  }
  if (res.body === null) return '';
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of res.body) {
    total += chunk.length;
    if (total > MAX_BYTES) throw new Error(`JWK Set larger than ${MAX_BYTES} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, total).toString('utf8');
}

const registry = new Map<string, RemoteKeySet>();

/** The process-wide remote key set for this URL and settings (created on first use). */
export function remoteKeySet(url: string, settings: RemoteSettings, log: Logger): RemoteKeySet {
  const id = `${url}\n${settings.ttlMs}\n${settings.minIntervalMs}\n${settings.timeoutMs}`;
  let set = registry.get(id);
  if (set === undefined) registry.set(id, (set = new RemoteKeySet(url, settings, log)));
  else set.logger = log;
  return set;
}
