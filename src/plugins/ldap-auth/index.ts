/**
 * ldap-auth — Kong's plugin (kong/plugins/ldap-auth/access.lua, 3.x): the
 * client sends `Authorization: LDAP base64(username:password)` (or in
 * Proxy-Authorization, tried first; the scheme is `header_type`), the plugin
 * binds to the directory as `<attribute>=<username>,<base_dn>`.
 *
 * - No Authorization / Proxy-Authorization: 401 "Unauthorized" with
 *   WWW-Authenticate: LDAP (or `LDAP realm="…"`).
 * - Refused bind, malformed or foreign credentials: 401 "Unauthorized", same
 *   challenge (or the anonymous consumer).
 * - Directory unreachable / failing: 500 "An unexpected error occurred"
 *   (Kong; fail closed even with anonymous), or anonymous with
 *   on_ldap_error: anonymous.
 * - Success (Kong OSS): no consumer — X-Credential-Identifier: <username>;
 *   Palisade's consumer_by maps the username to a consumer.
 * Bind results are cached cache_ttl seconds under an HMAC of (username,
 * password). Brute-force identity = the username.
 */
import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { definePlugin, type PdkConsumer, type PdkContext, type PluginServices, type Reply } from '../../pdk/index.ts';
import { alreadyAuthenticated, anonymousConsumer, failOrAnonymous, FailureGuard } from '../../pdk/auth.ts';
import { BindCache, MALFORMED, OTHER_SCHEME, parseAuthorization, type CachedBind, type Presented } from './credentials.ts';
import { Directory, escapeDnValue } from './directory.ts';
import { LdapAuthSchema, validateLdapAuth, type LdapAuthConfig } from './schema.ts';

const UNAUTHORIZED = 'Unauthorized';
const UNEXPECTED = 'An unexpected error occurred';

function create(config: LdapAuthConfig, services: PluginServices) {
  const log = services.logger;
  const anonymous = anonymousConsumer(services, config.anonymous);
  const guard = new FailureGuard(config.brute_force, services.counters, 'ldap-auth');
  const scheme = config.header_type.toLowerCase();
  // Kong: the default scheme is announced upper-case ("LDAP"), any other as configured.
  const challengeScheme = config.header_type === 'ldap' ? 'LDAP' : config.header_type;
  const challenge = { 'www-authenticate': config.realm !== undefined ? `${challengeScheme} realm="${config.realm}"` : challengeScheme };
  const hide = config.hide_credentials;
  const failOpen = config.on_ldap_error === 'anonymous';
  const dnSuffix = `,${config.base_dn}`;
  const attribute = config.attribute;
  const idPrefix = `${config.ldap_host.toLowerCase()}:${config.ldap_port}:${config.base_dn}:${attribute}:`;
  const cache = new BindCache(config.cache_ttl);
  const directory = new Directory({
    host: config.ldap_host,
    port: config.ldap_port,
    ldaps: config.ldaps,
    startTls: config.start_tls,
    verify: config.verify_ldap_host,
    ca: config.ca_certificates,
    timeout: config.timeout,
    keepalive: config.keepalive,
    group:
      config.group_base_dn !== undefined
        ? { baseDn: config.group_base_dn, memberAttribute: config.group_member_attribute, nameAttribute: config.group_name_attribute }
        : null,
  });
  if ((config.ldaps || config.start_tls) && !config.verify_ldap_host) {
    log.warn({ ldap_host: config.ldap_host }, 'ldap-auth: the LDAP server certificate is not verified (verify_ldap_host: false)');
  } else if (!config.ldaps && !config.start_tls && isIP(config.ldap_host) === 0 && config.ldap_host !== 'localhost') {
    log.warn({ ldap_host: config.ldap_host }, 'ldap-auth: passwords go to the LDAP server unencrypted (neither ldaps nor start_tls)');
  }

  // consumer_by: the LDAP username → a consumer, by username and/or custom_id, in order.
  function consumerFor(username: string): PdkConsumer | null {
    for (const field of config.consumer_by) {
      const c = services.consumers.findBy(field, username);
      if (c !== null) return c;
    }
    return null;
  }

  /** A stable credential id per (directory, user); never derived from the password. */
  function credentialId(username: string): string {
    const h = createHash('sha256').update(idPrefix + username).digest('hex');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
  }

  function bind(p: Presented): CachedBind | Promise<CachedBind> {
    const key = cache.keyOf(p);
    return (
      cache.get(key) ??
      cache.load(key, async () => {
        const outcome = await directory.bind(`${attribute}=${escapeDnValue(p.username)}${dnSuffix}`, p.password);
        if (!outcome.ok) log.debug({ username: p.username, ldap_result: outcome.code }, 'ldap-auth: bind refused');
        return outcome.ok ? { ok: true, groups: outcome.groups } : { ok: false, groups: null };
      })
    );
  }

  const unauthorized = (ctx: PdkContext): Reply => ctx.reject(401, UNAUTHORIZED, challenge);

  function succeed(ctx: PdkContext, p: Presented, groups: readonly string[] | null): Reply | undefined {
    let consumer: PdkConsumer | null = null;
    if (config.consumer_by.length > 0) {
      consumer = consumerFor(p.username);
      if (consumer === null && !config.consumer_optional) {
        log.info({ username: p.username }, 'ldap-auth: authenticated user matches no consumer');
        return failOrAnonymous(ctx, anonymous, () => unauthorized(ctx));
      }
    }
    if (hide) {
      ctx.request.removeHeader('authorization');
      ctx.request.removeHeader('proxy-authorization');
    }
    ctx.authenticate(consumer, { id: credentialId(p.username), identifier: p.username });
    if (groups !== null) {
      ctx.shared.authenticated_groups = [...groups];
      if (groups.length > 0) ctx.request.setHeader('x-authenticated-groups', groups.join(', '));
    }
    return undefined;
  }

  /** Try the presented credentials in Kong's order (Proxy-Authorization, then Authorization). */
  async function verify(ctx: PdkContext, candidates: Presented[]): Promise<Reply | undefined> {
    for (const p of candidates) {
      const locked = await guard.check(ctx, p.username);
      if (locked !== null) return locked;
      let result: CachedBind;
      try {
        result = await bind(p);
      } catch (err) {
        log.error({ err: (err as Error).message, ldap_host: config.ldap_host, ldap_port: config.ldap_port }, 'ldap-auth: LDAP server unavailable');
        if (failOpen) return failOrAnonymous(ctx, anonymous, () => ctx.reject(500, UNEXPECTED));
        return ctx.reject(500, UNEXPECTED);
      }
      if (result.ok) return succeed(ctx, p, result.groups);
      guard.fail(ctx, p.username);
    }
    return failOrAnonymous(ctx, anonymous, () => unauthorized(ctx));
  }

  return {
    dispose: () => directory.closeIdle(),
    access(ctx: PdkContext) {
      if (alreadyAuthenticated(ctx, anonymous)) return;
      const proxyAuth = ctx.request.header('proxy-authorization');
      const auth = ctx.request.header('authorization');
      if (proxyAuth === undefined && auth === undefined) return failOrAnonymous(ctx, anonymous, () => unauthorized(ctx));
      const candidates: Presented[] = [];
      let malformed = false;
      for (const value of [proxyAuth, auth]) {
        if (value === undefined) continue;
        const p = parseAuthorization(value, scheme);
        if (p === MALFORMED) malformed = true;
        else if (p !== OTHER_SCHEME) candidates.push(p);
      }
      if (candidates.length === 0) {
        if (malformed) guard.fail(ctx, null);
        return failOrAnonymous(ctx, anonymous, () => unauthorized(ctx));
      }
      // Fast path without a promise: one credential whose successful bind is cached.
      if (candidates.length === 1) {
        const p = candidates[0]!;
        const locked = guard.check(ctx, p.username);
        if (locked === null) {
          const cached = cache.get(cache.keyOf(p));
          if (cached !== undefined && cached.ok) return succeed(ctx, p, cached.groups);
        } else if (!(locked instanceof Promise)) return locked;
      }
      return verify(ctx, candidates);
    },
  };
}

export default definePlugin({
  name: 'ldap-auth',
  priority: 1200,
  description: "LDAP authentication (Kong's ldap-auth): binds to an LDAP directory with the username and password the client sends.",
  schema: LdapAuthSchema,
  validate: validateLdapAuth,
  create,
});
