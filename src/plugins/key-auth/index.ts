/**
 * key-auth — Kong's plugin (kong/plugins/key-auth/handler.lua, 3.x): the
 * client presents an API key in a header, a query argument or the body (for
 * each of key_names, in that order). Every 401 carries Kong's message and
 * `WWW-Authenticate: Key[ realm="…"]`:
 * - no key (or an empty one) → "No API key found in request";
 * - the name repeated → "Duplicate API key found";
 * - an unknown or expired key → "Unauthorized".
 * With `anonymous` a failure lets the request go on as that consumer instead
 * ("any of them" between auth plugins). Keys are hashed at rest (keys.ts);
 * failed attempts count per client IP (the key is the secret: there is no
 * identity to lock out).
 */
import { alreadyAuthenticated, anonymousConsumer, failOrAnonymous, FailureGuard } from '../../pdk/auth.ts';
import { definePlugin, type PdkConsumer, type PdkContext, type PluginServices, type Reply } from '../../pdk/index.ts';
import { argValue, bodyKind, DUPLICATE, parseBody, withoutArg, type ArgValue, type BodyArgs } from './extract.ts';
import { KeyIndex } from './keys.ts';
import { KeyAuthCredentialSchema, KeyAuthSchema, validateKeyAuthCredential, type KeyAuthConfig } from './schema.ts';

const NO_KEY = 'No API key found in request';
const DUPLICATE_KEY = 'Duplicate API key found';
const INVALID = 'Unauthorized';

/** A comma in a header value may mean the header was repeated (node:http joins repeats with ", "). */
function repeated(raw: readonly string[], lower: string): boolean {
  let n = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const h = raw[i]!;
    if (h.length === lower.length && h.toLowerCase() === lower && ++n > 1) return true;
  }
  return false;
}

function create(config: KeyAuthConfig, services: PluginServices) {
  const index = services.memo('index', () => new KeyIndex(services.credentials));
  const anonymous: PdkConsumer | null = anonymousConsumer(services, config.anonymous);
  const guard = new FailureGuard(config.brute_force, services.counters, 'key-auth');
  const names = config.key_names;
  const headerNames = names.map((n) => n.toLowerCase());
  const inHeader = config.key_in_header;
  const inQuery = config.key_in_query;
  const inBody = config.key_in_body;
  const hide = config.hide_credentials;
  const runOnPreflight = config.run_on_preflight;
  const maxBody = config.max_body_size;
  const challenge = { 'www-authenticate': config.realm !== undefined ? `Key realm="${config.realm}"` : 'Key' };

  const unauthorized = (ctx: PdkContext, message: string): Reply | undefined =>
    failOrAnonymous(ctx, anonymous, () => ctx.reject(401, message, challenge));

  /** The key was presented: lockout check, lookup, expiry. */
  function verify(ctx: PdkContext, key: string): Reply | undefined | Promise<Reply | undefined> {
    const locked = guard.check(ctx);
    if (locked === null) return lookup(ctx, key);
    if (locked instanceof Promise) return locked.then((r) => r ?? lookup(ctx, key));
    return locked;
  }

  function lookup(ctx: PdkContext, key: string): Reply | undefined {
    const entry = index.lookup(key);
    if (entry === undefined || (entry.expiresAt !== 0 && Date.now() >= entry.expiresAt)) {
      guard.fail(ctx);
      return unauthorized(ctx, INVALID);
    }
    ctx.authenticate(entry.consumer, entry.credential);
    return undefined;
  }

  /** Buffer and parse the body once per request (only kinds Kong reads; too large = no key there). */
  async function readBody(ctx: PdkContext): Promise<BodyArgs | null> {
    const ct = ctx.request.header('content-type');
    const kind = bodyKind(ct);
    if (kind === null) return null;
    const buf = await ctx.request.readBody(maxBody);
    return buf === null || buf.length === 0 ? null : parseBody(kind, buf, ct!);
  }

  function hideFrom(ctx: PdkContext, i: number): void {
    const req = ctx.request;
    req.removeHeader(headerNames[i]!);
    if (req.rawQuery !== '') {
      const q = withoutArg(req.rawQuery, names[i]!);
      if (q !== req.rawQuery) req.setRawQuery(q);
    }
  }

  /** Search the names from `i` on; `body` once it has been read. Sync until the body is needed. */
  function search(ctx: PdkContext, i: number, body: BodyArgs | null | undefined): Reply | undefined | Promise<Reply | undefined> {
    const req = ctx.request;
    for (; i < names.length; i++) {
      let v: ArgValue = undefined;
      if (inHeader) {
        const h = req.headers[headerNames[i]!];
        if (h !== undefined) v = typeof h === 'string' ? (h.includes(',') && repeated(req.rawHeaders, headerNames[i]!) ? DUPLICATE : h) : h.length > 1 ? DUPLICATE : h[0];
      }
      if (v === undefined && inQuery && req.rawQuery !== '') v = argValue(req.rawQuery, names[i]!);
      if (v === undefined && inBody) {
        if (body === undefined) {
          const at = i;
          return readBody(ctx).then((b) => search(ctx, at, b));
        }
        if (body !== null) v = body.get(names[i]!);
      }
      if (typeof v === 'string') {
        if (!hide) return v === '' ? unauthorized(ctx, NO_KEY) : verify(ctx, v);
        hideFrom(ctx, i);
        if (!inBody) return v === '' ? unauthorized(ctx, NO_KEY) : verify(ctx, v);
        // Kong also removes the name from the body.
        const key = v;
        const at = i;
        const strip = (b: BodyArgs | null) => {
          const next = b?.without(names[at]!) ?? null;
          if (next !== null) ctx.request.setBody(next);
          return key === '' ? unauthorized(ctx, NO_KEY) : verify(ctx, key);
        };
        return body === undefined ? readBody(ctx).then(strip) : strip(body);
      }
      if (v === DUPLICATE) return unauthorized(ctx, DUPLICATE_KEY);
      // BARE (a name without a value) is not a key: try the next name.
    }
    return unauthorized(ctx, NO_KEY);
  }

  return {
    // Declared whatever key_in_* say: a key sent where this instance does not look is still a key.
    sensitiveQueryParams: names,
    sensitiveHeaders: names,
    access(ctx: PdkContext) {
      if (!runOnPreflight && ctx.request.method === 'OPTIONS') return;
      if (alreadyAuthenticated(ctx, anonymous)) return;
      return search(ctx, 0, undefined);
    },
  };
}

export default definePlugin({
  name: 'key-auth',
  priority: 1250,
  description: "Key authentication (Kong's key-auth): identifies the consumer by an API key in a header, the query string or the body.",
  schema: KeyAuthSchema,
  credential: { field: 'keyauth_credentials', schema: KeyAuthCredentialSchema, validate: validateKeyAuthCredential },
  create,
});
