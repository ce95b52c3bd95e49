/**
 * Config of the basic-auth plugin: Kong's fields, names and defaults
 * (kong/plugins/basic-auth/schema.lua, 3.6+: `realm` defaults to "service"),
 * plus Palisade's `brute_force` and `verify_cache_ttl`. The credential
 * (consumers[].basicauth_credentials[]) keeps Kong's `username` and
 * `password` and adds `password_hash` for a ready hash.
 */
import { Type, type Static } from '@sinclair/typebox';
import { AnonymousField, BruteForceSchema, HideCredentialsField } from '../../pdk/auth.ts';
import { parsePasswordHash } from './passwords.ts';

export const BasicAuthSchema = Type.Object(
  {
    anonymous: AnonymousField,
    hide_credentials: HideCredentialsField,
    realm: Type.String({
      default: 'service',
      pattern: '^[^"\\\\\\x00-\\x1f\\x7f]*$',
      description: 'Realm of the `WWW-Authenticate: Basic realm="…"` challenge sent with every 401.',
    }),
    brute_force: BruteForceSchema,
    verify_cache_ttl: Type.Integer({
      minimum: 0,
      maximum: 3600,
      default: 60,
      description:
        'Palisade: seconds a successful password verification is remembered (keyed by an HMAC of credential and password, never the password), so repeated requests do not pay the ~50 ms hash again. 0 disables the cache. Failures are never cached.',
    }),
  },
  { additionalProperties: false, description: 'Authenticate clients by username and password (HTTP Basic, RFC 7617).' },
);

export type BasicAuthConfig = Static<typeof BasicAuthSchema>;

export const BasicAuthCredentialSchema = Type.Object({
  username: Type.String({ minLength: 1, description: 'The username (unique across consumers).' }),
  password: Type.Optional(
    Type.String({
      minLength: 1,
      description:
        'The password, in plain text: hashed with argon2id (m=19456 KiB, t=2, p=1) in the background when the config is compiled; the index then keeps only the hash. Exactly one of password and password_hash.',
    }),
  ),
  password_hash: Type.Optional(
    Type.String({
      description:
        'Palisade: a ready hash instead of the password, so the file never holds it: a PHC string ($argon2id$v=19$m=…,t=…,p=…$salt$hash, also $argon2i$/$argon2d$, or $scrypt$ln=…,r=…,p=…$salt$hash), or kong-sha1:<hex> for a hash exported from Kong (SHA-1 of password and consumer id; weak — replace it). bcrypt is not supported. Exactly one of password and password_hash.',
    }),
  ),
});

export type BasicAuthCredential = Static<typeof BasicAuthCredentialSchema>;

/** Cross-field rules of one credential. */
export function validateBasicAuthCredential(c: BasicAuthCredential): string | null {
  if (c.password === undefined && c.password_hash === undefined) return 'a basic-auth credential needs password or password_hash';
  if (c.password !== undefined && c.password_hash !== undefined) return 'password and password_hash are mutually exclusive';
  if (c.password_hash !== undefined) {
    const v = parsePasswordHash(c.password_hash);
    if (typeof v === 'string') return `password_hash: ${v}`;
  }
  return null;
}
