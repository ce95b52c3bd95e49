/**
 * http-log — Kong's plugin (kong/plugins/http-log/handler.lua). After the
 * response is sent, the request's log record (src/pdk/log-record.ts,
 * docs/log-record.md) is serialized and queued; batches go to http_endpoint as
 * one JSON object (max_batch_size 1) or a JSON array. The queue is bounded
 * (Kong's `queue` parameters): a slow or dead collector fills it, the oldest
 * entries are dropped and counted (log warning, palisade_log_dropped_total),
 * and requests never wait for it.
 */
import { byteEntries, checkLogConfig, definePlugin, fragment, LogArena, logSerializer, queuedLogHandlers, type ByteEntry, type PdkContext, type PluginServices } from '../../pdk/index.ts';
import { HttpLogSchema, type HttpLogConfig } from './schema.ts';
import { HttpSender, parseEndpoint } from './sender.ts';

const OPEN = fragment('[');
const CLOSE = fragment(']');

const FORBIDDEN_HEADERS: Record<string, string> = { host: 'Host', 'content-length': 'Content-Length', 'content-type': 'Content-Type' };

function validate(config: HttpLogConfig): string | null {
  for (const name of Object.keys(config.headers ?? {})) {
    const forbidden = FORBIDDEN_HEADERS[name.toLowerCase()];
    if (forbidden) return `headers: cannot contain '${forbidden}' header`;
  }
  let url: URL;
  try {
    url = new URL(config.http_endpoint);
  } catch {
    return `http_endpoint: '${config.http_endpoint}' is not a valid URL`;
  }
  if (url.username !== '' && Object.keys(config.headers ?? {}).some((h) => h.toLowerCase() === 'authorization')) {
    return "specifying both an 'Authorization' header and user info in 'http_endpoint' is not allowed";
  }
  return checkLogConfig(config);
}

function create(config: HttpLogConfig, services: PluginServices) {
  const endpoint = parseEndpoint(config.http_endpoint);
  if (config.queue_size !== undefined || config.flush_timeout !== undefined || config.retry_count !== undefined) {
    services.logger.warn('http-log: retry_count, queue_size and flush_timeout are deprecated (Kong 3): use the queue parameters');
  }
  const params = {
    ...config.queue,
    max_batch_size: config.queue_size ?? config.queue.max_batch_size,
    max_coalescing_delay: config.flush_timeout ?? config.queue.max_coalescing_delay,
  };
  const sender = new HttpSender(endpoint, {
    method: config.method,
    contentType: config.content_type,
    timeout: config.timeout,
    keepalive: config.keepalive,
    headers: config.headers ?? {},
    verify: config.ssl_verify,
    connections: params.concurrency_limit < 0 ? 16 : params.concurrency_limit,
  });
  const single = params.max_batch_size === 1;
  const send = (batch: ByteEntry[]) => sender.send(single ? LogArena.parts(batch, null, null) : LogArena.parts(batch, OPEN, CLOSE));
  const serialize = logSerializer({ redact: config.redact, sensitive: services });
  // Records are written as bytes into the arena's chunks, each followed by a comma (the last one of a batch is left out).
  const arena = new LogArena();
  const record = (ctx: PdkContext): ByteEntry => arena.add(serialize.json(ctx));
  // A reload retires this instance: it delivers what waits, then closes the connections.
  return queuedLogHandlers(services, 'http-log', { target: endpoint.display, params, send, close: () => sender.close() }, record, byteEntries(arena));
}

export default definePlugin({
  name: 'http-log',
  priority: 12,
  description: "HTTP log (Kong's http-log): sends each request's log record in batches to an HTTP endpoint, through a bounded queue that never delays requests.",
  schema: HttpLogSchema,
  validate,
  create,
});
