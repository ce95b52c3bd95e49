/**
 * Canonical JSON (RFC 8785, JCS, for the values audit records hold: objects,
 * arrays, strings, finite numbers, booleans, null): object members sorted by
 * key (UTF-16 code units), no whitespace, ECMAScript string and number
 * serialization. A record's hash is SHA-256 over its canonical JSON; records
 * are written in canonical form, so a line's hash is the hash of its bytes.
 */
import { createHash } from 'node:crypto';

/** `prev` of the first record of a chain. */
export const GENESIS = '0'.repeat(64);

export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) throw new Error('canonical JSON has no NaN or Infinity');
    return JSON.stringify(value) ?? 'null';
  }
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v === undefined ? null : v)).join(',')}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj).filter((k) => obj[k] !== undefined).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}
