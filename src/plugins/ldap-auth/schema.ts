/**
 * Config of the ldap-auth plugin: Kong's fields, names and defaults
 * (kong/plugins/ldap-auth/schema.lua, 3.x with `realm`), plus Palisade's
 * additions: `ca_certificates` (trust for verify_ldap_host), consumer mapping
 * (`consumer_by`, `consumer_optional`), group lookup (`group_base_dn`,
 * `group_member_attribute`, `group_name_attribute`), `on_ldap_error` and
 * `brute_force`. No credential field: the identities live in the directory.
 */
import { X509Certificate } from 'node:crypto';
import { Type, type Static } from '@sinclair/typebox';
import { Enum } from '../../pdk/index.ts';
import { AnonymousField, BruteForceSchema, HideCredentialsField } from '../../pdk/auth.ts';

/** An attribute description: a name (cn, uid, sAMAccountName) or an OID. */
const ATTRIBUTE = '^([A-Za-z][A-Za-z0-9-]*|[0-9]+(\\.[0-9]+)*)$';

export const LdapAuthSchema = Type.Object(
  {
    ldap_host: Type.String({ minLength: 1, pattern: '^[^\\s/]+$', description: 'Host name or IP address of the LDAP server.' }),
    ldap_port: Type.Integer({ minimum: 0, maximum: 65535, default: 389, description: 'TCP port of the LDAP server (389 for ldap and StartTLS, 636 for ldaps).' }),
    ldaps: Type.Boolean({ default: false, description: 'Connect with LDAP over TLS (ldaps://). Exclusive with start_tls.' }),
    start_tls: Type.Boolean({ default: false, description: 'Upgrade the plain LDAP connection with the StartTLS extended operation before binding. Exclusive with ldaps.' }),
    verify_ldap_host: Type.Boolean({
      default: false,
      description:
        "Verify the LDAP server's TLS certificate (chain and host name) with ldaps or start_tls. Kong's default is false (unverified TLS): set it to true. Trust: ca_certificates, else the system CAs.",
    }),
    base_dn: Type.String({ minLength: 1, description: 'DN under which users live: the plugin binds as `<attribute>=<username>,<base_dn>`, e.g. ou=people,dc=example,dc=com.' }),
    attribute: Type.String({ pattern: ATTRIBUTE, description: 'Attribute naming the user in its DN (e.g. uid or cn).' }),
    cache_ttl: Type.Number({
      minimum: 0,
      default: 60,
      description:
        'Seconds a bind result (success and failure) is remembered, keyed by an HMAC of username and password (never the password itself). 0 disables the cache (Kong: 0 caches forever).',
    }),
    hide_credentials: HideCredentialsField,
    timeout: Type.Number({ exclusiveMinimum: 0, default: 10000, description: 'Milliseconds allowed to connect to the LDAP server and for each LDAP operation.' }),
    keepalive: Type.Number({
      minimum: 0,
      default: 60000,
      description: 'Milliseconds an idle connection to the LDAP server is kept for reuse before it is closed (0 = close after each use).',
    }),
    anonymous: AnonymousField,
    header_type: Type.String({
      default: 'ldap',
      pattern: "^[A-Za-z0-9!#$%&'*+.^_`|~-]+$",
      description: 'Authorization scheme the credentials come with: `Authorization: <header_type> base64(username:password)` (case-insensitive); e.g. basic.',
    }),
    realm: Type.Optional(
      Type.String({
        pattern: '^[^"\\\\\\x00-\\x1f\\x7f]*$',
        description: 'Realm of the WWW-Authenticate challenge sent with 401 (`LDAP realm="…"`); without it the challenge is the bare scheme.',
      }),
    ),
    ca_certificates: Type.Optional(
      Type.Array(Type.String({ description: 'A PEM CA certificate (or bundle).' }), {
        description: "Palisade: PEM CA certificates trusted when verify_ldap_host is true (Kong uses nginx's lua_ssl_trusted_certificate). Default: the system CAs.",
      }),
    ),
    consumer_by: Type.Array(Enum(['username', 'custom_id'], { description: 'A consumer field.' }), {
      default: [],
      uniqueItems: true,
      description:
        "Palisade: map the LDAP username to a consumer by these fields, in order. Empty (default) = Kong's ldap-auth: no consumer, only X-Credential-Identifier.",
    }),
    consumer_optional: Type.Boolean({
      default: false,
      description: 'Palisade: with consumer_by, accept a user that matches no consumer (authenticated without a consumer) instead of refusing it with 401.',
    }),
    group_base_dn: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'Palisade: after a successful bind, search this subtree (as the user) for groups listing the user DN in group_member_attribute; their names go to ctx.shared.authenticated_groups (read by acl) and X-Authenticated-Groups.',
      }),
    ),
    group_member_attribute: Type.String({ pattern: ATTRIBUTE, default: 'member', description: 'Palisade: group attribute holding member DNs (member, uniqueMember).' }),
    group_name_attribute: Type.String({ pattern: ATTRIBUTE, default: 'cn', description: "Palisade: group attribute used as the group's name." }),
    on_ldap_error: Enum(['error', 'anonymous'], {
      default: 'error',
      description:
        'Palisade: when the LDAP server cannot be reached or fails: `error` (Kong) answers 500 "An unexpected error occurred" (fail closed); `anonymous` continues as the anonymous consumer (needs anonymous).',
    }),
    brute_force: BruteForceSchema,
  },
  { additionalProperties: false, description: 'Authenticate clients with a username and password bound against an LDAP directory.' },
);

export type LdapAuthConfig = Static<typeof LdapAuthSchema>;

/** Cross-field rules (Kong's entity_checks and Palisade's). */
export function validateLdapAuth(c: LdapAuthConfig): string | null {
  if (c.ldaps && c.start_tls) return "'ldaps' and 'start_tls' cannot be enabled simultaneously";
  if (c.on_ldap_error === 'anonymous' && (c.anonymous === undefined || c.anonymous === '')) return "on_ldap_error 'anonymous' needs the anonymous consumer (config.anonymous)";
  for (const [i, pem] of (c.ca_certificates ?? []).entries()) {
    try {
      if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new Error('no PEM certificate');
      new X509Certificate(pem);
    } catch {
      return `ca_certificates[${i}] is not a PEM certificate`;
    }
  }
  if (c.consumer_optional && c.consumer_by.length === 0) return 'consumer_optional needs consumer_by';
  return null;
}
