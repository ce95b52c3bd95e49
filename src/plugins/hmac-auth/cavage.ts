/**
 * Kong's draft-cavage scheme (kong/plugins/hmac-auth/access.lua):
 *
 *   Authorization: hmac username="…", algorithm="hmac-sha256", headers="date request-line", signature="…"
 *
 * The signing string is, for each name in `headers`: `name: value` of the
 * request header, or the request line (`request-line`), or the lower-case
 * method and the request target (`@request-target`), or `name:` when the
 * header is absent; joined with "\n". Date or X-Date must be within
 * clock_skew. With validate_request_body, Digest must be SHA-256=<base64> of
 * the body.
 */
import type { KeyObject } from 'node:crypto';
import type { PdkContext } from '../../pdk/index.ts';
import { CAVAGE_HASHES, hmac, safeEqual, sha } from './keys.ts';

/** Kong's pattern, with [^"] instead of backtracking .+ (same matches for any header a client can sign). */
const HMAC_AUTH = /\s*[Hh]mac\s*username="([^"]+)",\s*algorithm="([^"]+)",\s*headers="([^"]+)",\s*signature="([^"]+)"/;

export interface CavageParams {
  readonly username: string;
  readonly algorithm: string;
  readonly headers: string[];
  readonly signature: string;
  /** The header it came from. */
  readonly from: 'authorization' | 'proxy-authorization';
}

function parseHeader(value: string | undefined, from: CavageParams['from']): CavageParams | null {
  if (value === undefined) return null;
  const m = HMAC_AUTH.exec(value);
  if (m === null) return null;
  return { username: m[1]!, algorithm: m[2]!, headers: m[3]!.split(' '), signature: m[4]!, from };
}

/** Proxy-Authorization first, then Authorization (Kong's order). */
export function parseCavage(ctx: PdkContext): CavageParams | null {
  return parseHeader(ctx.request.header('proxy-authorization'), 'proxy-authorization') ?? parseHeader(ctx.request.header('authorization'), 'authorization');
}

const MONTHS: Record<string, number> = { jan: 0, feb: 1, mar: 2, apr: 3, may: 4, jun: 5, jul: 6, aug: 7, sep: 8, oct: 9, nov: 10, dec: 11 };
const IMF = /^[A-Za-z]{3}, (\d{2}) ([A-Za-z]{3}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT$/;
const RFC850 = /^[A-Za-z]{6,9}, (\d{2})-([A-Za-z]{3})-(\d{2}) (\d{2}):(\d{2}):(\d{2}) GMT$/;
const ASCTIME = /^[A-Za-z]{3} ([A-Za-z]{3}) ([ \d]\d) (\d{2}):(\d{2}):(\d{2}) (\d{4})$/;

/** HTTP-date (IMF-fixdate, RFC 850, asctime — what nginx's parse_http_time reads) in seconds, or null. */
export function parseHttpDate(value: string): number | null {
  let d: number, mon: string, y: number, h: number, mi: number, s: number;
  let m = IMF.exec(value);
  if (m) [d, mon, y, h, mi, s] = [+m[1]!, m[2]!, +m[3]!, +m[4]!, +m[5]!, +m[6]!];
  else if ((m = RFC850.exec(value))) [d, mon, y, h, mi, s] = [+m[1]!, m[2]!, 1900 + +m[3]! + (+m[3]! < 70 ? 100 : 0), +m[4]!, +m[5]!, +m[6]!];
  else if ((m = ASCTIME.exec(value))) [mon, d, h, mi, s, y] = [m[1]!, +m[2]!.trim(), +m[3]!, +m[4]!, +m[5]!, +m[6]!];
  else return null;
  const month = MONTHS[mon.toLowerCase()];
  if (month === undefined || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return null;
  return Date.UTC(y, month, d, h, mi, s) / 1000;
}

/** Kong: X-Date, else Date, within clock_skew seconds of now. */
export function dateWithinSkew(ctx: PdkContext, skew: number, nowSec: number): boolean {
  for (const name of ['x-date', 'date']) {
    const v = ctx.request.header(name);
    if (v === undefined) continue;
    const t = parseHttpDate(v);
    if (t !== null && Math.abs(nowSec - t) <= skew) return true;
  }
  return false;
}

function signingString(ctx: PdkContext, headers: readonly string[], target: string): string {
  const req = ctx.request;
  const parts: string[] = [];
  for (const name of headers) {
    const value = req.header(name);
    if (value !== undefined) parts.push(`${name}: ${value}`);
    else if (name === '@request-target') parts.push(`${req.method.toLowerCase()} ${target}`);
    else if (name === 'request-line') parts.push(`${req.method} ${target} HTTP/${req.httpVersion}`);
    else parts.push(`${name}:`);
  }
  return parts.join('\n');
}

/** Strict base64 (ngx.decode_base64 refuses what is not base64), or null. */
function decodeBase64(s: string): Buffer | null {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 === 1) return null;
  return Buffer.from(s, 'base64');
}

/**
 * Kong's validate_signature: the signing string over the request target with
 * the query, then (deprecated in Kong, still accepted) over the path alone.
 */
export function cavageSignatureMatches(ctx: PdkContext, p: CavageParams, key: KeyObject): boolean {
  const hash = CAVAGE_HASHES[p.algorithm]!;
  const given = decodeBase64(p.signature) ?? Buffer.alloc(0);
  const req = ctx.request;
  const target = req.target.startsWith('/') ? req.target : req.path + (req.rawQuery === '' ? '' : `?${req.rawQuery}`);
  const first = safeEqual(hmac(hash, key, signingString(ctx, p.headers, target)), given);
  if (first) return true;
  const usesTarget = p.headers.some((h) => (h === 'request-line' || h === '@request-target') && req.header(h) === undefined);
  if (!usesTarget || req.path === target) return false;
  return safeEqual(hmac(hash, key, signingString(ctx, p.headers, req.path)), given);
}

/** Kong's validate_body: Digest must be SHA-256=<base64 of the body>; no Digest is fine only without a body. */
export function digestMatches(digestHeader: string | undefined, body: Buffer): boolean {
  if (digestHeader === undefined) return body.length === 0;
  const expected = Buffer.from(`SHA-256=${sha('sha256', body).toString('base64')}`);
  return safeEqual(expected, Buffer.from(digestHeader));
}
