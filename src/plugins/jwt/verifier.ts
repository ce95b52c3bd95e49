/**
 * Token verification for one plugin instance, in Kong's order (handler.lua
 * do_authentication): parse → key claim → credential → algorithm → key →
 * signature → claims; plus Palisade's brute-force lockout (identity: the
 * credential key), key sets with kid selection and refresh, and a bounded LRU
 * of verified tokens keyed by a SHA-256 of the whole token.
 *
 * The common path is synchronous: only a lockout check against a remote
 * counter store and a key-set fetch return promises.
 */
import { hash } from 'node:crypto';
import type { FailureGuard } from '../../pdk/auth.ts';
import { Reply, type PdkContext } from '../../pdk/index.ts';
import { TokenCache } from './cache.ts';
import { ClaimRules, type ClaimErrors } from './claims.ts';
import type { CompiledCredential } from './credentials.ts';
import { isHmac, type PublicKey } from './keys.ts';
import { own, parseToken, type ParsedToken } from './token.ts';

/** A verified token: also the cache entry. */
export interface Verified {
  readonly cred: CompiledCredential;
  readonly claims: Record<string, unknown>;
  readonly exp: unknown;
  readonly nbf: unknown;
  /** Key-set generation the signature was checked against. */
  readonly generation: number;
  /** Values of claims_to_headers, in its order (null = claim absent or unusable). */
  readonly headers: readonly (string | null)[];
}

export class Failure {
  readonly status: 401 | 500;
  /** Kong's `message`, or null when `errors` carries claim errors. */
  readonly message: string | null;
  readonly errors: ClaimErrors | null;
  /** A presented-but-wrong credential: counts towards the brute-force lockout. */
  readonly count: boolean;
  /** The credential key the failure is charged to, or null (IP only). */
  readonly identity: string | null;

  constructor(status: 401 | 500, message: string | null, errors: ClaimErrors | null, count: boolean, identity: string | null) {
    this.status = status;
    this.message = message;
    this.errors = errors;
    this.count = count;
    this.identity = identity;
  }
}

export type Outcome = Verified | Failure | Reply;

/** At most this many keys of a set are tried for a token without `kid`. */
const MAX_CANDIDATES = 8;

export const SERVER_ERROR = new Failure(500, 'An unexpected error occurred', null, false, null);
const INVALID_KEY_SECRET = new Failure(401, 'Invalid key/secret', null, false, null);

function hashToken(token: string): string {
  return hash('sha256', token, 'base64');
}

export interface VerifierOptions {
  index: ReadonlyMap<string, CompiledCredential>;
  keyClaim: string;
  rules: ClaimRules;
  guard: FailureGuard;
  cacheSize: number;
  /** Claim paths of claims_to_headers. */
  headerClaims: readonly string[];
}

export class Verifier {
  readonly #index: ReadonlyMap<string, CompiledCredential>;
  readonly #keyClaim: string;
  readonly #rules: ClaimRules;
  readonly #guard: FailureGuard;
  readonly #cache: TokenCache<Verified> | null;
  readonly #headerClaims: readonly string[];
  readonly #noKeyClaim: Failure;
  readonly #emptyKeyClaim: Failure;
  readonly #noCredential: Failure;

  constructor(o: VerifierOptions) {
    this.#index = o.index;
    this.#keyClaim = o.keyClaim;
    this.#rules = o.rules;
    this.#guard = o.guard;
    this.#cache = o.cacheSize > 0 ? new TokenCache(o.cacheSize) : null;
    this.#headerClaims = o.headerClaims;
    this.#noKeyClaim = new Failure(401, `No mandatory '${o.keyClaim}' in claims`, null, true, null);
    this.#emptyKeyClaim = new Failure(401, `Invalid '${o.keyClaim}' in claims`, null, true, null);
    this.#noCredential = new Failure(401, `No credentials found for given '${o.keyClaim}'`, null, true, null);
  }

  verify(ctx: PdkContext, token: string, nowMs: number): Outcome | Promise<Outcome> {
    const now = Math.floor(nowMs / 1000);
    let key: string | null = null;
    if (this.#cache !== null) {
      key = hashToken(token);
      const hit = this.#cache.get(key);
      if (hit !== undefined) {
        const remote = hit.cred.remote;
        // keys() also starts the periodic refresh, so that a rotation is seen while every token hits the cache.
        if ((remote === null || (remote.keys(nowMs), remote.generation === hit.generation)) && ClaimRules.cacheable(hit.exp, hit.nbf, now)) {
          const lock = this.#guard.check(ctx, hit.cred.key);
          if (lock === null) return this.#checkClaims(hit, now);
          return lock instanceof Reply ? lock : lock.then((r) => r ?? this.#checkClaims(hit, now));
        }
        // Stale (expired, not yet valid, or another key-set generation): verify afresh; a success replaces it.
      }
    }

    const parsed = parseToken(token);
    if (typeof parsed === 'string') return new Failure(401, `Bad token; ${parsed}`, null, true, null);
    let value = own(parsed.claims, this.#keyClaim);
    if (value === undefined || value === null || value === false) value = own(parsed.header, this.#keyClaim);
    if (value === undefined || value === null || value === false) return this.#noKeyClaim;
    if (value === '') return this.#emptyKeyClaim;
    const cred = typeof value === 'string' ? this.#index.get(value) : undefined;
    if (cred === undefined) return this.#noCredential;

    const lock = this.#guard.check(ctx, cred.key);
    if (lock === null) return this.#verifyWith(cred, parsed, key, nowMs);
    return lock instanceof Reply ? lock : lock.then((r) => r ?? this.#verifyWith(cred, parsed, key, Date.now()));
  }

  #verifyWith(cred: CompiledCredential, t: ParsedToken, cacheKey: string | null, nowMs: number): Outcome | Promise<Outcome> {
    const alg = t.alg;
    // The credential's allow-list decides; the header's alg only has to be in it.
    if (!cred.algorithms.has(alg)) return new Failure(401, 'Invalid algorithm', null, true, cred.key);
    if (isHmac(alg)) {
      if (cred.hmac === null) return INVALID_KEY_SECRET;
      if (!cred.hmac.verify(alg, t.signingInput, t.signature)) return this.#badSignature(cred);
      return this.#accept(cred, t.claims, cacheKey, nowMs, 0);
    }
    const data = Buffer.from(t.signingInput, 'latin1');
    const remote = cred.remote;
    if (remote === null) {
      if (cred.keys === null) return INVALID_KEY_SECRET;
      return this.#tryKeys(cred.keys, cred.byKid, t, data) ? this.#accept(cred, t.claims, cacheKey, nowMs, 0) : this.#badSignature(cred);
    }
    if (remote.keys(nowMs) === null) {
      const loading = remote.load(nowMs);
      if (loading === null) return SERVER_ERROR;
      return loading.then(() => (remote.keys(Date.now()) === null ? SERVER_ERROR : this.#verifyRemote(cred, t, data, cacheKey, Date.now(), true)));
    }
    return this.#verifyRemote(cred, t, data, cacheKey, nowMs, true);
  }

  #verifyRemote(cred: CompiledCredential, t: ParsedToken, data: Buffer, cacheKey: string | null, nowMs: number, mayRefresh: boolean): Outcome | Promise<Outcome> {
    const remote = cred.remote!;
    const keys = remote.keys(nowMs)!;
    const generation = remote.generation;
    const kid = own(t.header, 'kid');
    if (mayRefresh && typeof kid === 'string' && !keys.some((k) => k.kid === kid)) {
      // An unknown kid: maybe a new key of a rotation. Refetch (rate-limited), then try again once.
      const refresh = remote.refreshForUnknownKid(nowMs);
      if (refresh !== null) return refresh.then(() => this.#verifyRemote(cred, t, data, cacheKey, Date.now(), false));
    }
    return this.#tryKeys(keys, true, t, data) ? this.#accept(cred, t.claims, cacheKey, nowMs, generation) : this.#badSignature(cred);
  }

  /** A key set picks by kid when the token has one; a single configured key ignores kid (Kong). */
  #tryKeys(keys: readonly PublicKey[], byKid: boolean, t: ParsedToken, data: Buffer): boolean {
    const kid = byKid ? own(t.header, 'kid') : undefined;
    let tried = 0;
    for (const k of keys) {
      if (typeof kid === 'string' ? k.kid !== kid : kid !== undefined && kid !== null) continue;
      if (!k.algs.has(t.alg)) continue;
      if (k.verify(t.alg, data, t.signature)) return true;
      if (++tried >= MAX_CANDIDATES) break;
    }
    return false;
  }

  #badSignature(cred: CompiledCredential): Failure {
    return new Failure(401, 'Invalid signature', null, true, cred.key);
  }

  #accept(cred: CompiledCredential, claims: Record<string, unknown>, cacheKey: string | null, nowMs: number, generation: number): Outcome {
    const now = Math.floor(nowMs / 1000);
    const errors = this.#rules.check(claims, now);
    if (errors !== null) return new Failure(401, null, errors, false, cred.key);
    const exp = own(claims, 'exp');
    const nbf = own(claims, 'nbf');
    const verified: Verified = { cred, claims, exp, nbf, generation, headers: this.#headerClaims.map((p) => headerValue(claimAt(claims, p))) };
    if (cacheKey !== null && ClaimRules.cacheable(exp, nbf, now)) this.#cache!.set(cacheKey, verified);
    return verified;
  }

  #checkClaims(hit: Verified, now: number): Outcome {
    const errors = this.#rules.check(hit.claims, now);
    return errors === null ? hit : new Failure(401, null, errors, false, hit.cred.key);
  }
}

/** A claim by name, or by a dotted path into nested objects when no claim has that exact name. */
export function claimAt(claims: Record<string, unknown>, path: string): unknown {
  if (Object.hasOwn(claims, path)) return claims[path];
  if (path.indexOf('.') < 0) return undefined;
  let cur: unknown = claims;
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object' || Array.isArray(cur) || !Object.hasOwn(cur, part)) return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

const CONTROL = /[\x00-\x08\x0a-\x1f\x7f]/;
const NON_ASCII = /[^\x00-\x7f]+/g;

/** A claim as a header value: strings as they are, the rest as JSON; control characters drop it, non-ASCII is percent-encoded. */
export function headerValue(v: unknown): string | null {
  if (v === undefined || v === null) return null;
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  if (CONTROL.test(s)) return null;
  return s.replace(NON_ASCII, encodeURIComponent);
}
