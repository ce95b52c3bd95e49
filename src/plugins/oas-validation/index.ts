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
 * asked), the Content-Type and the body. Every violation is listed in the 400
 * problem document. Response (validate_response_body): status, headers,
 * Content-Type and body in the body phase; 502 (or 406) unless notify-only.
 */
import { definePlugin, type PdkContext, type PdkRequest, type PluginHandlers, type PluginServices } from '../../pdk/index.ts';
import { type CompiledOperation, type CompiledResponse, type Operation, type RequestView, type Violation } from '../../pdk/openapi.ts';
import { answer, requestMessage, RESPONSE_MESSAGE } from './answer.ts';
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
    const v = this.#req.headers[name];
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

function hasBody(req: PdkRequest): boolean {
  return req.contentLength > 0 || (req.contentLength < 0 && req.header('transfer-encoding') !== undefined);
}

function create(config: OasValidationConfig, services: PluginServices): PluginHandlers {
  const { requests, responses } = compile(config, services);
  const log = services.logger;
  const opts = { verbose: config.verbose_response, max: config.max_structured_errors };
  const limit = config.request_body_max_size;
  const notifyRequest = config.notify_only_request_validation_failure;
  const notifyResponse = config.notify_only_response_body_validation_failure;

  const refuse = (ctx: PdkContext, violations: Violation[]) => {
    if (violations.length === 0) return;
    log.warn({ request_id: ctx.requestId, violations }, 'oas-validation: request does not conform to the OpenAPI document');
    if (!notifyRequest) return answer(ctx, 400, requestMessage(violations), violations, opts);
  };

  const checkBody = async (ctx: PdkContext, c: CompiledOperation, entry: NonNullable<ReturnType<typeof requests.planBody>['entry']>, violations: Violation[]) => {
    const body = await ctx.request.readBody(limit);
    if (body === null) return ctx.reject(413, 'request body too large to validate');
    violations.push(...(await requests.validateBody(c, entry, body, ctx.request.header('content-type'))));
    return refuse(ctx, violations);
  };

  const handlers: PluginHandlers = {
    access(ctx) {
      const req = ctx.request;
      const m = requests.match(req.method, req.path);
      if ('violation' in m) return refuse(ctx, [m.violation]);
      if (responses) ctx.shared[SHARED] = { operation: m.operation.operation, violations: [], response: null } satisfies ResponseState;
      const violations = requests.validateParameters(m.operation, m.pathParams, new View(req));
      const plan = requests.planBody(m.operation, req.header('content-type'), hasBody(req));
      violations.push(...plan.violations);
      if (!plan.entry) return refuse(ctx, violations);
      if (req.contentLength > limit) return ctx.reject(413, 'request body too large to validate');
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
      const ct = ctx.response.getHeader('content-type');
      violations.push(...(await responses.validateBody(state.response, Array.isArray(ct) ? ct[0] : ct, body)));
    } else if (body === null) log.debug({ request_id: ctx.requestId }, 'oas-validation: response body larger than the buffer limit, not validated');
    if (violations.length === 0) return;
    report(ctx, violations);
    if (!notifyResponse) return answer(ctx, config.response_validation_failure_status, RESPONSE_MESSAGE, violations, opts);
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
