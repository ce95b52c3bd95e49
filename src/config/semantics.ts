/**
 * Cross-entity rules the schema cannot express (Kong's custom validators):
 * duplicate names, dangling references, url vs host, compilable regexes,
 * parseable certificates.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import type { PalisadeConfig, RouteConfig } from './schema.ts';
import { entryError } from '../pdk/ip-set.ts';
import { getPlugin } from '../plugins/registry.ts';

export interface SemanticError {
  path: string;
  /** When set, the error points at this key of the object at `path`. */
  key?: string;
  message: string;
}

export function refName(ref: unknown): string | undefined {
  if (typeof ref === 'string') return ref;
  if (ref && typeof ref === 'object') {
    const r = ref as { id?: string; name?: string; username?: string };
    return r.name ?? r.username ?? r.id;
  }
  return undefined;
}

export function parseServiceUrl(url: string): { protocol: 'http' | 'https'; host: string; port: number; path: string | undefined } | string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return `'${url}' is not a valid URL`;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return `protocol '${u.protocol.slice(0, -1)}' is not supported (http, https)`;
  if (u.search || u.hash) return 'the url must not have a query or fragment';
  const protocol = u.protocol === 'https:' ? 'https' : 'http';
  return {
    protocol,
    host: u.hostname.replace(/^\[|\]$/g, ''),
    port: u.port ? Number(u.port) : protocol === 'https' ? 443 : 80,
    path: u.pathname === '/' && !url.replace(/^https?:\/\/[^/]+/, '').startsWith('/') ? undefined : u.pathname,
  };
}

function checkRoute(r: RouteConfig, ptr: string, errors: SemanticError[]): void {
  if (!r.paths?.length && !r.hosts?.length && !r.methods?.length && !r.headers && !r.snis?.length) {
    errors.push({ path: ptr, message: 'a route needs at least one of paths, hosts, methods, headers or snis' });
  }
  for (const [i, p] of (r.paths ?? []).entries()) {
    if (!p.startsWith('~')) continue;
    try {
      new RegExp(p.slice(1));
    } catch (err) {
      errors.push({ path: `${ptr}/paths/${i}`, message: `invalid regex: ${(err as Error).message}` });
    }
  }
  for (const name of Object.keys(r.headers ?? {})) {
    if (name.toLowerCase() === 'host') errors.push({ path: `${ptr}/headers`, key: name, message: "use 'hosts' to match the Host header" });
  }
  if (r.snis?.length && !r.protocols.includes('https')) errors.push({ path: `${ptr}/snis`, message: "snis need 'https' in protocols" });
  for (const [i, name] of r.exclude_plugins.entries()) {
    if (!getPlugin(name)) errors.push({ path: `${ptr}/exclude_plugins/${i}`, message: `unknown plugin '${name}'` });
  }
}

/** null when the text holds one or more parseable PEM certificates. */
function pemCertificatesError(text: string, none: string): string | null {
  const pems = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g);
  if (!pems) return none;
  for (const pem of pems) {
    try {
      new X509Certificate(pem);
    } catch (err) {
      return `cannot parse a certificate: ${(err as Error).message}`;
    }
  }
  return null;
}

function unique(errors: SemanticError[], seen: Map<string, string>, value: string | undefined, ptr: string, what: string): void {
  if (value === undefined) return;
  const first = seen.get(value);
  if (first !== undefined) errors.push({ path: ptr, message: `duplicate ${what} '${value}' (first at ${first})` });
  else seen.set(value, ptr);
}

export function checkSemantics(cfg: PalisadeConfig): SemanticError[] {
  const errors: SemanticError[] = [];
  const services = new Map<string, string>();
  const routes = new Map<string, string>();
  const upstreams = new Map<string, string>();
  const consumers = new Map<string, string>();

  for (const [i, s] of cfg.services.entries()) {
    const ptr = `/services/${i}`;
    unique(errors, services, s.name, `${ptr}/name`, 'service name');
    unique(errors, services, s.id, `${ptr}/id`, 'service id');
    if (s.url !== undefined && s.host !== undefined) errors.push({ path: ptr, key: 'url', message: "set either 'url' or 'host', not both" });
    if (s.url === undefined && s.host === undefined) errors.push({ path: ptr, message: "a service needs 'url' or 'host'" });
    if (s.url !== undefined) {
      const parsed = parseServiceUrl(s.url);
      if (typeof parsed === 'string') errors.push({ path: `${ptr}/url`, message: parsed });
    }
    for (const [j, name] of s.exclude_plugins.entries()) {
      if (!getPlugin(name)) errors.push({ path: `${ptr}/exclude_plugins/${j}`, message: `unknown plugin '${name}'` });
    }
    // Kong lists ca_certificate entity ids here; Palisade takes the PEM itself.
    for (const [j, ca] of (s.ca_certificates ?? []).entries()) {
      const message = pemCertificatesError(ca, 'ca_certificates entries must be PEM certificates (Kong ca_certificate ids are not supported)');
      if (message) errors.push({ path: `${ptr}/ca_certificates/${j}`, message });
    }
    for (const [k, r] of s.routes.entries()) {
      unique(errors, routes, r.name, `${ptr}/routes/${k}/name`, 'route name');
      if (r.service !== undefined) errors.push({ path: `${ptr}/routes/${k}`, key: 'service', message: 'a nested route belongs to its service; remove service' });
      checkRoute(r, `${ptr}/routes/${k}`, errors);
    }
  }
  for (const [k, r] of cfg.routes.entries()) {
    const ptr = `/routes/${k}`;
    unique(errors, routes, r.name, `${ptr}/name`, 'route name');
    const svc = refName(r.service);
    if (svc === undefined) errors.push({ path: ptr, message: "a top-level route needs 'service'" });
    else if (!services.has(svc)) errors.push({ path: `${ptr}/service`, message: `service '${svc}' does not exist` });
    checkRoute(r, ptr, errors);
  }
  for (const [i, u] of cfg.upstreams.entries()) {
    const ptr = `/upstreams/${i}`;
    unique(errors, upstreams, u.name, `${ptr}/name`, 'upstream name');
    const targets = new Map<string, string>();
    for (const [j, t] of u.targets.entries()) unique(errors, targets, t.target, `${ptr}/targets/${j}/target`, 'target');
    if (u.algorithm === 'consistent-hashing' && u.hash_on === 'header' && !u.hash_on_header) errors.push({ path: ptr, message: 'hash_on header needs hash_on_header' });
    if (u.algorithm === 'consistent-hashing' && u.hash_on === 'cookie' && !u.hash_on_cookie) errors.push({ path: ptr, message: 'hash_on cookie needs hash_on_cookie' });
    if (u.algorithm === 'consistent-hashing' && u.hash_on === 'query_arg' && !u.hash_on_query_arg) errors.push({ path: ptr, message: 'hash_on query_arg needs hash_on_query_arg' });
    // Kong fields accepted so decK dumps load; only their default is implemented.
    if (u.hash_fallback !== 'none') errors.push({ path: `${ptr}/hash_fallback`, message: "Palisade does not implement hash_fallback; only 'none' is supported" });
    if (u.use_srv_name) errors.push({ path: `${ptr}/use_srv_name`, message: 'Palisade does not implement use_srv_name; only false is supported' });
    if (!u.healthchecks.active.https_verify_certificate) {
      errors.push({ path: `${ptr}/healthchecks/active/https_verify_certificate`, message: 'Palisade always verifies the certificates of https health probes; only true is supported' });
    }
  }
  const groups = new Map<string, string>();
  for (const [i, g] of cfg.consumer_groups.entries()) unique(errors, groups, g.name, `/consumer_groups/${i}/name`, 'consumer group name');
  for (const [i, c] of cfg.consumers.entries()) {
    const ptr = `/consumers/${i}`;
    for (const [j, g] of c.groups.entries()) {
      const name = typeof g === 'string' ? g : g.name;
      if (!groups.has(name)) errors.push({ path: `${ptr}/groups/${j}`, message: `consumer group '${name}' does not exist (declare it in consumer_groups)` });
    }
    if (c.username === undefined && c.custom_id === undefined) errors.push({ path: ptr, message: "a consumer needs 'username' or 'custom_id'" });
    unique(errors, consumers, c.username, `${ptr}/username`, 'consumer username');
    unique(errors, consumers, c.custom_id, `${ptr}/custom_id`, 'consumer custom_id');
  }

  // Top-level plugins may scope themselves by reference; references must exist,
  // and one scope holds at most one instance of a plugin.
  const scopes = new Map<string, string>();
  const scopeKey = (name: string, s?: string, r?: string, c?: string) => `${name}|${s ?? ''}|${r ?? ''}|${c ?? ''}`;
  for (const [i, p] of cfg.plugins.entries()) {
    const ptr = `/plugins/${i}`;
    const s = refName(p.service), r = refName(p.route), c = refName(p.consumer);
    if (s !== undefined && !services.has(s)) errors.push({ path: `${ptr}/service`, message: `service '${s}' does not exist` });
    if (r !== undefined && !routes.has(r)) errors.push({ path: `${ptr}/route`, message: `route '${r}' does not exist` });
    if (c !== undefined && !consumers.has(c)) errors.push({ path: `${ptr}/consumer`, message: `consumer '${c}' does not exist` });
    unique(errors, scopes, scopeKey(p.name, s, r, c), `${ptr}/name`, 'plugin in the same scope');
  }
  for (const [i, s] of cfg.services.entries()) {
    const sName = s.name ?? s.id ?? `#${i}`;
    for (const [j, p] of s.plugins.entries()) unique(errors, scopes, scopeKey(p.name, sName), `/services/${i}/plugins/${j}/name`, 'plugin in the same scope');
    for (const [k, r] of s.routes.entries()) {
      const rName = r.name ?? r.id ?? `${sName}#${k}`;
      for (const [j, p] of r.plugins.entries()) unique(errors, scopes, scopeKey(p.name, undefined, rName), `/services/${i}/routes/${k}/plugins/${j}/name`, 'plugin in the same scope');
    }
  }
  for (const [k, r] of cfg.routes.entries()) {
    const rName = r.name ?? r.id ?? `#${k}`;
    for (const [j, p] of r.plugins.entries()) unique(errors, scopes, scopeKey(p.name, undefined, rName), `/routes/${k}/plugins/${j}/name`, 'plugin in the same scope');
  }
  for (const [i, c] of cfg.consumers.entries()) {
    const cName = c.username ?? c.custom_id ?? c.id;
    for (const [j, p] of c.plugins.entries()) unique(errors, scopes, scopeKey(p.name, undefined, undefined, cName), `/consumers/${i}/plugins/${j}/name`, 'plugin in the same scope');
  }

  // Server settings the listener would otherwise refuse at start (or on reload).
  for (const [i, entry] of cfg.server.trusted_ips.entries()) {
    const error = entryError(entry);
    if (error !== null) errors.push({ path: `/server/trusted_ips/${i}`, message: error });
  }
  if (cfg.server.request_timeout > 0 && cfg.server.headers_timeout > cfg.server.request_timeout) {
    errors.push({ path: '/server/headers_timeout', message: `headers_timeout (${cfg.server.headers_timeout}) must not exceed request_timeout (${cfg.server.request_timeout})` });
  }

  if (cfg.audit.enabled && cfg.audit.signing_key === undefined) {
    errors.push({ path: '/audit', key: 'enabled', message: 'the audit trail needs signing_key (an Ed25519 private key: PEM, a file path or {vault://env/NAME}; palisade audit keygen makes one)' });
  }

  const snis = new Map<string, string>();
  for (const [i, cert] of cfg.certificates.entries()) {
    const ptr = `/certificates/${i}`;
    try {
      const x509 = new X509Certificate(cert.cert);
      if (!x509.checkPrivateKey(createPrivateKey(cert.key))) errors.push({ path: `${ptr}/key`, message: 'the key does not match the certificate' });
    } catch (err) {
      errors.push({ path: ptr, message: `cannot parse certificate or key: ${(err as Error).message}` });
    }
    if (cert.client_verify !== 'off' && !cert.client_ca) errors.push({ path: ptr, key: 'client_verify', message: 'client_verify needs client_ca' });
    if (cert.client_ca !== undefined) {
      const message = pemCertificatesError(cert.client_ca, 'client_ca must hold PEM CA certificates');
      if (message) errors.push({ path: `${ptr}/client_ca`, message });
    }
    for (const [j, sni] of cert.snis.entries()) unique(errors, snis, typeof sni === 'string' ? sni : sni.name, `${ptr}/snis/${j}`, 'SNI');
  }
  return errors;
}
