/**
 * cors — Kong's CORS plugin (kong/plugins/cors/handler.lua), same fields,
 * defaults and headers. Preflights (OPTIONS with Origin and
 * Access-Control-Request-Method) are answered 200 by the gateway unless
 * preflight_continue; actual responses (the upstream's and the gateway's own)
 * get Access-Control-Allow-Origin / -Credentials / -Expose-Headers and
 * `Vary: Origin` whenever the answer depends on the Origin.
 *
 * Palisade difference: a request whose Origin is present but not allowed gets
 * no Access-Control-* header at all (Kong omits only Allow-Origin and may still
 * send Allow-Credentials, Allow-Methods, …); it is never refused.
 */
import { definePlugin, type PdkContext } from '../../pdk/index.ts';
import { CorsSchema, type CorsConfig } from './schema.ts';
import { compileOriginRegex, DENIED, isPlainOrigin, OriginPolicy } from './origins.ts';

const ACAO = 'access-control-allow-origin';
const ACAC = 'access-control-allow-credentials';
const VARY_ORIGIN = /(^|,)\s*origin\s*(,|$)/i;

function validate(config: CorsConfig): string | null {
  const origins = config.origins ?? [];
  for (let i = 0; i < origins.length; i++) {
    const o = origins[i]!;
    if (o === '*' || isPlainOrigin(o)) continue;
    try {
      compileOriginRegex(o);
    } catch {
      return `origins[${i}]: '${o}' is not a valid regex`;
    }
  }
  return null;
}

/** OPTIONS with a non-empty Origin and Access-Control-Request-Method. */
function isPreflight(req: PdkContext['request']): boolean {
  return req.method === 'OPTIONS' && !!req.header('origin') && req.header('access-control-request-method') !== undefined;
}

/** Add `Vary: Origin` unless the response already varies on Origin. */
function addVaryOrigin(ctx: PdkContext): void {
  const cur = ctx.response.getHeader('vary');
  if (cur !== undefined) {
    const s = Array.isArray(cur) ? cur.join(',') : cur;
    if (s.trim() === '*' || VARY_ORIGIN.test(s)) return;
  }
  ctx.response.addHeader('vary', 'Origin');
}

function create(config: CorsConfig) {
  const policy = new OriginPolicy(config.origins);
  const credentials = config.credentials;
  const allowHeaders = config.headers !== undefined && config.headers.length > 0 ? config.headers.join(',') : null;
  const allowMethods = config.methods.join(',');
  const maxAge = config.max_age !== undefined ? String(config.max_age) : null;
  const exposed = config.exposed_headers !== undefined && config.exposed_headers.length > 0 ? config.exposed_headers.join(',') : null;
  const privateNetwork = config.private_network;
  const preflightContinue = config.preflight_continue;
  const allowOriginAbsent = config.allow_origin_absent;

  return {
    access(ctx: PdkContext) {
      const req = ctx.request;
      // A preflight is either delegated to the upstream or answered here with
      // every header: the response phase adds nothing in both cases.
      if (!isPreflight(req) || preflightContinue) return;
      const origin = req.header('origin')!;

      const headers: Record<string, string> = {};
      if (policy.varies) headers['vary'] = 'Origin';
      const allowed = policy.decide(origin);
      if (allowed === DENIED) return ctx.respond(200, null, headers);
      if (allowed === '*' && credentials) {
        // ACAC cannot be true with ACAO '*': echo the Origin instead.
        headers['vary'] = 'Origin';
        headers[ACAO] = origin;
        headers[ACAC] = 'true';
      } else {
        if (allowed !== null) headers[ACAO] = allowed;
        if (credentials) headers[ACAC] = 'true';
      }
      const requested = req.header('access-control-request-headers');
      if (allowHeaders !== null) headers['access-control-allow-headers'] = allowHeaders;
      else if (requested !== undefined) headers['access-control-allow-headers'] = requested;
      headers['access-control-allow-methods'] = allowMethods;
      if (maxAge !== null) headers['access-control-max-age'] = maxAge;
      if (privateNetwork && req.header('access-control-request-private-network') === 'true') {
        headers['access-control-allow-private-network'] = 'true';
      }
      return ctx.respond(200, null, headers);
    },

    response(ctx: PdkContext) {
      if (isPreflight(ctx.request)) return;
      const raw = ctx.request.header('origin');
      const origin = raw === '' ? undefined : raw;
      if (origin === undefined && !allowOriginAbsent) return;
      const res = ctx.response;
      const allowed = policy.decide(origin);
      let vary = policy.varies;
      if (allowed === DENIED) {
        if (res.getHeader(ACAO) !== undefined) res.removeHeader(ACAO);
      } else {
        if (allowed === '*' && credentials && origin !== undefined) {
          vary = true;
          res.setHeader(ACAO, origin);
          res.setHeader(ACAC, 'true');
        } else {
          if (allowed !== null) res.setHeader(ACAO, allowed);
          else if (res.getHeader(ACAO) !== undefined) res.removeHeader(ACAO);
          if (credentials && allowed !== '*') res.setHeader(ACAC, 'true');
        }
        if (exposed !== null) res.setHeader('access-control-expose-headers', exposed);
      }
      if (vary) addVaryOrigin(ctx);
    },
  };
}

export default definePlugin({
  name: 'cors',
  priority: 2000,
  description: "Cross-origin resource sharing (Kong's cors): answers preflights and adds CORS headers to responses.",
  schema: CorsSchema,
  validate,
  create,
});
