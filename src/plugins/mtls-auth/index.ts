/**
 * mtls-auth — Kong's plugin (Kong Enterprise mtls-auth): the client's TLS
 * certificate, verified by the plugin against its own CA certificates (and
 * CRLs), identifies the consumer.
 *
 * The listener must ask for client certificates: the certificate entity
 * serving the route's SNI needs `client_verify: optional` (or `required`),
 * with `client_ca` to advertise the acceptable CAs.
 *
 * - No certificate (or plain http): 401 "No required TLS certificate was sent".
 * - Untrusted, expired, revoked, or matching no consumer: 401 "TLS
 *   certificate failed verification".
 * - Either with `anonymous`: the request goes on as the anonymous consumer.
 * Consumer lookup (Kong's order), for each subject name (SANs, then CN):
 * an mtls_auth_credentials mapping issued under a CA of the chain, then one
 * without a CA; then consumers by consumer_by; then default_consumer.
 * X-Client-Cert-* headers from the client are always removed.
 */
import { createHash } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import { definePlugin, type PdkConsumer, type PdkContext, type PluginServices } from '../../pdk/index.ts';
import { alreadyAuthenticated, anonymousConsumer, failOrAnonymous, FailureGuard } from '../../pdk/auth.ts';
import { MtlsAuthCredentialSchema, MtlsAuthSchema, validateMtlsAuth, validateMtlsAuthCredential, type MtlsAuthConfig, type MtlsAuthCredential } from './schema.ts';
import { caFingerprint, identityOf, TrustStore } from './trust.ts';

const NO_CERT = 'No required TLS certificate was sent';
const FAILED = 'TLS certificate failed verification';
const CERT_HEADERS = ['x-client-cert-dn', 'x-client-cert-san', 'x-client-cert-fingerprint', 'x-client-cert-serial', 'x-client-cert-not-after'];

interface Mapping {
  readonly consumer: PdkConsumer;
  readonly id: string;
}
/** subject_name → mappings by CA fingerprint, and the one for any CA. */
type CredentialIndex = Map<string, { byCa: Map<string, Mapping>; any: Mapping | null }>;

function buildIndex(services: PluginServices): CredentialIndex {
  const index: CredentialIndex = new Map();
  for (const { consumer, credential } of services.credentials) {
    const c = credential as unknown as MtlsAuthCredential & { id: string };
    let e = index.get(c.subject_name);
    if (e === undefined) index.set(c.subject_name, (e = { byCa: new Map(), any: null }));
    const fp = c.ca_certificate !== undefined ? caFingerprint(c.ca_certificate) : null;
    const existing = fp === null ? e.any : e.byCa.get(fp);
    if (existing !== null && existing !== undefined && existing.consumer.id !== consumer.id) {
      throw new Error(`mtls_auth_credentials: subject_name '${c.subject_name}' ${fp === null ? '(any CA)' : 'with the same ca_certificate'} maps to two consumers`);
    }
    const m = { consumer, id: c.id };
    if (fp === null) e.any = m;
    else e.byCa.set(fp, m);
  }
  return index;
}

/** What a verified certificate resolves to, cached by its fingerprint. */
interface Resolved {
  readonly expires: number;
  /** Consumer mapping, or null (skip_consumer_lookup, or no match). */
  readonly mapping: Mapping | null;
  readonly groups: readonly string[] | null;
  /** Upstream headers for this certificate. */
  readonly headers: readonly (readonly [string, string])[];
}

function create(config: MtlsAuthConfig, services: PluginServices) {
  const log = services.logger;
  const anonymous = anonymousConsumer(services, config.anonymous);
  const defaultConsumer = config.default_consumer !== undefined ? services.consumers.find(config.default_consumer) : null;
  if (config.default_consumer !== undefined && defaultConsumer === null) throw new Error(`default_consumer '${config.default_consumer}' does not exist`);
  const trust = new TrustStore(config);
  const now = Date.now();
  for (const ca of trust.staleCrls(now)) log.warn({ issuer: ca.subject }, 'mtls-auth: a CRL is past its nextUpdate');
  if (config.revocation_check_mode !== 'SKIP' && config.crls.length === 0) {
    log.info('mtls-auth: no crls configured: revocation is not checked (Palisade downloads no CRL and asks no OCSP responder)');
  }
  const guard = new FailureGuard(config.brute_force, services.counters, 'mtls-auth');
  const index = services.memo('credentials', () => buildIndex(services));
  const ttlMs = config.cache_ttl * 1000;
  const cache = new Map<string, Resolved>();

  function lookup(names: readonly string[], caFps: ReadonlySet<string>): Mapping | null {
    for (const n of names) {
      const e = index.get(n);
      if (e === undefined) continue;
      for (const [fp, m] of e.byCa) if (caFps.has(fp)) return m;
      if (e.any !== null) return e.any;
    }
    for (const n of names) {
      for (const field of config.consumer_by) {
        const c = services.consumers.findBy(field, n);
        if (c !== null) return { consumer: c, id: c.id };
      }
    }
    return defaultConsumer !== null ? { consumer: defaultConsumer, id: defaultConsumer.id } : null;
  }

  /** Verify and resolve a client certificate; a failure reason string when it does not verify. */
  function resolve(peer: PeerCertificate, at: number): Resolved | string {
    const cached = cache.get(peer.fingerprint256);
    if (cached !== undefined) {
      if (cached.expires > at) return cached;
      cache.delete(peer.fingerprint256);
    }
    const v = trust.verify(peer, at);
    if (typeof v === 'string') return v;
    const leaf = v.chain[0]!;
    const id = identityOf(leaf);
    const headers: [string, string][] = [];
    let mapping: Mapping | null = null;
    let groups: string[] | null = null;
    if (config.skip_consumer_lookup) {
      const group = config.authenticated_group_by === 'DN' ? id.dn : id.cn;
      if (group === null) return 'certificate without a Common Name (authenticated_group_by CN)';
      groups = [group];
    } else {
      mapping = lookup(id.names, new Set(v.chain.slice(1).map((c) => c.fingerprint256)));
      if (mapping === null) return 'no consumer matches the certificate';
    }
    if (config.skip_consumer_lookup || config.send_client_cert_headers) {
      headers.push(['x-client-cert-dn', id.dn]);
      if (id.names.length > 0) headers.push(['x-client-cert-san', id.names.join(',')]);
    }
    if (config.send_client_cert_headers) {
      headers.push(['x-client-cert-fingerprint', createHash('sha256').update(leaf.raw).digest('hex')]);
      headers.push(['x-client-cert-serial', leaf.serialNumber]);
      headers.push(['x-client-cert-not-after', leaf.validToDate.toISOString()]);
    }
    const r: Resolved = { expires: Math.min(v.expires, at + ttlMs), mapping, groups, headers };
    if (ttlMs > 0) {
      if (cache.size >= 10_000) cache.delete(cache.keys().next().value!);
      cache.set(peer.fingerprint256, r);
    }
    return r;
  }

  function authenticate(ctx: PdkContext, peer: PeerCertificate) {
    const r = resolve(peer, Date.now());
    if (typeof r === 'string') {
      log.info({ reason: r, subject_cn: peer.subject?.CN, fingerprint: peer.fingerprint256 }, 'mtls-auth: client certificate refused');
      if (r !== 'no consumer matches the certificate') guard.fail(ctx, null);
      return failOrAnonymous(ctx, anonymous, () => ctx.reject(401, FAILED));
    }
    for (const [name, value] of r.headers) ctx.request.setHeader(name, value);
    if (r.groups !== null) ctx.shared.authenticated_groups = [...r.groups];
    if (r.mapping !== null) ctx.authenticate(r.mapping.consumer, { id: r.mapping.id, identifier: null });
    return undefined;
  }

  return {
    access(ctx: PdkContext) {
      // Whatever happens next, certificate headers come from the gateway only.
      for (const h of CERT_HEADERS) ctx.request.removeHeader(h);
      if (alreadyAuthenticated(ctx, anonymous)) return;
      const tls = ctx.request.tls;
      const peer = tls !== null ? tls.peerCertificate() : null;
      if (peer === null || peer.raw === undefined) return failOrAnonymous(ctx, anonymous, () => ctx.reject(401, NO_CERT));
      const locked = guard.check(ctx, null);
      if (locked === null) return authenticate(ctx, peer);
      if (!(locked instanceof Promise)) return locked;
      return locked.then((l) => l ?? authenticate(ctx, peer));
    },
  };
}

export default definePlugin({
  name: 'mtls-auth',
  priority: 1600,
  description: "Mutual TLS authentication (Kong's mtls-auth): identifies the consumer by the TLS client certificate, verified against configured CAs and CRLs.",
  schema: MtlsAuthSchema,
  validate: validateMtlsAuth,
  credential: { field: 'mtls_auth_credentials', schema: MtlsAuthCredentialSchema, validate: validateMtlsAuthCredential as (c: unknown) => string | null },
  create,
});
