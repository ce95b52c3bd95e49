/**
 * xml-threat-protection — Kong Enterprise's plugin (3.1+, handler.lua).
 * A body whose Content-Type is in checked_content_types must be a
 * well-formed XML document within the limits; one in allowed_content_types
 * passes unchecked; any other body (also one without Content-Type) is
 * refused. Requests without a body pass (Kong 3.12). Every refusal is 400.
 *
 * Like Kong, the check is a streaming SAX parse; unlike Kong, which reads
 * the whole body first, Palisade parses while the body arrives
 * (ctx.request.bodyChunks) and answers at the first violation, so a deep or
 * oversized document is refused without being read to its end. Every DTD is
 * refused, whatever the config says (see schema.ts: allow_dtd).
 */
import { definePlugin, mediaTypeMatcher, type PdkContext, type PluginServices, type Reply } from '../../pdk/index.ts';
import { XmlScanner, type XmlLimits } from './scanner.ts';
import { XmlThreatProtectionSchema, validate, type XmlThreatProtectionConfig } from './schema.ts';

const BAD_REQUEST = 'Bad Request';
/** An answer before the end of the body: the connection cannot carry another request. */
const CLOSE = { connection: 'close' };
const CHARSET = /;\s*charset\s*=\s*"?([^";\s]+)/i;

function create(config: XmlThreatProtectionConfig, services: PluginServices) {
  const log = services.logger;
  const limits: XmlLimits = {
    namespaceAware: config.namespace_aware,
    maxDepth: config.max_depth,
    maxChildren: config.max_children,
    maxAttributes: config.max_attributes,
    maxNamespaces: config.max_namespaces,
    buffer: config.buffer,
    comment: config.comment,
    localname: config.localname,
    prefix: config.prefix,
    namespaceuri: config.namespaceuri,
    attribute: config.attribute,
    text: config.text,
    pitarget: config.pitarget,
    pidata: config.pidata,
  };
  const document = config.document;
  const checked = mediaTypeMatcher(config.checked_content_types);
  const allowed = mediaTypeMatcher(config.allowed_content_types);

  function refuse(ctx: PdkContext, reason: string, bodyOver: boolean): Reply {
    log.info({ request_id: ctx.requestId, reason }, `XML validation failed: ${reason}`);
    return ctx.reject(400, BAD_REQUEST, bodyOver ? undefined : CLOSE);
  }

  async function scan(ctx: PdkContext, charset: string | null): Promise<Reply | undefined> {
    const scanner = new XmlScanner(limits, charset);
    let read = 0;
    // Leaving the loop stops reading; what was read goes upstream, then the rest of the stream.
    for await (const chunk of ctx.request.bodyChunks(document)) {
      read += chunk.length;
      if (read > document) return refuse(ctx, 'document size limit exceeded', false);
      const v = scanner.write(chunk);
      if (v !== null) return refuse(ctx, v.message, ctx.request.contentLength === read);
    }
    const v = scanner.end();
    return v === null ? undefined : refuse(ctx, v.message, true);
  }

  return {
    access(ctx: PdkContext) {
      const req = ctx.request;
      const length = req.contentLength;
      if (length === 0 || (length < 0 && req.header('transfer-encoding') === undefined)) return;
      const type = req.header('content-type');
      if (!checked(type)) return allowed(type) ? undefined : refuse(ctx, `content type not allowed: ${type ?? 'none'}`, false);
      if (length > document) return refuse(ctx, 'content-length too big', false);
      return scan(ctx, CHARSET.exec(type!)?.[1] ?? null);
    },
  };
}

export default definePlugin({
  name: 'xml-threat-protection',
  priority: 857,
  description: "XML threat protection (Kong Enterprise's xml-threat-protection): structure and size limits on XML bodies, every DTD refused, checked while they stream.",
  schema: XmlThreatProtectionSchema,
  validate,
  create,
});
