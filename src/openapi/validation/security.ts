/**
 * Security requirements: is a credential presented where a scheme says it
 * goes? Presence only — verifying it is the authentication plugins' job.
 *   apiKey             the named header / query parameter / cookie
 *   http               Authorization: <scheme> … (Basic, Bearer, Digest …)
 *   oauth2, openIdConnect  Authorization: Bearer … (or an access_token query parameter, RFC 6750)
 *   mutualTLS          a client certificate on the TLS connection
 * A list of requirement objects is satisfied by any one of them; an object by
 * all of its schemes; `{}` allows anonymous access.
 */
import type { OpenApiDocument, SecurityRequirement, SecuritySchemeObject } from '../document.ts';

/** What a request presents, as the checks need it. */
export interface Presented {
  header(name: string): string | undefined;
  query(name: string): boolean;
  cookie(name: string): boolean;
  readonly clientCertificate: boolean;
}

interface SchemeCheck {
  readonly name: string;
  /** Where the credential goes, for the error message. */
  readonly where: string;
  test(p: Presented): boolean;
}

function authorization(scheme: string): (p: Presented) => boolean {
  const prefix = `${scheme.toLowerCase()} `;
  return (p) => {
    const v = p.header('authorization');
    return v !== undefined && v.length > prefix.length && v.slice(0, prefix.length).toLowerCase() === prefix;
  };
}

function check(name: string, s: SecuritySchemeObject): SchemeCheck {
  switch (s.type) {
    case 'apiKey': {
      const key = s.name ?? '';
      if (s.in === 'header') return { name, where: `header ${key}`, test: (p) => !!p.header(key.toLowerCase()) };
      if (s.in === 'query') return { name, where: `query parameter ${key}`, test: (p) => p.query(key) };
      return { name, where: `cookie ${key}`, test: (p) => p.cookie(key) };
    }
    case 'http': {
      const scheme = (s.scheme ?? 'bearer').toLowerCase();
      const label = scheme.charAt(0).toUpperCase() + scheme.slice(1);
      return { name, where: `Authorization: ${label}`, test: authorization(scheme) };
    }
    case 'oauth2':
    case 'openIdConnect': {
      const bearer = authorization('bearer');
      return { name, where: 'Authorization: Bearer', test: (p) => bearer(p) || p.query('access_token') };
    }
    case 'mutualTLS':
      return { name, where: 'a client certificate', test: (p) => p.clientCertificate };
    default:
      return { name, where: `scheme type ${String((s as { type: unknown }).type)}`, test: () => false };
  }
}

/** The compiled requirement list of one operation: null when nothing is required. */
export type SecurityCheck = ((p: Presented) => string | null) | null;

/** Compile an operation's effective security; the check returns null when satisfied, else a message naming the schemes (never values). */
export function compileSecurity(doc: OpenApiDocument, requirements: readonly SecurityRequirement[]): SecurityCheck {
  if (requirements.length === 0) return null;
  if (requirements.some((r) => Object.keys(r).length === 0)) return null;
  const alternatives = requirements.map((r) => Object.keys(r).map((name) => check(name, doc.securitySchemes[name]!)));
  const describe = alternatives.map((all) => all.map((c) => `${c.name} (${c.where})`).join(' and ')).join(' | ');
  const message = `no credential presented for the security requirement: ${describe}`;
  return (p) => (alternatives.some((all) => all.every((c) => c.test(p))) ? null : message);
}

/** Header names the schemes of a document read (allowed by the unknown-header check). */
export function securityHeaders(doc: OpenApiDocument): string[] {
  const out = new Set<string>();
  for (const s of Object.values(doc.securitySchemes)) {
    if (s.type === 'apiKey' && s.in === 'header' && s.name) out.add(s.name.toLowerCase());
    if (s.type === 'http' || s.type === 'oauth2' || s.type === 'openIdConnect') out.add('authorization');
  }
  return [...out];
}

/** Query parameter and cookie names the schemes read. */
export function securityQueryNames(doc: OpenApiDocument): string[] {
  const out = new Set<string>();
  for (const s of Object.values(doc.securitySchemes)) {
    if (s.type === 'apiKey' && s.in === 'query' && s.name) out.add(s.name);
    if (s.type === 'oauth2' || s.type === 'openIdConnect') out.add('access_token');
  }
  return [...out];
}
