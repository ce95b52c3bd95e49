/**
 * A copy of the config safe to show: keys, tokens, passwords and secrets
 * masked — by field name (exact, or as a `_suffix`: `client_secret`,
 * `redis_password`, `session_secret`, `private_key`, `api_key`, …; strings and
 * lists of strings), and passwords inside URLs (`http://user:PASSWORD@host`)
 * wherever they appear. Over-masking a harmless field beats leaking a secret.
 */
const SECRET_KEYS = /^(keys?|tokens?|passwords?|passwd|secrets?|credentials?|private_keys?)$|[_-](keys?|tokens?|password|passwd|secrets?|credentials?)$/i;
const URL_PASSWORD = /\b([a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*:)[^@/?#\s]+@/gi;
const MASK = '[REDACTED]';

export function redactConfig<T>(value: T): T {
  return JSON.parse(JSON.stringify(value), (k, v: unknown) => {
    if (SECRET_KEYS.test(k)) {
      if (typeof v === 'string') return MASK;
      if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v.map(() => MASK);
    }
    return typeof v === 'string' && v.includes('@') ? v.replace(URL_PASSWORD, `$1${MASK}@`) : v;
  });
}
