/**
 * Config of the hmac-auth plugin: Kong's fields, names and defaults
 * (kong/plugins/hmac-auth/schema.lua, Kong 3.14: hmac-sha224 added,
 * hmac-sha1 no longer enabled by default), plus Palisade's additions:
 * RFC 9421 HTTP Message Signatures (`signature_schemes`, `rfc9421`),
 * `max_body_size` and `brute_force`.
 */
import { Type, type Static } from '@sinclair/typebox';
import { AnonymousField, BruteForceSchema, HideCredentialsField } from '../../pdk/auth.ts';
import { Enum } from '../../pdk/index.ts';
import { RFC9421_ALGORITHMS } from './keys.ts';

export const CAVAGE_ALGORITHMS = ['hmac-sha1', 'hmac-sha224', 'hmac-sha256', 'hmac-sha384', 'hmac-sha512'] as const;

const Rfc9421Schema = Type.Object(
  {
    required_components: Type.Array(Type.String({ minLength: 1, description: 'A component name, or alternatives separated by "|".' }), {
      default: ['@method', '@target-uri|@request-target|@path'],
      description:
        'Components every signature must cover: derived component names (@method, @path …) or lower-case field names; "a|b" means either. Matched by name (any @query-param matches "@query-param").',
    }),
    require_query_coverage: Type.Boolean({
      default: true,
      description: 'When the request has a query string, the signature must cover it (@target-uri, @request-target or @query).',
    }),
    require_content_digest: Type.Boolean({
      default: true,
      description: 'When the request has a body, the signature must cover content-digest (RFC 9530), which is then checked against the body.',
    }),
    require_nonce: Type.Boolean({
      default: false,
      description: 'Refuse signatures without a nonce parameter. A nonce, when present, is always accepted once only (within the validity window).',
    }),
    tag: Type.Optional(Type.String({ minLength: 1, description: 'When set, only signatures carrying this tag parameter are accepted (application profile, RFC 9421 §2.3).' })),
    label: Type.Optional(Type.String({ minLength: 1, description: 'When set, only the signature with this label is verified; otherwise each signature in Signature-Input is tried in order (at most 8).' })),
  },
  { additionalProperties: false, default: {}, description: 'Palisade: RFC 9421 HTTP Message Signatures settings (used when signature_schemes contains rfc9421).' },
);

export const HmacAuthSchema = Type.Object(
  {
    hide_credentials: HideCredentialsField,
    clock_skew: Type.Number({
      exclusiveMinimum: 0,
      default: 300,
      description:
        'Clock skew in seconds to prevent replay attacks: the Date / X-Date of a draft-cavage request, and the created (and expires) parameter of an RFC 9421 signature, must be within it.',
    }),
    anonymous: AnonymousField,
    validate_request_body: Type.Boolean({
      default: false,
      description: 'draft-cavage: check the body against the Digest header (SHA-256=<base64>); a body without Digest is refused.',
    }),
    enforce_headers: Type.Array(Type.String(), {
      default: [],
      description: 'draft-cavage: headers the client must at least include in the signature (names as listed in the headers parameter).',
    }),
    algorithms: Type.Array(Enum([...CAVAGE_ALGORITHMS], { description: 'A draft-cavage HMAC algorithm.' }), {
      default: ['hmac-sha224', 'hmac-sha256', 'hmac-sha384', 'hmac-sha512'],
      uniqueItems: true,
      description: 'draft-cavage: HMAC algorithms accepted. hmac-sha1 is supported but not enabled by default (as in Kong 3.14+).',
    }),
    realm: Type.Optional(Type.String({ pattern: '^[^"\\\\\\x00-\\x1f\\x7f]*$', description: 'Realm of the WWW-Authenticate challenge sent with 401 (hmac realm="…"); without it the challenge is plain "hmac".' })),
    signature_schemes: Type.Array(Enum(['cavage', 'rfc9421'], { description: 'A signature scheme.' }), {
      default: ['cavage'],
      minItems: 1,
      uniqueItems: true,
      description:
        "Palisade: schemes accepted. cavage = Kong's Authorization: hmac …; rfc9421 = HTTP Message Signatures (Signature-Input / Signature). A request carrying Signature-Input is verified as RFC 9421 when it is enabled.",
    }),
    rfc9421: Rfc9421Schema,
    max_body_size: Type.Integer({
      minimum: 0,
      default: 1048576,
      description: 'Palisade: largest body (bytes) buffered to check Digest or Content-Digest; a larger body fails verification.',
    }),
    brute_force: BruteForceSchema,
  },
  { additionalProperties: false, description: "HMAC signature authentication (Kong's hmac-auth), with RFC 9421 HTTP Message Signatures." },
);

export type HmacAuthConfig = Static<typeof HmacAuthSchema>;

export const HmacCredentialSchema = Type.Object({
  username: Type.String({ minLength: 1, description: 'Unique username of the credential: the username of a draft-cavage signature and the keyid of an RFC 9421 signature.' }),
  secret: Type.Optional(
    Type.String({
      description:
        'HMAC secret. HMAC needs the secret itself, so it cannot be stored hashed: it is kept only in the compiled key and never logged. Required unless public_key is set.',
    }),
  ),
  secret_encoding: Enum(['text', 'base64'], {
    default: 'text',
    description: 'Palisade: how the secret is turned into key bytes: text = its UTF-8 bytes (Kong), base64 = decoded (e.g. RFC 9421 test-shared-secret).',
  }),
  public_key: Type.Optional(
    Type.Union([Type.String(), Type.Object({}, { additionalProperties: true })], {
      description: 'Palisade: RFC 9421 public key, as PEM (SPKI or PKCS#1) or JWK (object or JSON string): Ed25519, EC P-256 / P-384, or RSA (2048 bits or more).',
    }),
  ),
  algorithm: Type.Optional(
    Enum([...RFC9421_ALGORITHMS], {
      description:
        'Palisade: the RFC 9421 algorithm of the key. Default from the key: hmac-sha256 (secret), ed25519, ecdsa-p256-sha256, ecdsa-p384-sha384, rsa-pss-sha512 (RSA; set rsa-v1_5-sha256 for PKCS#1 v1.5).',
    }),
  ),
});

export type HmacCredential = Static<typeof HmacCredentialSchema>;
