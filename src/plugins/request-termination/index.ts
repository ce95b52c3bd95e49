/**
 * request-termination — Kong's plugin (kong/plugins/request-termination/handler.lua):
 * answers every request (or, with `trigger`, every request carrying that
 * header or query argument) with a fixed response and never reaches the
 * upstream. `message` (or Kong's default message for the status) → JSON
 * {"message": …} — for error statuses as a problem document that carries the
 * same `message`; `body` + `content_type` → that raw body; `echo` → the request
 * as the gateway saw it, in Kong's shape.
 */
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { definePlugin, headerOf, type PdkContext } from '../../pdk/index.ts';
import { RequestTerminationSchema, validateRequestTermination, type RequestTerminationConfig } from './schema.ts';

const DEFAULT_RESPONSE: Readonly<Record<number, string>> = {
  401: 'Unauthorized',
  404: 'Not found',
  405: 'Method not allowed',
  500: 'An unexpected error occurred',
  502: 'Bad Gateway',
  503: 'Service unavailable',
};

const DEFAULT_CONTENT_TYPE = 'application/json; charset=utf-8';

/** Kong's kong.node fields; the node id is per process until the PDK offers one. */
const NODE = { node_id: randomUUID(), worker_pid: process.pid, hostname: hostname() };

/** Kong's kong.request.get_query(): a bare key is true, a repeated key an array. */
function kongQuery(raw: string): Record<string, string | boolean | (string | boolean)[]> {
  const out: Record<string, string | boolean | (string | boolean)[]> = {};
  if (raw === '') return out;
  for (const part of raw.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const key = decode(eq < 0 ? part : part.slice(0, eq));
    if (key === '') continue;
    const value: string | boolean = eq < 0 ? true : decode(part.slice(eq + 1));
    const cur = out[key];
    if (cur === undefined) out[key] = value;
    else if (Array.isArray(cur)) cur.push(value);
    else out[key] = [cur, value];
  }
  return out;
}

function decode(s: string): string {
  const plus = s.replaceAll('+', ' ');
  try {
    return decodeURIComponent(plus);
  } catch {
    return plus;
  }
}

function echoed(ctx: PdkContext, message: string | undefined): object {
  const req = ctx.request;
  return {
    message,
    kong: NODE,
    request: {
      scheme: req.scheme,
      host: req.host,
      port: req.port,
      headers: req.headers,
      query: kongQuery(req.rawQuery),
      method: req.method,
      path: req.path,
      uri_captures: { named: ctx.captures ?? {}, unnamed: [] },
    },
    matched_route: ctx.route,
    matched_service: ctx.service,
  };
}

function create(config: RequestTerminationConfig) {
  const status = config.status_code;
  const message = config.message ?? DEFAULT_RESPONSE[status];
  const trigger = config.trigger ?? null;
  const triggerHeader = trigger?.toLowerCase() ?? '';
  const echo = config.echo;
  const body = config.body ?? null;
  const contentType = config.content_type ?? DEFAULT_CONTENT_TYPE;
  const messageBody = message === undefined ? null : JSON.stringify({ message });

  return {
    access(ctx: PdkContext) {
      if (trigger !== null && headerOf(ctx.request.headers, triggerHeader) === undefined && !ctx.request.query.has(trigger)) return;
      if (echo) return ctx.respond(status, echoed(ctx, message));
      if (body !== null) return ctx.respond(status, body, { 'content-type': contentType });
      if (messageBody === null) return ctx.respond(status, null);
      if (status >= 400) return ctx.reject(status, message!);
      return ctx.respond(status, messageBody, { 'content-type': DEFAULT_CONTENT_TYPE });
    },
  };
}

export default definePlugin({
  name: 'request-termination',
  priority: 2,
  description: "Request termination (Kong's request-termination): answers requests with a fixed response instead of proxying them.",
  schema: RequestTerminationSchema,
  validate: validateRequestTermination,
  create,
});
