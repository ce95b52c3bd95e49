/**
 * Config of the mtls-auth plugin: Kong's fields, names and defaults
 * (Kong Enterprise mtls-auth, 3.x), with `ca_certificates` holding PEM
 * certificates instead of ids of CA certificate entities; Palisade adds
 * `crls`, `send_client_cert_headers` and `brute_force`. Fields that only
 * steer CRL/OCSP downloads are accepted at Kong's defaults; the proxies and
 * the SAN DirectoryName matcher are refused.
 *
 * The credential (consumers[].mtls_auth_credentials[]) keeps Kong's
 * `subject_name` and `ca_certificate` (a PEM, or its SHA-256 fingerprint).
 */
import { Type, type Static } from '@sinclair/typebox';
import { Enum } from '../../pdk/index.ts';
import { AnonymousField, BruteForceSchema } from '../../pdk/auth.ts';
import { caFingerprint, TrustStore, UUID } from './trust.ts';

const Port = (what: string) => Type.Optional(Type.Integer({ minimum: 0, maximum: 65535, description: `${what} Not supported: Palisade downloads no CRL and asks no OCSP responder.` }));
const Host = (what: string) => Type.Optional(Type.String({ description: `${what} Not supported: Palisade downloads no CRL and asks no OCSP responder.` }));

export const MtlsAuthSchema = Type.Object(
  {
    ca_certificates: Type.Array(Type.String({ description: 'A PEM CA certificate (or a bundle of them).' }), {
      minItems: 1,
      description:
        'CA certificates a client certificate must chain to, as PEM (Kong: ids of CA certificate entities; Palisade takes the PEM itself). Checked by the plugin, whatever the listener verified.',
    }),
    anonymous: AnonymousField,
    consumer_by: Type.Array(Enum(['username', 'custom_id'], { description: 'A consumer field.' }), {
      default: ['username', 'custom_id'],
      uniqueItems: true,
      description: "Consumer fields matched against the certificate's subject names (SANs, then CN) when no mtls_auth_credentials mapping matches; [] disables auto-matching.",
    }),
    default_consumer: Type.Optional(Type.String({ description: 'Consumer (id or username) used when a trusted certificate matches no consumer.' })),
    cache_ttl: Type.Number({ minimum: 0, default: 60, description: 'Seconds a verified certificate (by SHA-256 fingerprint) is remembered (never past its notAfter). 0 disables the cache.' }),
    skip_consumer_lookup: Type.Boolean({
      default: false,
      description: 'Accept any trusted certificate without a consumer: X-Client-Cert-DN and X-Client-Cert-SAN go upstream, and authenticated_group_by sets the authenticated group (for acl).',
    }),
    authenticated_group_by: Enum(['CN', 'DN'], { default: 'CN', description: "With skip_consumer_lookup: the certificate's CN or DN becomes the authenticated group (ctx.shared.authenticated_groups)." }),
    revocation_check_mode: Enum(['IGNORE_CA_ERROR', 'SKIP', 'STRICT'], {
      default: 'IGNORE_CA_ERROR',
      description:
        'Revocation against `crls`: SKIP ignores them; IGNORE_CA_ERROR refuses a certificate a CRL revokes and accepts one whose issuer has no CRL; STRICT also refuses when an issuer has no CRL or its CRL is past nextUpdate.',
    }),
    allow_partial_chain: Type.Boolean({ default: false, description: 'Accept a chain that ends at a configured intermediate CA (otherwise it must reach a configured self-signed root).' }),
    send_ca_dn: Type.Boolean({
      default: false,
      description: "Accepted for Kong compatibility, no effect: the listener's CertificateRequest lists the certificate entity's client_ca names.",
    }),
    cert_cache_ttl: Type.Number({ minimum: 0, default: 60000, description: 'Kong: milliseconds a downloaded revocation status is cached. Accepted, no effect (CRLs come from the config).' }),
    http_timeout: Type.Number({ minimum: 0, default: 30000, description: 'Kong: timeout of CRL/OCSP downloads. Accepted, no effect (no downloads).' }),
    ssl_verify: Type.Boolean({ default: true, description: 'Kong: verify TLS of CRL/OCSP downloads. Accepted, no effect (no downloads).' }),
    http_proxy_host: Host('Kong: HTTP proxy for CRL/OCSP downloads.'),
    http_proxy_port: Port('Kong: HTTP proxy port for CRL/OCSP downloads.'),
    https_proxy_host: Host('Kong: HTTPS proxy for CRL/OCSP downloads.'),
    https_proxy_port: Port('Kong: HTTPS proxy port for CRL/OCSP downloads.'),
    san_dirname_matcher: Type.Array(Type.String({ description: 'A DirectoryName attribute.' }), {
      default: [],
      description: 'Kong: SAN DirectoryName attributes used for consumer lookup. Not supported (must be empty): DirectoryName SANs are not matched.',
    }),
    crls: Type.Array(Type.String({ description: 'A PEM X509 CRL.' }), {
      default: [],
      description: 'Palisade: PEM CRLs, each signed by one of ca_certificates; a certificate they revoke is refused (see revocation_check_mode). Kong downloads CRLs and asks OCSP; Palisade does neither.',
    }),
    send_client_cert_headers: Type.Boolean({
      default: false,
      description:
        'Palisade: send the verified certificate upstream in X-Client-Cert-DN, X-Client-Cert-SAN, X-Client-Cert-Fingerprint (SHA-256, lower-case hex), X-Client-Cert-Serial and X-Client-Cert-Not-After (RFC 3339).',
    }),
    brute_force: BruteForceSchema,
  },
  { additionalProperties: false, description: 'Authenticate clients by their TLS client certificate (mutual TLS).' },
);

export type MtlsAuthConfig = Static<typeof MtlsAuthSchema>;

export function validateMtlsAuth(c: MtlsAuthConfig): string | null {
  for (const f of ['http_proxy_host', 'http_proxy_port', 'https_proxy_host', 'https_proxy_port'] as const) {
    if (c[f] !== undefined) return `${f} is not supported: Palisade downloads no CRL and asks no OCSP responder; put the CRLs in crls`;
  }
  if (c.san_dirname_matcher.length > 0) return 'san_dirname_matcher is not supported: DirectoryName SANs are not matched';
  try {
    new TrustStore(c);
  } catch (err) {
    return (err as Error).message;
  }
  return null;
}

export const MtlsAuthCredentialSchema = Type.Object({
  subject_name: Type.String({ minLength: 1, description: "A subject name of the client certificate: a SAN (DNS, email, URI, IP) or its CN, matched exactly." }),
  ca_certificate: Type.Optional(
    Type.String({
      description:
        'Only certificates issued under this CA match: its PEM (as in Kong declarative files) or its SHA-256 fingerprint (hex, colons optional). Kong CA certificate ids are not supported.',
    }),
  ),
});

export type MtlsAuthCredential = Static<typeof MtlsAuthCredentialSchema>;

export function validateMtlsAuthCredential(c: MtlsAuthCredential): string | null {
  if (c.ca_certificate === undefined) return null;
  if (UUID.test(c.ca_certificate.trim())) return 'ca_certificate: Kong CA certificate ids are not supported, give the PEM certificate or its SHA-256 fingerprint';
  try {
    caFingerprint(c.ca_certificate);
  } catch (err) {
    return `ca_certificate: ${(err as Error).message}`;
  }
  return null;
}
