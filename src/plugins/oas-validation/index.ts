/**
 * oas-validation — Kong Enterprise's plugin: requests (and optionally
 * responses) are validated against an OpenAPI 3.0/3.1 document.
 *
 * Config load: the document is read (api_spec, api_spec_file, api_spec_url),
 * checked, and compiled — an operation matcher over the path templates and,
 * per operation, parameter deserialisers, Ajv validators for parameters and
 * bodies, the security check. A document that cannot be used is a config
 * error naming the file, pointer and line.
 *
 * Access: the operation is matched (unknown path or method: 400 "request
 * doesn't conform to schema"), then path/query/header/cookie parameters,
 * security-credential presence, unknown query parameters or headers (when
 * asked), the Content-Type (once) and the body — decoded first when it has a
 * Content-Encoding; a body where the operation declares none is refused.
 * Every violation is listed in the 400 problem document. Notify-only logs
 * and lets everything through, bodies too large to validate included.
 * Response (validate_response_body): status, headers, Content-Type and the
 * (decoded) body in the body phase; 502 (or 406) with Kong's generic message
 * unless notify-only, the violations in the log.
 */
import {
  decodable,
  decodeBody,
  definePlugin,
  describeFailure,
  headerOf,
  isDecodeFailure,
  SUPPORTED_CODINGS,
  type PdkContext,
  type PdkRequest,
  type PluginHandlers,
  type PluginServices,
} from '../../pdk/index.ts';
import {
  UNDECLARED_BODY,
  type CompiledOperation,
  type CompiledResponse,
  type MediaEntry,
  type Operation,
  type RequestView,
  type Violation,
} from '../../pdk/openapi.ts';
import { answer, answerResponse, requestMessage, TOO_LARGE } from './answer.ts';
import { OasValidationSchema, validateOasConfig, type OasValidationConfig } from './schema.ts';
import { compile } from './spec.ts';

const SHARED = 'oas-validation';

/** The request as the validator reads it. */
class View implements RequestView {
  readonly #req: PdkRequest;
  constructor(req: PdkRequest) {
    this.#req = req;
  }
  get rawQuery(): string {
    return this.#req.rawQuery;
  }
  header(name: string): string | undefined {
    const v = headerOf(this.#req.headers, name);
    return Array.isArray(v) ? v.join(', ') : v;
  }
  headerNames(): Iterable<string> {
    return Object.keys(this.#req.headers);
  }
  get clientCertificate(): boolean {
    return this.#req.tls?.peerCertificate() != null;
  }
}

interface ResponseState {
  readonly operation: Operation;
  violations: Violation[];
  response: CompiledResponse | null;
}

/** More than one Content-Type header: the plugin and the upstream could read different ones. */
function repeatedContentType(req: PdkRequest): boolean {
  let n = 0;
  for (let i = 0; i < req.rawHeaders.length; i += 2) if (req.rawHeaders[i]!.length === 12 && req.rawHeaders[i]!.toLowerCase() === 'content-type' && ++n > 1) return true;
  return false;
}

const REPEATED_CONTENT_TYPE: Violation = { in: 'content-type', pointer: '', message: 'Content-Type must appear only once' };

function create(config: OasValidationConfig, services: PluginServices): PluginHandlers {
  const { requests, responses } = compile(config, services);
  const log = services.logger;
  const opts = { verbose: config.verbose_response, max: config.max_structured_errors };
  const limit = config.request_body_max_size;
  const notifyRequest = config.notify_only_request_validation_failure;
  const notifyResponse = config.notify_only_response_body_validation_failure;
  const checkBodies = config.validate_request_body;

  const refuse = (ctx: PdkContext, violations: Violation[]) => {
    if (violations.length === 0) return;
    log.warn({ request_id: ctx.requestId, violations }, 'oas-validation: request does not conform to the OpenAPI document');
    if (!notifyRequest) return answer(ctx, 400, requestMessage(violations), violations, opts);
    ctx.decide('detect', 'request does not conform to the OpenAPI document (notify only)');
  };

  /** A request that cannot be validated (too large, unknown Content-Encoding): refused, or logged and let through in notify-only mode. */
  const unchecked = (ctx: PdkContext, status: 413 | 415, message: string, violations: Violation[]) => {
    if (!notifyRequest) return ctx.reject(status, message);
    log.warn({ request_id: ctx.requestId, reason: message }, 'oas-validation: request body not validated, let through (notify only)');
    ctx.decide('detect', `${message} (notify only)`);
    return refuse(ctx, violations);
  };

  const checkBody = async (ctx: PdkContext, c: CompiledOperation, entry: MediaEntry, violations: Violation[]) => {
    const raw = await ctx.request.readBody(limit);
    if (raw === null) return unchecked(ctx, 413, TOO_LARGE, violations);
    const body = await decodeBody(raw, ctx.request.header('content-encoding'), limit);
    if (isDecodeFailure(body)) {
      if (body.reason === 'too-large') return unchecked(ctx, 413, TOO_LARGE, violations);
      violations.push({ in: 'body', pointer: '', message: describeFailure(body) });
    } else violations.push(...(await requests.validateBody(c, entry, body, ctx.request.header('content-type'))));
    return refuse(ctx, violations);
  };

  /** An operation without requestBody: a body is refused (unless allowed); a chunked one is read to see whether it is empty. */
  const noBodyExpected = async (ctx: PdkContext, violations: Violation[]) => {
    if ((await ctx.request.readBody(0)) === null) violations.push(UNDECLARED_BODY);
    return refuse(ctx, violations);
  };

  const handlers: PluginHandlers = {
    access(ctx) {
      const req = ctx.request;
      const m = requests.match(req.method, req.path);
      if ('violation' in m) return refuse(ctx, [m.violation]);
      if (responses) ctx.shared[SHARED] = { operation: m.operation.operation, violations: [], response: null } satisfies ResponseState;
      const violations = requests.validateParameters(m.operation, m.pathParams, new View(req));
      if (checkBodies && repeatedContentType(req)) violations.push(REPEATED_CONTENT_TYPE);
      const sent = req.hasBody;
      if (m.operation.body === null && sent && !requests.acceptsUndeclaredBody && req.contentLength < 0) return noBodyExpected(ctx, violations);
      const plan = requests.planBody(m.operation, req.header('content-type'), sent);
      violations.push(...plan.violations);
      if (!plan.entry) return refuse(ctx, violations);
      const unknown = decodable(req.header('content-encoding'));
      if (unknown !== null) return unchecked(ctx, 415, `request body Content-Encoding '${unknown}' cannot be validated (supported: ${SUPPORTED_CODINGS.join(', ')})`, violations);
      if (req.contentLength > limit) return unchecked(ctx, 413, TOO_LARGE, violations);
      return checkBody(ctx, m.operation, plan.entry, violations);
    },
  };
  if (!responses) return handlers;

  const report = (ctx: PdkContext, violations: readonly Violation[]) =>
    log.warn({ request_id: ctx.requestId, status: ctx.response.status, violations }, 'oas-validation: response does not conform to the OpenAPI document');

  handlers.response = (ctx) => {
    const state = ctx.shared[SHARED] as ResponseState | undefined;
    if (!state || ctx.response.source !== 'upstream') return;
    const res = ctx.response;
    const head = responses.validateHead(state.operation, res.status, (name) => {
      const v = res.getHeader(name);
      return Array.isArray(v) ? v.join(', ') : v;
    });
    state.violations = head.violations;
    state.response = head.response;
    // No body phase for these: status and headers can only be reported.
    const bodiless = ctx.request.method === 'HEAD' || res.status < 200 || res.status === 204 || res.status === 304;
    if (bodiless && head.violations.length) {
      report(ctx, head.violations);
      state.violations = [];
    }
  };

  handlers.body = async (ctx, body) => {
    const state = ctx.shared[SHARED] as ResponseState | undefined;
    if (!state || ctx.response.source !== 'upstream') return;
    const violations = state.violations;
    if (state.response && body !== null) {
      const decoded = await decodeBody(body, ctx.response.getHeader('content-encoding'), config.response_body_max_size);
      const ct = ctx.response.getHeader('content-type');
      if (!isDecodeFailure(decoded)) violations.push(...(await responses.validateBody(state.response, Array.isArray(ct) ? ct[0] : ct, decoded)));
      else if (decoded.reason === 'too-large') log.warn({ request_id: ctx.requestId, limit: config.response_body_max_size }, 'oas-validation: response body larger than response_body_max_size once decoded, not validated');
      else violations.push({ in: 'body', pointer: '', message: describeFailure(decoded) });
    } else if (body === null) log.debug({ request_id: ctx.requestId }, 'oas-validation: response body larger than the buffer limit, not validated');
    if (violations.length === 0) return;
    report(ctx, violations);
    if (!notifyResponse) return answerResponse(ctx, config.response_validation_failure_status, violations, opts);
  };
  return handlers;
}

export default definePlugin({
  name: 'oas-validation',
  priority: 840,
  description: "OpenAPI validation (Kong's oas-validation): requests and optionally responses checked against an OpenAPI 3.0/3.1 document.",
  schema: OasValidationSchema,
  validate: validateOasConfig,
  create,
});
