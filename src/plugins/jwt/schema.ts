/**
 * Config of the jwt plugin and of its credentials (consumers[].jwt_secrets):
 * Kong's fields, names and defaults (kong/plugins/jwt/schema.lua, daos.lua),
 * plus Palisade's additions (key sets, claim checks, claims to headers,
 * token cache, brute-force protection), each marked "Palisade:".
 */
import { Type, type Static } from '@sinclair/typebox';
import { AnonymousField, BruteForceSchema } from '../../pdk/auth.ts';
import { Enum } from '../../pdk/index.ts';

/** Kong's algorithm list, in Kong's order. `none` is never accepted. */
export const JWT_ALGORITHMS = [
  'HS256', 'HS384', 'HS512',
  'RS256', 'RS384', 'RS512',
  'PS256', 'PS384', 'PS512',
  'ES256', 'ES384', 'ES512',
  'EdDSA',
] as const;
export type JwtAlgorithm = (typeof JWT_ALGORITHMS)[number];

/** An RFC 7230 token: what a header name may be. */
const HEADER_NAME = '^[!#$%&\'*+.^_`|~0-9A-Za-z-]+$';

const jwk = (description: string) =>
  Type.Object(
    {
      kty: Type.String({ description: 'Key type: RSA, EC or OKP (symmetric "oct" keys are refused: HMAC secrets go in `secret`).' }),
      kid: Type.Optional(Type.String({ description: 'Key id, matched against the token header `kid`.' })),
      alg: Type.Optional(Type.String({ description: "When set, the only algorithm this key verifies (it must also be in the credential's allow-list)." })),
    },
    { additionalProperties: true, description },
  );
const Jwk = jwk('A public JSON Web Key (RFC 7517): RSA (n, e), EC (crv, x, y) or OKP (crv Ed25519/Ed448, x).');

export const JwtCredentialSchema = Type.Object({
  key: Type.Optional(
    Type.String({
      minLength: 1,
      description:
        'Value the token must carry in its `key_claim_name` claim (by default `iss`) to be verified with this credential; sent upstream as X-Credential-Identifier. Unique. Unset: the credential id (Kong generates a random key).',
    }),
  ),
  secret: Type.Optional(
    Type.String({
      minLength: 1,
      description: 'HMAC secret for the HS256/HS384/HS512 algorithms (base64 when the plugin has `secret_is_base64`). Used for nothing else.',
    }),
  ),
  rsa_public_key: Type.Optional(
    Type.String({
      minLength: 1,
      description:
        'PEM public key (SPKI or PKCS#1) or certificate for the asymmetric algorithms. Despite Kong\'s name, also an EC (P-256/384/521) or Ed25519/Ed448 key. RSA keys must have at least 2048 bits.',
    }),
  ),
  algorithm: Enum([...JWT_ALGORITHMS], {
    default: 'HS256',
    description: 'The algorithm tokens of this credential are signed with; a token whose header `alg` differs is refused ("Invalid algorithm").',
  }),
  algorithms: Type.Optional(
    Type.Array(Enum([...JWT_ALGORITHMS]), {
      minItems: 1,
      uniqueItems: true,
      description:
        'Palisade: explicit allow-list of algorithms, replacing `algorithm` (e.g. [RS256, ES256] for a key set). HS* use only `secret`, the others only public keys: a secret never verifies as a public key nor the reverse.',
    }),
  ),
  jwk: Type.Optional(jwk('Palisade: one public key as a JWK (RSA, EC or OKP), instead of `rsa_public_key`.')),
  jwks: Type.Optional(
    Type.Object(
      { keys: Type.Array(Jwk, { minItems: 1, description: 'The public keys (JWKs); the token header `kid` picks one.' }) },
      { additionalProperties: true, description: 'Palisade: an inline JWK Set document (RFC 7517 §5), instead of `rsa_public_key`.' },
    ),
  ),
  jwks_url: Type.Optional(
    Type.String({
      pattern: '^https?://',
      description:
        'Palisade: URL of a JWK Set (an identity provider\'s jwks_uri), fetched on first use, cached (`jwks_cache_ttl`) and refetched when a token names an unknown `kid` (at most once per `jwks_refresh_min_interval`). A failed fetch keeps the last good keys.',
    }),
  ),
});
export type JwtCredential = Static<typeof JwtCredentialSchema>;

export const JwtSchema = Type.Object(
  {
    uri_param_names: Type.Array(Type.String({ minLength: 1 }), {
      default: ['jwt'],
      uniqueItems: true,
      description: 'Query string parameters inspected for a token.',
    }),
    cookie_names: Type.Array(Type.String({ minLength: 1 }), { default: [], uniqueItems: true, description: 'Cookies inspected for a token.' }),
    header_names: Type.Array(Type.String({ pattern: HEADER_NAME }), {
      default: ['authorization'],
      uniqueItems: true,
      description: 'Request headers inspected for a token, in the form `Bearer <token>`.',
    }),
    key_claim_name: Type.String({
      minLength: 1,
      default: 'iss',
      description: 'The claim (read from the payload, then from the header) whose value is the `key` of the credential that verifies the token.',
    }),
    secret_is_base64: Type.Boolean({
      default: false,
      description: 'The credentials\' `secret` is base64-encoded; tokens are signed with the decoded bytes.',
    }),
    claims_to_verify: Type.Optional(
      Type.Array(Enum(['exp', 'nbf']), {
        uniqueItems: true,
        description: 'Registered claims to verify (RFC 7519): `exp` (token expired) and/or `nbf` (not valid yet). Unset: neither is checked (Kong\'s default).',
      }),
    ),
    anonymous: AnonymousField,
    run_on_preflight: Type.Boolean({ default: true, description: 'Authenticate OPTIONS preflight requests too; false lets them through.' }),
    maximum_expiration: Type.Number({
      minimum: 0,
      maximum: 31536000,
      default: 0,
      description: 'Refuse tokens whose `exp` is more than this many seconds in the future (0 = no limit). Requires `exp` in `claims_to_verify`.',
    }),
    realm: Type.Optional(
      Type.String({
        pattern: '^[^"\\\\\\x00-\\x1f\\x7f]*$',
        description: 'Realm of the `WWW-Authenticate: Bearer realm="…"` challenge sent with a 401 (no quotes, backslashes or control characters); unset: `Bearer` alone.',
      }),
    ),
    // Palisade additions.
    allowed_issuers: Type.Optional(
      Type.Array(Type.String(), { minItems: 1, uniqueItems: true, description: 'Palisade: the token\'s `iss` must be one of these.' }),
    ),
    allowed_audiences: Type.Optional(
      Type.Array(Type.String(), {
        minItems: 1,
        uniqueItems: true,
        description: 'Palisade: the token\'s `aud` (a string or an array) must contain one of these.',
      }),
    ),
    max_token_age: Type.Optional(
      Type.Integer({
        minimum: 1,
        description: 'Palisade: refuse tokens issued (`iat`, then required) more than this many seconds ago, or in the future.',
      }),
    ),
    clock_skew: Type.Integer({
      minimum: 0,
      maximum: 600,
      default: 0,
      description: 'Palisade: seconds of clock difference tolerated by the `exp`, `nbf` and `iat` checks.',
    }),
    claims_to_headers: Type.Record(Type.String({ minLength: 1 }), Type.String({ pattern: HEADER_NAME }), {
      default: {},
      description:
        'Palisade: claims sent upstream as request headers, e.g. { sub: X-User-Id }. A dotted name (realm_access.roles) reads a nested claim; objects and arrays are sent as JSON. A client\'s own copies of these headers are always removed.',
    }),
    token_cache_size: Type.Integer({
      minimum: 0,
      default: 10000,
      description:
        'Palisade: verified tokens remembered (LRU, keyed by a SHA-256 of the token) to skip the signature check; time claims are still checked on every request. 0 = no cache.',
    }),
    jwks_cache_ttl: Type.Integer({
      minimum: 1,
      default: 300,
      description: 'Palisade: seconds a fetched `jwks_url` key set is used before it is refetched (in the background).',
    }),
    jwks_refresh_min_interval: Type.Integer({
      minimum: 0,
      default: 30,
      description: 'Palisade: a token with an unknown `kid` refetches the key set at most once per this many seconds.',
    }),
    jwks_timeout: Type.Integer({ minimum: 1, default: 5000, description: 'Palisade: milliseconds allowed for fetching a `jwks_url`.' }),
    brute_force: BruteForceSchema,
  },
  { additionalProperties: false, description: 'Verify JSON Web Tokens (RFC 7519) signed with a consumer\'s secret or public key.' },
);
export type JwtConfig = Static<typeof JwtSchema>;
