/**
 * injection-protection — Kong Enterprise's plugin (same config fields,
 * defaults, 400 "Bad Request"), with detection that is not a list of regexes:
 * SQL injection and XSS by a port of libinjection (tokenizer + fingerprints,
 * HTML5 tokenizer), and structural detectors for path traversal, OS
 * commands, LDAP, NoSQL and template injection (rules/). Values are decoded
 * (URL, double URL, %uXXXX, HTML entities, \u escapes) before inspection.
 *
 * Only the enabled locations are looked at; the body when the body location
 * is enabled and its type is not binary — JSON, forms, multipart, XML, text,
 * none or unknown (content.ts) — buffered up to max_body_size, decompressed
 * and decoded from its charset first (body.ts). A body that cannot be read
 * with confidence follows uninspectable_body.
 * block answers error_status_code with a problem document naming the
 * location and the type (never the value); log_only logs a warning, records
 * a `detect` decision and lets the request through.
 */
import { decodeBody, definePlugin, isDecodeFailure, problem, type PdkContext, type Reply, type PluginServices } from '../../pdk/index.ts';
import { token } from './body.ts';
import { inspectBody } from './content.ts';
import { compileDetectors } from './detectors.ts';
import { Inspector, type Finding } from './inspect.ts';
import { mediaKind, type MediaKind } from './media.ts';
import { InjectionProtectionSchema, type InjectionProtectionConfig } from './schema.ts';

const NAME = 'injection-protection';
const TOO_LARGE = 'Request body too large to inspect';
const CANNOT = 'Request body cannot be inspected';

function create(config: InjectionProtectionConfig, services: PluginServices) {
  const inspector = new Inspector(compileDetectors(config), config.skip_headers);
  const where = new Set(config.locations);
  const inPath = where.has('path') || where.has('path_and_query');
  const inQuery = where.has('query') || where.has('path_and_query');
  const inHeaders = where.has('headers');
  const inCookies = where.has('cookies');
  const inBody = where.has('body');
  const block = config.enforcement_mode === 'block';
  const { error_status_code: status, error_message: message, max_body_size: bodyLimit } = config;
  const log = services.logger;

  function found(ctx: PdkContext, f: Finding): Reply | undefined {
    const what = `${f.type} injection in ${f.location}`;
    log.warn({ request_id: ctx.requestId, plugin: NAME, location: f.location, injection: f.type, mode: config.enforcement_mode }, block ? 'injection blocked' : 'injection detected (log only)');
    if (!block) {
      ctx.decide('detect', what);
      return undefined;
    }
    return problem(status, message, ctx.requestId, {}, `Request refused: ${what}.`, what);
  }

  /** Path, query, headers, cookies: synchronous. */
  function inspectHead(ctx: PdkContext): Finding | null {
    const req = ctx.request;
    let type: string | null;
    if (inPath && (type = inspector.path(req.target)) !== null) return { location: 'path', type };
    if (inQuery && (type = inspector.params(req.rawQuery)) !== null) return { location: 'query', type };
    if (inHeaders && (type = inspector.headers(req.rawHeaders)) !== null) return { location: 'headers', type };
    if (inCookies && (type = inspector.cookies(req.rawHeaders)) !== null) return { location: 'cookies', type };
    return null;
  }

  function oversized(ctx: PdkContext): Reply | undefined {
    if (config.oversized_body === 'allow') return undefined;
    log.warn({ request_id: ctx.requestId, plugin: NAME, limit: bodyLimit }, 'body too large to inspect');
    return ctx.reject(413, TOO_LARGE);
  }

  function uninspectable(ctx: PdkContext, reason: string): Reply | undefined {
    log.warn({ request_id: ctx.requestId, plugin: NAME, reason, mode: config.uninspectable_body }, 'body cannot be inspected');
    if (config.uninspectable_body === 'allow') return void ctx.decide('detect', `body not inspected: ${reason}`);
    return problem(415, CANNOT, ctx.requestId, {}, `The request body cannot be inspected: ${reason}.`, `body not inspected: ${reason}`);
  }

  async function inspect(ctx: PdkContext, kind: Exclude<MediaKind, 'binary'>, contentType: string): Promise<Reply | undefined> {
    const body = await ctx.request.readBody(bodyLimit);
    if (body === null) return oversized(ctx);
    const decoded = await decodeBody(body, ctx.request.headers['content-encoding'], bodyLimit);
    if (isDecodeFailure(decoded)) {
      if (decoded.reason === 'too-large') return oversized(ctx);
      return uninspectable(ctx, decoded.reason === 'unsupported' ? `Content-Encoding ${token(decoded.coding)}` : `corrupt ${decoded.coding} data`);
    }
    const outcome = inspectBody(inspector, kind, decoded, contentType);
    if (outcome === null) return undefined;
    if (typeof outcome === 'string') return found(ctx, { location: 'body', type: outcome });
    return outcome.kind === 'oversized' ? oversized(ctx) : uninspectable(ctx, outcome.reason);
  }

  return {
    access(ctx: PdkContext) {
      const head = inspectHead(ctx);
      if (head !== null) {
        const reply = found(ctx, head);
        if (reply) return reply;
      }
      if (!inBody || !ctx.request.hasBody) return;
      const contentType = ctx.request.header('content-type');
      const kind = mediaKind(contentType);
      return kind === 'binary' ? undefined : inspect(ctx, kind, contentType ?? '');
    },
  };
}

export default definePlugin({
  name: NAME,
  priority: 860,
  description:
    "Injection protection (Kong Enterprise's injection-protection): SQL (libinjection), XSS, path traversal, OS command, LDAP, NoSQL and template injection in the path, query, headers, cookies and body.",
  schema: InjectionProtectionSchema,
  validate(config) {
    if (config.injection_types.length === 0 && (config.custom_injections ?? []).length === 0) {
      return 'nothing to detect: set injection_types or custom_injections';
    }
    return null;
  },
  create,
});
