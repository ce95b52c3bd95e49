/**
 * basic-auth — Kong's plugin (kong/plugins/basic-auth/access.lua, 3.6+): the
 * client sends `Authorization: Basic base64(username:password)` (or
 * Proxy-Authorization, tried first). Missing, malformed or wrong credentials
 * all get the same 401 "Unauthorized" with `WWW-Authenticate: Basic
 * realm="<realm>"`; with `anonymous` the request goes on as that consumer.
 *
 * Passwords are hashed at rest (passwords.ts, credentials.ts); a verification
 * runs on the thread pool, an unknown username runs a dummy verification of
 * the same cost, and recent successes are cached under an HMAC key. Failed
 * attempts count per client IP and per username (brute_force).
 */
import { alreadyAuthenticated, anonymousConsumer, failOrAnonymous, FailureGuard } from '../../pdk/auth.ts';
import { definePlugin, type PdkConsumer, type PdkContext, type PluginServices, type Reply } from '../../pdk/index.ts';
import { cachedSuccess, cacheKey, PasswordIndex, verify, type PasswordEntry } from './credentials.ts';
import { BasicAuthCredentialSchema, BasicAuthSchema, validateBasicAuthCredential, type BasicAuthConfig } from './schema.ts';

const UNAUTHORIZED = 'Unauthorized';
const SCHEME = /\s*[Bb]asic\s*(.+)/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
/** Kong's `([^:]+):(.*)` (PCRE: `.` stops at a newline), on the decoded bytes. */
const PAIR = /([^:]+):([^\n]*)/;

interface Presented {
  username: string;
  password: Buffer;
}

/** Kong's retrieve_credentials: the first `basic <base64>` in the header, decoded and split at the first colon. */
export function parseBasic(header: string): Presented | null {
  const m = SCHEME.exec(header);
  if (m === null) return null;
  const b64 = m[1]!;
  if (!BASE64.test(b64) || b64.replace(/=+$/, '').length % 4 === 1) return null;
  const bytes = Buffer.from(b64, 'base64').toString('latin1');
  const pair = PAIR.exec(bytes);
  if (pair === null) return null;
  return { username: Buffer.from(pair[1]!, 'latin1').toString('utf8'), password: Buffer.from(pair[2]!, 'latin1') };
}

function create(config: BasicAuthConfig, services: PluginServices) {
  const index = services.memo('index', () => new PasswordIndex(services.credentials));
  const anonymous: PdkConsumer | null = anonymousConsumer(services, config.anonymous);
  const guard = new FailureGuard(config.brute_force, services.counters, 'basic-auth');
  const hide = config.hide_credentials;
  const ttlMs = config.verify_cache_ttl * 1000;
  const challenge = { 'www-authenticate': `Basic realm="${config.realm}"` };

  const unauthorized = (ctx: PdkContext): Reply | undefined => failOrAnonymous(ctx, anonymous, () => ctx.reject(401, UNAUTHORIZED, challenge));

  function success(ctx: PdkContext, entry: PasswordEntry): undefined {
    ctx.authenticate(entry.consumer, entry.credential);
    return undefined;
  }

  function check(ctx: PdkContext, entry: PasswordEntry | undefined, p: Presented): Reply | undefined | Promise<Reply | undefined> {
    // A recent success: no hash to pay (sync).
    if (entry !== undefined && entry.ready && ttlMs > 0 && cachedSuccess(cacheKey(entry, p.password), ttlMs, Date.now())) return success(ctx, entry);
    return verify(entry, p.password, ttlMs).then((ok) => {
      if (ok) return success(ctx, entry!);
      guard.fail(ctx, p.username);
      return unauthorized(ctx);
    });
  }

  return {
    access(ctx: PdkContext) {
      if (alreadyAuthenticated(ctx, anonymous)) return;
      const req = ctx.request;
      const proxyAuth = req.header('proxy-authorization');
      const auth = req.header('authorization');
      if (proxyAuth === undefined && auth === undefined) return unauthorized(ctx);
      let presented: Presented | null = null;
      let entry: PasswordEntry | undefined;
      if (proxyAuth !== undefined) {
        presented = parseBasic(proxyAuth);
        if (hide) req.removeHeader('proxy-authorization');
        if (presented !== null) entry = index.get(presented.username);
      }
      if (entry === undefined && auth !== undefined) {
        const p = parseBasic(auth);
        if (hide) req.removeHeader('authorization');
        if (p !== null) {
          presented = p;
          entry = index.get(p.username);
        }
      }
      // Nothing parseable: no identity was presented (not a failed attempt).
      if (presented === null) return unauthorized(ctx);
      const p = presented;
      const locked = guard.check(ctx, p.username);
      if (locked === null) return check(ctx, entry, p);
      if (locked instanceof Promise) return locked.then((r) => r ?? check(ctx, entry, p));
      return locked;
    },
  };
}

export default definePlugin({
  name: 'basic-auth',
  priority: 1100,
  description: "Basic authentication (Kong's basic-auth): identifies the consumer by username and password (HTTP Basic).",
  schema: BasicAuthSchema,
  credential: { field: 'basicauth_credentials', schema: BasicAuthCredentialSchema, validate: validateBasicAuthCredential },
  create,
});
