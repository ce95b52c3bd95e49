/**
 * What a client gets when a request (400) or a response (502, or 406 like
 * Kong) breaks the document: an RFC 9457 problem document with Kong's
 * `message` and every violation in `errors` — location, name, JSON pointer
 * and what is wrong, never a value.
 */
import { problem, type PdkContext, type Reply } from '../../pdk/index.ts';
import { summary, type Violation } from '../../pdk/openapi.ts';

/** Kong's messages (kong/plugins/oas-validation/handler.lua). */
export const REQUEST_MESSAGE = "request doesn't conform to schema";
export const PARAM_MESSAGE = "request param doesn't conform to schema";
export const RESPONSE_MESSAGE = "response doesn't conform to schema";
/** Palisade's: a request body above request_body_max_size (as sent or once decoded). */
export const TOO_LARGE = 'request body too large to validate';

export interface AnswerOptions {
  readonly verbose: boolean;
  readonly max: number | undefined;
}

/** Kong's message for request violations: the request itself (operation, media type) or its parameters and body. */
export function requestMessage(violations: readonly Violation[]): string {
  return violations.some((v) => v.in === 'operation' || v.in === 'content-type' || (v.in === 'body' && v.pointer === '' && v.name === undefined)) ? REQUEST_MESSAGE : PARAM_MESSAGE;
}

/**
 * A response that breaks the document: Kong's generic message only — the
 * violations name the upstream's fields and headers, which are none of the
 * client's business (they are logged). `verbose_response` (meant for
 * testing) lists them as for requests.
 */
export function answerResponse(ctx: PdkContext, status: number, violations: readonly Violation[], opts: AnswerOptions): Reply {
  return opts.verbose ? answer(ctx, status, RESPONSE_MESSAGE, violations, opts) : ctx.reject(status, RESPONSE_MESSAGE);
}

export function answer(ctx: PdkContext, status: number, generic: string, violations: readonly Violation[], opts: AnswerOptions): Reply {
  const listed = opts.max !== undefined ? violations.slice(0, opts.max) : violations;
  const detailed = `validation failed: ${summary(listed)}`;
  const base = problem(status, opts.verbose ? detailed : generic, ctx.requestId, {}, detailed);
  const body = JSON.parse(base.body as string) as Record<string, unknown>;
  body.errors = listed;
  if (listed.length < violations.length) body.errors_omitted = violations.length - listed.length;
  return ctx.respond(status, JSON.stringify(body), base.headers);
}
