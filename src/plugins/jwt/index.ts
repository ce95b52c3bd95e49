/**
 * jwt — Kong's JWT plugin (kong/plugins/jwt/handler.lua, priority 1450): the
 * token comes from the query (`uri_param_names`), cookies (`cookie_names`) or
 * `Bearer` headers (`header_names`); its `key_claim_name` claim (default
 * `iss`) names the consumer's jwt_secrets credential whose algorithm and
 * secret or public key verify it; Kong's 401 messages and
 * `WWW-Authenticate: Bearer` challenge; X-Credential-Identifier = the
 * credential key; `anonymous`, `run_on_preflight`, `claims_to_verify`,
 * `maximum_expiration`, `secret_is_base64`, `realm`. Like Kong, no
 * hide_credentials: the token goes upstream.
 *
 * Palisade additions: public keys as JWK, inline JWKS or a jwks_url with
 * rotation; an algorithm allow-list per credential, keys typed so that an
 * HMAC secret never verifies as a public key (nor the reverse); `iss`/`aud`
 * allow-lists, token age, clock skew; claims to upstream headers; a cache of
 * verified tokens; brute-force lockout per client IP and per credential key.
 */
import { alreadyAuthenticated, anonymousConsumer, failOrAnonymous, FailureGuard } from '../../pdk/auth.ts';
import { definePlugin, Reply, type PdkContext, type PluginServices } from '../../pdk/index.ts';
import { ClaimRules } from './claims.ts';
import { buildIndex, validateCredential } from './credentials.ts';
import { JwtCredentialSchema, JwtSchema, type JwtConfig } from './schema.ts';
import { BARE, TokenSources } from './token.ts';
import { Failure, Verifier, type Outcome } from './verifier.ts';

const NO_TOKEN = new Failure(401, 'Unauthorized', null, false, null);
const MULTIPLE = new Failure(401, 'Multiple tokens provided', null, true, null);
const UNRECOGNIZABLE = new Failure(401, 'Unrecognizable token', null, true, null);

function validate(config: JwtConfig): string | null {
  if (config.maximum_expiration > 0 && !(config.claims_to_verify ?? []).includes('exp')) {
    return "claims_to_verify: must contain 'exp' when maximum_expiration is set";
  }
  return null;
}

function create(config: JwtConfig, services: PluginServices) {
  const anonymous = anonymousConsumer(services, config.anonymous);
  const remote = { ttlMs: config.jwks_cache_ttl * 1000, minIntervalMs: config.jwks_refresh_min_interval * 1000, timeoutMs: config.jwks_timeout };
  const index = services.memo(`index:${config.secret_is_base64}:${remote.ttlMs}:${remote.minIntervalMs}:${remote.timeoutMs}`, () =>
    buildIndex(services.credentials, { secretIsBase64: config.secret_is_base64, remote, log: services.logger }),
  );
  const guard = new FailureGuard(config.brute_force, services.counters, 'jwt');
  const claimHeaders = Object.entries(config.claims_to_headers);
  const headerNames = claimHeaders.map(([, h]) => h);
  const verifier = new Verifier({
    index,
    keyClaim: config.key_claim_name,
    rules: new ClaimRules(config),
    guard,
    cacheSize: config.token_cache_size,
    headerClaims: claimHeaders.map(([c]) => c),
  });
  const sources = new TokenSources(config.uri_param_names, config.cookie_names, config.header_names);
  const runOnPreflight = config.run_on_preflight;
  const challenge = config.realm !== undefined ? `Bearer realm="${config.realm}"` : 'Bearer';
  const bareChallenge = { 'www-authenticate': challenge };
  // Kong's exact form: no comma before error.
  const errorChallenge = { 'www-authenticate': `${challenge} error="invalid_token"` };
  const log = services.logger;

  function unauthorized(ctx: PdkContext, f: Failure): Reply {
    if (f.status === 500) return ctx.reject(500, f.message!);
    const headers = f === NO_TOKEN ? bareChallenge : errorChallenge;
    if (f.errors === null) return ctx.reject(401, f.message!, headers);
    // Kong answers claim errors as the body itself ({"exp":"token expired"}): keep those members beside the problem fields.
    const r = ctx.reject(401, Object.values(f.errors).join('; '), headers);
    return new Reply(401, JSON.stringify({ ...JSON.parse(r.body as string), ...f.errors }), r.headers);
  }

  function fail(ctx: PdkContext, f: Failure): Reply | undefined {
    if (f.count) guard.fail(ctx, f.identity);
    if (f !== NO_TOKEN && log.isLevelEnabled('debug')) {
      log.debug({ request_id: ctx.requestId, reason: f.message ?? f.errors, credential: f.identity }, 'jwt: authentication failed');
    }
    if (f.status === 500) return unauthorized(ctx, f);
    return failOrAnonymous(ctx, anonymous, () => unauthorized(ctx, f));
  }

  function finish(ctx: PdkContext, token: string, o: Outcome): Reply | undefined {
    if (o instanceof Reply) return o;
    if (o instanceof Failure) return fail(ctx, o);
    ctx.authenticate(o.cred.consumer, o.cred.identity);
    const shared = ctx.shared;
    shared.authenticated_jwt_token = token;
    shared.authenticated_jwt_claims = o.claims;
    for (let i = 0; i < headerNames.length; i++) {
      const v = o.headers[i]!;
      if (v !== null) ctx.request.setHeader(headerNames[i]!, v);
    }
    return undefined;
  }

  return {
    // Tokens in cookie_names need no declaration: log records redact the whole Cookie header.
    sensitiveQueryParams: config.uri_param_names,
    sensitiveHeaders: config.header_names,
    access(ctx: PdkContext) {
      const req = ctx.request;
      // Only the gateway sets the claim headers: a client's copies never reach the upstream.
      for (let i = 0; i < headerNames.length; i++) req.removeHeader(headerNames[i]!);
      if (!runOnPreflight && req.method === 'OPTIONS') return;
      if (alreadyAuthenticated(ctx, anonymous)) return;
      const found = sources.find(req);
      if (found === null) return fail(ctx, NO_TOKEN);
      if (typeof found !== 'string') return fail(ctx, found === BARE ? UNRECOGNIZABLE : MULTIPLE);
      const out = verifier.verify(ctx, found, Date.now());
      return out instanceof Promise ? out.then((o) => finish(ctx, found, o)) : finish(ctx, found, out);
    },
  };
}

export default definePlugin({
  name: 'jwt',
  priority: 1450,
  description: "JWT authentication (Kong's jwt): verifies HS/RS/PS/ES/EdDSA-signed tokens against consumers' jwt_secrets; Palisade adds JWK/JWKS keys, claim checks and claims to headers.",
  schema: JwtSchema,
  validate,
  credential: { field: 'jwt_secrets', schema: JwtCredentialSchema, validate: validateCredential },
  create,
});
