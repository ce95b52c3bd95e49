/**
 * A copy of the config safe to show: keys, tokens, passwords, hashes and
 * secrets masked —
 * - by field name (exact, or as a `_suffix`: `client_secret`, `redis_password`,
 *   `session_secret`, `private_key`, `api_key`, `key_hash`, `password_hash`, …),
 *   and by credential-carrying header name (`Authorization`,
 *   `Proxy-Authorization`, `Cookie`, `apikey`, `X-Api-Key`, `*-token`,
 *   `*-secret`, `*-team`, `*-signature`, …) wherever it is a key;
 * - every value of a `headers` map inside a plugin's `config` (http-log and
 *   opentelemetry send them to a collector: `Authorization: Splunk …`,
 *   `x-honeycomb-team: …`), whatever the header's name;
 * - passwords inside URLs (`http://user:PASSWORD@host`) wherever they appear.
 * Strings and lists of strings are masked. Over-masking a harmless field beats
 * leaking a secret. Hashed credentials are masked too: a fast hash of a weak
 * API key can be brute-forced, and nobody needs to read them.
 */
import { isSecretHeader } from '../pdk/index.ts';

const SECRET_KEYS = /^(keys?|tokens?|passwords?|passwd|secrets?|credentials?|private_keys?)$|[_-](keys?|tokens?|password|passwd|secrets?|credentials?|hash(es)?)$/i;
const URL_PASSWORD = /\b([a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*:)[^@/?#\s]+@/gi;
const INDEX = /^\d+$/;

/** What a masked value reads; on sync and diff it stands for "keep the gateway's current value" (src/admin/keep-masked.ts). */
export const MASK = '[REDACTED]';

/** Whether values under this field (or header) name are masked. */
export function isSecretKey(key: string): boolean {
  return SECRET_KEYS.test(key) || isSecretHeader(key);
}

/** Whether `path` (from the config root) runs through a `headers` map of a plugin's config: …/plugins/N/config/…/headers/NAME. */
function inPluginHeaders(path: readonly string[]): boolean {
  for (let i = 2; i < path.length - 2; i++) {
    if (path[i] !== 'config' || path[i - 2] !== 'plugins' || !INDEX.test(path[i - 1]!)) continue;
    for (let j = i + 1; j < path.length - 1; j++) if (path[j] === 'headers' && !INDEX.test(path[j + 1]!)) return true; // a map, not a list of names
    return false;
  }
  return false;
}

/**
 * Whether a string at `path` (JSON pointer segments from the config root) is
 * masked: its field is secret (for a list's element, the list's field), or it
 * is a plugin config's header value.
 */
export function isSecretPath(path: readonly string[]): boolean {
  const last = path.at(-1) ?? '';
  const field = INDEX.test(last) ? (path.at(-2) ?? '') : last;
  return isSecretKey(field) || inPluginHeaders(path);
}

/** Passwords in URLs masked: `http://user:[REDACTED]@host`. */
export function maskUrlPasswords(text: string): string {
  return text.includes('@') ? text.replace(URL_PASSWORD, `$1${MASK}@`) : text;
}

/** The password of the URL(s) in `text` (null unless there is exactly one). */
export function urlPassword(text: string): string | null {
  const found = [...text.matchAll(URL_PASSWORD)];
  return found.length === 1 ? found[0]![0].slice(found[0]![1]!.length, -1) : null;
}

function redact(v: unknown, path: string[]): unknown {
  if (typeof v === 'string') return isSecretPath(path) ? MASK : maskUrlPasswords(v);
  if (v === null || typeof v !== 'object') return v;
  const out: Record<string, unknown> | unknown[] = Array.isArray(v) ? [] : {};
  for (const [k, x] of Object.entries(v)) {
    path.push(k);
    (out as Record<string, unknown>)[k] = redact(x, path);
    path.pop();
  }
  return out;
}

/**
 * A masked copy of `value`, found at `at` (JSON pointer segments) in a config:
 * [] for a whole config, e.g. ['plugins', '0'] for a plugin entity, so that
 * the rules that depend on the place (plugin config headers) apply.
 */
export function redactConfig<T>(value: T, at: readonly string[] = []): T {
  if (value === undefined) return value;
  return redact(JSON.parse(JSON.stringify(value)) as unknown, [...at]) as T;
}
