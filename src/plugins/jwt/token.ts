/**
 * A small strict JWS compact-serialization parser (RFC 7515 §7.1) with Kong's
 * error reasons (kong/plugins/jwt/jwt_parser.lua: "invalid JSON", "invalid
 * alg", "invalid claims", "invalid signature"), and the token lookup of
 * Kong's handler (query, cookies, `Bearer` headers; several different tokens
 * are an error).
 *
 * Stricter than Kong: segments must be unpadded base64url, the header and
 * the claims JSON objects, and a `crit` header (extensions this verifier does
 * not implement, RFC 7515 §4.1.11) refuses the token.
 */
import type { PdkRequest } from '../../pdk/index.ts';
import { isAlgorithm } from './keys.ts';
import type { JwtAlgorithm } from './schema.ts';

export interface ParsedToken {
  readonly alg: JwtAlgorithm;
  readonly header: Record<string, unknown>;
  readonly claims: Record<string, unknown>;
  /** `base64url(header).base64url(claims)`: what the signature covers. */
  readonly signingInput: string;
  readonly signature: Buffer;
}

const B64URL = /^[A-Za-z0-9_-]*$/;

function decodeObject(segment: string): Record<string, unknown> | null | undefined {
  if (segment.length === 0 || !B64URL.test(segment)) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
}

/** Parse a compact JWS, or return Kong's reason ("Bad token; <reason>"). */
export function parseToken(token: string): ParsedToken | string {
  const d1 = token.indexOf('.');
  const d2 = d1 < 0 ? -1 : token.indexOf('.', d1 + 1);
  if (d2 < 0) return 'invalid JSON';
  const header = decodeObject(token.slice(0, d1));
  const claims = decodeObject(token.slice(d1 + 1, d2));
  if (header === undefined || header === null || claims === undefined) return 'invalid JSON';
  const alg = header.alg;
  if (!isAlgorithm(alg)) return 'invalid alg';
  if (claims === null) return 'invalid claims';
  if (Object.hasOwn(header, 'crit')) return 'unsupported crit';
  const sig = token.slice(d2 + 1);
  if (!B64URL.test(sig)) return 'invalid signature';
  return { alg, header, claims, signingInput: token.slice(0, d2), signature: Buffer.from(sig, 'base64url') };
}

/** An own property (never one inherited from Object.prototype). */
export function own(obj: Record<string, unknown>, key: string): unknown {
  return Object.hasOwn(obj, key) ? obj[key] : undefined;
}

/** Marker for a query parameter given without a value (`?jwt`): Kong's "Unrecognizable token". */
export const BARE = Symbol('bare');
export type Found = string | typeof BARE;

function decodeQueryPart(s: string): string | null {
  if (s.indexOf('%') < 0 && s.indexOf('+') < 0) return s;
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return null;
  }
}

/** Where tokens are looked for: Kong's uri_param_names, cookie_names, header_names. */
export class TokenSources {
  readonly #params: ReadonlySet<string>;
  readonly #cookies: readonly string[];
  readonly #headers: readonly string[];

  constructor(params: readonly string[], cookies: readonly string[], headers: readonly string[]) {
    this.#params = new Set(params);
    this.#cookies = cookies.map((c) => c.toLowerCase());
    this.#headers = headers.map((h) => h.toLowerCase());
  }

  /** The distinct non-empty tokens the request carries: none (null), one, or several (an array). */
  find(req: PdkRequest): Found | Found[] | null {
    let first: Found | null = null;
    let more: Set<Found> | null = null;
    const add = (t: Found) => {
      if (first === null) first = t;
      else if (t !== first) (more ??= new Set([first])).add(t);
    };
    const raw = req.rawQuery;
    if (raw !== '' && this.#params.size > 0) {
      for (const part of raw.split('&')) {
        const eq = part.indexOf('=');
        const name = decodeQueryPart(eq < 0 ? part : part.slice(0, eq));
        if (name === null || !this.#params.has(name)) continue;
        if (eq < 0) add(BARE);
        else {
          const v = decodeQueryPart(part.slice(eq + 1));
          if (v !== null && v !== '') add(v);
        }
      }
    }
    if (this.#cookies.length > 0) {
      const cookie = req.header('cookie');
      if (cookie !== undefined) {
        for (const name of this.#cookies) {
          const v = cookieValue(cookie, name);
          if (v !== null && v !== '') add(v);
        }
      }
    }
    for (const name of this.#headers) {
      const v = req.header(name);
      if (v === undefined) continue;
      const m = BEARER.exec(v);
      if (m !== null && m[1] !== '') add(m[1]!);
    }
    return more !== null ? [...more] : first;
  }
}

/** Kong's `\s*[Bb]earer\s+(.+)`, unanchored like ngx.re.gmatch. */
const BEARER = /\s*[Bb]earer\s+(.+)/;

/** Value of a cookie (name compared case-insensitively, like nginx's $cookie_NAME), or null. */
function cookieValue(header: string, lowerName: string): string | null {
  let i = 0;
  while (i < header.length) {
    let end = header.indexOf(';', i);
    if (end < 0) end = header.length;
    const eq = header.indexOf('=', i);
    if (eq > 0 && eq < end && header.slice(i, eq).trim().toLowerCase() === lowerName) return header.slice(eq + 1, end).trim();
    i = end + 1;
  }
  return null;
}
