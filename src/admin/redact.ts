/** A copy of the config safe to show: keys, tokens, passwords and secrets masked. */
const SECRET_KEYS = /^(key|token|password|secret|client_secret|private_key|credentials?)$/i;

export function redactConfig<T>(value: T): T {
  return JSON.parse(JSON.stringify(value), (k, v) => (SECRET_KEYS.test(k) && typeof v === 'string' ? '[REDACTED]' : v));
}
