/**
 * Claim checks. Kong's first (kong/plugins/jwt/jwt_parser.lua
 * verify_registered_claims, check_maximum_expiration): errors keyed by claim,
 * worded as Kong words them ("must be a number", "token expired", "token not
 * valid yet", "exceeds maximum allowed expiration"); then Palisade's
 * (`allowed_issuers`, `allowed_audiences`, `max_token_age`), in the same form.
 * All take the allowed clock skew into account. They depend on the time, so
 * they run on every request, cached token or not.
 */
import type { JwtConfig } from './schema.ts';
import { own } from './token.ts';

export type ClaimErrors = Record<string, string>;

export class ClaimRules {
  readonly #kongOrder: readonly ('exp' | 'nbf')[];
  readonly #maxExpiration: number;
  readonly #issuers: ReadonlySet<string> | null;
  readonly #audiences: ReadonlySet<string> | null;
  readonly #maxAge: number;
  readonly #skew: number;

  constructor(config: JwtConfig) {
    this.#kongOrder = [...new Set(config.claims_to_verify ?? [])];
    this.#maxExpiration = config.maximum_expiration;
    this.#issuers = config.allowed_issuers ? new Set(config.allowed_issuers) : null;
    this.#audiences = config.allowed_audiences ? new Set(config.allowed_audiences) : null;
    this.#maxAge = config.max_token_age ?? 0;
    this.#skew = config.clock_skew;
  }

  /**
   * Kong's registered-claim errors (or null), then its maximum_expiration
   * error, then Palisade's; `now` in seconds. Each step stops at its first
   * failing group, as Kong returns after each.
   */
  check(claims: Record<string, unknown>, now: number): ClaimErrors | null {
    const skew = this.#skew;
    let errors: ClaimErrors | null = null;
    for (const name of this.#kongOrder) {
      const v = own(claims, name);
      if (typeof v !== 'number') (errors ??= {})[name] = 'must be a number';
      else if (name === 'exp' ? v + skew <= now : v - skew > now) (errors ??= {})[name] = name === 'exp' ? 'token expired' : 'token not valid yet';
    }
    if (errors !== null) return errors;
    if (this.#maxExpiration > 0) {
      const exp = own(claims, 'exp') as number;
      if (exp - now > this.#maxExpiration) return { exp: 'exceeds maximum allowed expiration' };
    }
    if (this.#issuers !== null) {
      const iss = own(claims, 'iss');
      if (typeof iss !== 'string' || !this.#issuers.has(iss)) (errors ??= {}).iss = 'issuer not allowed';
    }
    if (this.#audiences !== null && !this.#audienceAllowed(own(claims, 'aud'))) (errors ??= {}).aud = 'audience not allowed';
    if (this.#maxAge > 0) {
      const iat = own(claims, 'iat');
      if (typeof iat !== 'number') (errors ??= {}).iat = 'must be a number';
      else if (iat - skew > now) (errors ??= {}).iat = 'token issued in the future';
      else if (now - iat > this.#maxAge + skew) (errors ??= {}).iat = 'token too old';
    }
    return errors;
  }

  #audienceAllowed(aud: unknown): boolean {
    const allowed = this.#audiences!;
    if (typeof aud === 'string') return allowed.has(aud);
    if (!Array.isArray(aud)) return false;
    for (const a of aud) if (typeof a === 'string' && allowed.has(a)) return true;
    return false;
  }

  /**
   * Whether a verified token may still be served from the cache at `now`
   * (seconds): never past its `exp` nor before its `nbf`, whatever the
   * configured checks (the full path decides those cases).
   */
  static cacheable(exp: unknown, nbf: unknown, now: number): boolean {
    return !(typeof exp === 'number' && exp <= now) && !(typeof nbf === 'number' && nbf > now);
  }
}
