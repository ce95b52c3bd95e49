/**
 * hmac-auth — Kong's plugin (kong/plugins/hmac-auth/access.lua), priority 1030.
 *
 * draft-cavage (Kong): `Authorization: hmac username="…", algorithm="…",
 * headers="…", signature="…"` (or Proxy-Authorization), Date / X-Date within
 * clock_skew, enforce_headers, algorithms, Digest when validate_request_body.
 * Palisade addition: RFC 9421 HTTP Message Signatures when
 * signature_schemes contains rfc9421 and the request carries Signature-Input.
 *
 * Kong's answers: 401 "Unauthorized" without credentials, "HMAC signature
 * cannot be verified[, a valid date or x-date header is required for HMAC
 * Authentication]" for unusable ones, "HMAC signature does not match" for a
 * wrong signature or body — all with WWW-Authenticate: hmac[ realm="…"].
 * Unlike Kong, an unknown username answers exactly like a wrong signature
 * (no user enumeration).
 */
import { alreadyAuthenticated, anonymousConsumer, failOrAnonymous, FailureGuard } from '../../pdk/auth.ts';
import { definePlugin, problem, type PdkContext, type PluginServices, type Reply } from '../../pdk/index.ts';
import { cavageSignatureMatches, dateWithinSkew, digestMatches, parseCavage, type CavageParams } from './cavage.ts';
import { buildIndex, validateCredential, type Entry } from './credentials.ts';
import { DUMMY_SECRET } from './keys.ts';
import { compileRequired, parseSignatures, SIG_INVALID, SIG_MISMATCH, verifyOne, type Failure, type Rfc9421Settings } from './rfc9421.ts';
import { HmacAuthSchema, HmacCredentialSchema, type HmacAuthConfig, type HmacCredential } from './schema.ts';

const NAME = 'hmac-auth';
const DATE_REQUIRED = 'HMAC signature cannot be verified, a valid date or x-date header is required for HMAC Authentication';

type Result = Reply | undefined | Promise<Reply | undefined>;

function create(config: HmacAuthConfig, services: PluginServices) {
  const anonymous = anonymousConsumer(services, config.anonymous);
  const index = services.memo('index', () => buildIndex(services.credentials));
  const guard = new FailureGuard(config.brute_force, services.counters, NAME);
  const log = services.logger;
  const challenge = { 'www-authenticate': config.realm !== undefined ? `hmac realm="${config.realm}"` : 'hmac' };
  const cavageOn = config.signature_schemes.includes('cavage');
  const rfcOn = config.signature_schemes.includes('rfc9421');
  const algorithms = new Set<string>(config.algorithms);
  const enforce = config.enforce_headers;
  const hide = config.hide_credentials;
  const rfc: Rfc9421Settings = {
    clockSkew: config.clock_skew,
    required: compileRequired(config.rfc9421.required_components),
    requireQuery: config.rfc9421.require_query_coverage,
    requireDigest: config.rfc9421.require_content_digest,
    requireNonce: config.rfc9421.require_nonce,
    tag: config.rfc9421.tag,
    label: config.rfc9421.label,
    maxBody: config.max_body_size,
  };

  /** A failed attempt with presented credentials: counted, then 401 (or the anonymous consumer). */
  function deny(ctx: PdkContext, identity: string | null, message: string, detail?: string, counts = true): Reply | undefined {
    if (counts) guard.fail(ctx, identity);
    log.debug({ reason: detail ?? message }, 'hmac-auth: authentication failed');
    return failOrAnonymous(ctx, anonymous, () => problem(401, message, ctx.requestId, challenge, detail));
  }

  function success(ctx: PdkContext, entry: Entry): undefined {
    ctx.authenticate(entry.consumer, entry.ref);
    return undefined;
  }

  /** Run `next` unless the client IP or the identity is locked out (429). */
  function unlessLocked(ctx: PdkContext, identity: string | null, next: () => Result): Result {
    const locked = guard.check(ctx, identity);
    if (locked === null) return next();
    if (locked instanceof Promise) return locked.then((r) => r ?? next());
    return locked;
  }

  function cavage(ctx: PdkContext): Result {
    const params = parseCavage(ctx);
    const identity = params?.username ?? null;
    return unlessLocked(ctx, identity, () => {
      if (!dateWithinSkew(ctx, config.clock_skew, Date.now() / 1000)) return deny(ctx, identity, DATE_REQUIRED);
      if (hide) ctx.request.removeHeader(params?.from ?? 'authorization');
      if (params === null) return deny(ctx, null, SIG_INVALID);
      if (enforce.some((h) => !params.headers.includes(h))) return deny(ctx, identity, SIG_INVALID, undefined);
      if (!algorithms.has(params.algorithm)) return deny(ctx, identity, SIG_INVALID);
      return cavageVerify(ctx, params);
    });
  }

  function cavageVerify(ctx: PdkContext, params: CavageParams): Result {
    const entry = index.get(params.username);
    if (entry === undefined || entry.key.secret === null) {
      cavageSignatureMatches(ctx, params, DUMMY_SECRET);
      return deny(ctx, params.username, SIG_MISMATCH);
    }
    if (!cavageSignatureMatches(ctx, params, entry.key.secret)) return deny(ctx, params.username, SIG_MISMATCH);
    if (!config.validate_request_body) return success(ctx, entry);
    return ctx.request.readBody(config.max_body_size).then((body) => {
      if (body === null || !digestMatches(ctx.request.header('digest'), body)) return deny(ctx, params.username, SIG_MISMATCH);
      return success(ctx, entry);
    });
  }

  function rfc9421(ctx: PdkContext): Result {
    const parsed = parseSignatures(ctx, rfc);
    const identity = 'ok' in parsed ? null : parsed.identity;
    return unlessLocked(ctx, identity, async () => {
      if (hide) {
        ctx.request.removeHeader('signature');
        ctx.request.removeHeader('signature-input');
      }
      if ('ok' in parsed) return deny(ctx, null, parsed.message, parsed.detail);
      const now = Date.now() / 1000;
      let first: Failure | null = null;
      for (const candidate of parsed.candidates) {
        const r = await verifyOne(ctx, candidate, rfc, (keyid) => index.get(keyid), services.counters, now);
        if (r.ok) return success(ctx, r.entry);
        first ??= r;
      }
      return deny(ctx, identity, first!.message, first!.detail);
    });
  }

  return {
    access(ctx: PdkContext): Result {
      if (alreadyAuthenticated(ctx, anonymous)) return undefined;
      const req = ctx.request;
      if (rfcOn && req.header('signature-input') !== undefined) return rfc9421(ctx);
      if (cavageOn && (req.header('authorization') !== undefined || req.header('proxy-authorization') !== undefined)) return cavage(ctx);
      return deny(ctx, null, 'Unauthorized', undefined, false);
    },
  };
}

export default definePlugin({
  name: NAME,
  priority: 1030,
  description: "HMAC signature authentication (Kong's hmac-auth, draft-cavage), with RFC 9421 HTTP Message Signatures as a Palisade addition.",
  schema: HmacAuthSchema,
  credential: {
    field: 'hmacauth_credentials',
    schema: HmacCredentialSchema,
    validate: (c: HmacCredential) => validateCredential(c),
  },
  create,
});
