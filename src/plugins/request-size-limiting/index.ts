/**
 * request-size-limiting — Kong's plugin (kong/plugins/request-size-limiting/handler.lua).
 * A declared Content-Length above the limit is refused at once: 413 "Request
 * size limit exceeded" (417 when the client sent Expect: 100-continue, as
 * Kong does). A body without Content-Length (chunked) is not buffered: the
 * core counts its bytes while streaming it upstream and answers 413 past the
 * limit. require_content_length refuses requests with neither a
 * Content-Length nor chunked encoding: 411.
 */
import { definePlugin, payloadBytes, type PdkContext } from '../../pdk/index.ts';
import { RequestSizeLimitingSchema, type RequestSizeLimitingConfig } from './schema.ts';

const TOO_LARGE = 'Request size limit exceeded';
const LENGTH_REQUIRED = 'A valid Content-Length header is required';

function create(config: RequestSizeLimitingConfig) {
  const limit = payloadBytes(config);
  const requireContentLength = config.require_content_length;

  return {
    access(ctx: PdkContext) {
      const req = ctx.request;
      const length = req.contentLength;
      if (length >= 0) {
        if (length <= limit) return;
        const expect = req.header('expect');
        const status = expect !== undefined && expect.trim().toLowerCase() === '100-continue' ? 417 : 413;
        return ctx.reject(status, TOO_LARGE);
      }
      if (requireContentLength) {
        const te = req.header('transfer-encoding');
        if (te === undefined || te.trim().toLowerCase() !== 'chunked') return ctx.reject(411, LENGTH_REQUIRED);
      }
      req.setBodyLimit(limit);
    },
  };
}

export default definePlugin({
  name: 'request-size-limiting',
  priority: 951,
  description: "Request size limiting (Kong's request-size-limiting): refuses request bodies larger than a limit.",
  schema: RequestSizeLimitingSchema,
  create,
});
