/**
 * A copy of the config safe to show: keys, tokens, passwords, hashes and
 * secrets masked — by field name (exact, or as a `_suffix`: `client_secret`,
 * `redis_password`, `session_secret`, `private_key`, `api_key`, `key_hash`,
 * `password_hash`, …; strings and lists of strings), and passwords inside URLs
 * (`http://user:PASSWORD@host`) wherever they appear. Over-masking a harmless
 * field beats leaking a secret. Hashed credentials are masked too: a fast hash
 * of a weak API key can be brute-forced, and nobody needs to read them.
 */
const SECRET_KEYS = /^(keys?|tokens?|passwords?|passwd|secrets?|credentials?|private_keys?)$|[_-](keys?|tokens?|password|passwd|secrets?|credentials?|hash(es)?)$/i;
const URL_PASSWORD = /\b([a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*:)[^@/?#\s]+@/gi;

/** What a masked value reads; on sync and diff it stands for "keep the gateway's current value" (src/admin/keep-masked.ts). */
export const MASK = '[REDACTED]';

/** Whether values under this field name are masked. */
export function isSecretKey(key: string): boolean {
  return SECRET_KEYS.test(key);
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

export function redactConfig<T>(value: T): T {
  return JSON.parse(JSON.stringify(value), (k, v: unknown) => {
    if (SECRET_KEYS.test(k)) {
      if (typeof v === 'string') return MASK;
      if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v.map(() => MASK);
    }
    return typeof v === 'string' ? maskUrlPasswords(v) : v;
  });
}

/** One value found under field name `key`, redacted as redactConfig would (undefined stays undefined). */
export function redactField(key: string, value: unknown): unknown {
  return value === undefined ? undefined : redactConfig({ [key]: value })[key];
}
