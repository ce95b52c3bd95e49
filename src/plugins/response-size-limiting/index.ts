/**
 * response-size-limiting — protects clients from upstream responses that are
 * too large. A declared Content-Length above the limit is refused before
 * anything is sent: 502 "Response size limit exceeded" (the community Kong
 * plugin answers 413, but the fault is the upstream's, not the client's
 * request). A streamed body (no Content-Length) is counted while it passes
 * through; past the limit the upstream exchange is stopped and the client's
 * connection is closed, so the client never takes a cut body for a whole one.
 */
import { definePlugin, payloadBytes, type PdkContext } from '../../pdk/index.ts';
import { ResponseSizeLimitingSchema, type ResponseSizeLimitingConfig } from './schema.ts';

function create(config: ResponseSizeLimitingConfig) {
  const limit = payloadBytes(config);
  return {
    access(ctx: PdkContext) {
      ctx.response.setBodyLimit(limit);
    },
  };
}

export default definePlugin({
  name: 'response-size-limiting',
  priority: 851,
  description: 'Response size limiting: refuses (502) or cuts upstream responses larger than a limit.',
  schema: ResponseSizeLimitingSchema,
  create,
});
