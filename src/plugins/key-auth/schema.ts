/**
 * Config of the key-auth plugin: Kong's fields, names and defaults
 * (kong/plugins/key-auth/schema.lua, 3.x), plus Palisade's `brute_force` and
 * `max_body_size`. The credential (consumers[].keyauth_credentials[]) keeps
 * Kong's `key`, `ttl` and `created_at`, and adds `key_hash` so that a file
 * need not carry the plain key at all.
 */
import { Type, type Static } from '@sinclair/typebox';
import { AnonymousField, BruteForceSchema, HideCredentialsField } from '../../pdk/auth.ts';

/** Environment variable holding the secret of `hmac-sha256:` key hashes. */
export const HMAC_SECRET_ENV = 'PALISADE_KEY_AUTH_HMAC_SECRET';
/** Shortest HMAC secret accepted. */
export const HMAC_SECRET_MIN = 32;

export const KeyAuthSchema = Type.Object(
  {
    key_names: Type.Array(
      Type.String({
        pattern: '^[A-Za-z0-9_-]+$',
        description: 'A header, query argument or body field name. Only [A-Za-z0-9_-] (Kong\'s header_name).',
      }),
      {
        minItems: 1,
        default: ['apikey'],
        description:
          'Names of the header, query argument or body field where the plugin looks for a key, tried in order. Header names are case-insensitive, query and body names are not.',
      },
    ),
    hide_credentials: HideCredentialsField,
    anonymous: AnonymousField,
    key_in_header: Type.Boolean({ default: true, description: 'Look for the key in the request headers.' }),
    key_in_query: Type.Boolean({ default: true, description: 'Look for the key in the query string.' }),
    key_in_body: Type.Boolean({
      default: false,
      description:
        'Look for the key in the request body: application/x-www-form-urlencoded, application/json (a top-level field) and multipart/form-data. The body is buffered (up to max_body_size) only when the key was not found in a header or the query string, or when hide_credentials must remove it from the body.',
    }),
    run_on_preflight: Type.Boolean({
      default: true,
      description: 'Authenticate OPTIONS (CORS preflight) requests too. When false, OPTIONS requests pass without a key.',
    }),
    realm: Type.Optional(
      Type.String({
        pattern: '^[^"\\\\\\x00-\\x1f\\x7f]*$',
        description: 'Realm of the `WWW-Authenticate: Key realm="…"` challenge sent with every 401. Unset: the challenge is just `Key`.',
      }),
    ),
    brute_force: BruteForceSchema,
    max_body_size: Type.Integer({
      minimum: 1,
      default: 1048576,
      description:
        'Palisade: largest body (bytes) read when key_in_body is true. A larger body is not searched (and not changed by hide_credentials); it is streamed upstream untouched.',
    }),
  },
  { additionalProperties: false, description: 'Authenticate clients by an API key in a header, the query string or the body.' },
);

export type KeyAuthConfig = Static<typeof KeyAuthSchema>;

export const KeyAuthCredentialSchema = Type.Object({
  key: Type.Optional(
    Type.String({
      minLength: 1,
      description: 'The API key, in plain text. Hashed (SHA-256, or HMAC-SHA-256 when the HMAC secret is set) when the config is compiled; the index keeps only the digest. Exactly one of key and key_hash.',
    }),
  ),
  key_hash: Type.Optional(
    Type.String({
      pattern: '^(sha256|hmac-sha256):[0-9a-fA-F]{64}$',
      description: `Palisade: the key's digest instead of the key, so the file never holds it: "sha256:<hex of SHA-256(key)>" or "hmac-sha256:<hex of HMAC-SHA-256(secret, key)>" with the secret in the ${HMAC_SECRET_ENV} environment variable. Exactly one of key and key_hash.`,
    }),
  ),
  ttl: Type.Optional(
    Type.Integer({
      minimum: 0,
      maximum: 100000000,
      description:
        'Seconds the key stays valid, counted from created_at when it is set, else from the moment this gateway process first loaded the credential (a reload does not extend it; a restart does). 0 or unset: no expiry.',
    }),
  ),
  created_at: Type.Optional(Type.Integer({ minimum: 0, description: 'Unix time (seconds) the credential was created; the start of its ttl.' })),
});

export type KeyAuthCredential = Static<typeof KeyAuthCredentialSchema>;

/** Cross-field rules of one credential. */
export function validateKeyAuthCredential(c: KeyAuthCredential): string | null {
  if (c.key === undefined && c.key_hash === undefined) return 'a key-auth credential needs key or key_hash';
  if (c.key !== undefined && c.key_hash !== undefined) return 'key and key_hash are mutually exclusive';
  if (c.key_hash?.startsWith('hmac-sha256:')) {
    const secret = process.env[HMAC_SECRET_ENV];
    if (secret === undefined || secret.length < HMAC_SECRET_MIN) {
      return `key_hash: hmac-sha256 digests need the ${HMAC_SECRET_ENV} environment variable (at least ${HMAC_SECRET_MIN} characters)`;
    }
  }
  return null;
}
