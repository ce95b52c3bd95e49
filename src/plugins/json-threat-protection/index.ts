/**
 * json-threat-protection — Kong Enterprise's plugin (3.8+, handler.lua):
 * POST, PUT and PATCH bodies must be JSON within the configured limits.
 *
 * Unlike Kong, which buffers the body and then validates it, Palisade
 * validates while the body arrives (a streaming scanner over
 * ctx.request.bodyChunks) and answers at the first violation: a 100 000-deep
 * body is refused at the (limit+1)-th bracket, a chunked 1 GB body once it
 * passes max_body_size, a declared Content-Length above it before a byte of
 * the body is read. Memory stays within max_body_size (what was read is kept
 * to be sent upstream unchanged). Kong refuses bodies without Content-Length
 * in block mode; Palisade checks chunked bodies as they stream.
 *
 * Answers, as Kong: Content-Length above max_body_size → 400 "Invalid
 * Content-Length"; invalid JSON → 400 "Invalid JSON."; non-UTF-8 → 400
 * "Non-UTF8 input." (both in either mode); a limit crossed →
 * error_status_code / error_message in block mode, a warning in log_only.
 */
import { definePlugin, mediaTypeMatcher, type PdkContext, type PluginServices, type Reply } from '../../pdk/index.ts';
import { JsonScanner, type JsonLimits, type JsonViolation } from '../../pdk/json-tokens.ts';
import { JsonThreatProtectionSchema, validate, type JsonThreatProtectionConfig } from './schema.ts';

/** Kong 3.10+: other methods are not validated. */
const CHECKED_METHODS = new Set(['POST', 'PUT', 'PATCH']);
const INVALID_LENGTH = 'Invalid Content-Length';
/** An answer before the end of the body: the connection cannot carry another request. */
const CLOSE = { connection: 'close' };

const unlimited = (n: number) => (n < 0 ? Infinity : n);

function create(config: JsonThreatProtectionConfig, services: PluginServices) {
  const log = services.logger;
  const limits: JsonLimits = {
    depth: unlimited(config.max_container_depth),
    arrayElements: unlimited(config.max_array_element_count),
    objectEntries: unlimited(config.max_object_entry_count),
    nameLength: unlimited(config.max_object_entry_name_length),
    stringLength: unlimited(config.max_string_value_length),
    numberLength: unlimited(config.max_number_length),
    allowDuplicateNames: config.allow_duplicate_object_entry_name,
  };
  const maxBody = unlimited(config.max_body_size);
  const block = config.enforcement_mode === 'block';
  const isJson = config.allow_non_json_requests ? mediaTypeMatcher(config.json_content_types) : null;

  function tooLarge(ctx: PdkContext, size: string): Reply | undefined {
    log.info({ request_id: ctx.requestId, max_body_size: config.max_body_size }, `Invalid Content-Length: ${size}`);
    if (block) return ctx.reject(400, INVALID_LENGTH, CLOSE);
    ctx.decide('detect', 'body larger than max_body_size, not validated');
    return undefined;
  }

  /** `bodyOver`: the whole body was read (else the connection is closed after the answer). */
  function judge(ctx: PdkContext, v: JsonViolation, bodyOver: boolean): Reply | undefined {
    log.warn({ request_id: ctx.requestId, offset: v.offset }, `JSON validate failed: at byte ${v.offset}: ${v.message}`);
    const headers = bodyOver ? undefined : CLOSE;
    if (v.kind !== 'policy') return ctx.reject(400, v.message, headers);
    if (block) return ctx.reject(config.error_status_code, config.error_message, headers);
    ctx.decide('detect', v.message);
    return undefined;
  }

  async function scan(ctx: PdkContext): Promise<Reply | undefined> {
    const scanner = new JsonScanner(limits);
    let read = 0;
    // Leaving the loop stops reading; what was read goes upstream, then the rest of the stream.
    for await (const chunk of ctx.request.bodyChunks(maxBody)) {
      read += chunk.length;
      if (read > maxBody) return tooLarge(ctx, `more than ${maxBody} bytes (chunked)`);
      const v = scanner.write(chunk);
      if (v !== null) return judge(ctx, v, ctx.request.contentLength === read);
    }
    const v = scanner.end();
    return v === null ? undefined : judge(ctx, v, true);
  }

  return {
    access(ctx: PdkContext) {
      const req = ctx.request;
      if (!CHECKED_METHODS.has(req.method)) return;
      const length = req.contentLength;
      // No body, nothing to validate.
      if (length === 0 || (length < 0 && req.header('transfer-encoding') === undefined)) return;
      if (isJson !== null && !isJson(req.header('content-type'))) return;
      if (length > maxBody) return tooLarge(ctx, String(length));
      return scan(ctx);
    },
  };
}

export default definePlugin({
  name: 'json-threat-protection',
  priority: 858,
  description: "JSON threat protection (Kong Enterprise's json-threat-protection): size, depth, width and length limits on JSON bodies, enforced while they stream.",
  schema: JsonThreatProtectionSchema,
  validate,
  create,
});
