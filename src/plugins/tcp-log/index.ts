/**
 * tcp-log — Kong's plugin (kong/plugins/tcp-log/handler.lua): the log record
 * of every request (docs/log-record.md) as newline-delimited JSON over one
 * kept-alive TCP or TLS connection. Records wait in a bounded queue (sent in
 * batches as soon as the event loop is free; a failed write is retried with
 * backoff; a full queue drops its oldest records and counts them), so a slow
 * or dead log server never delays a request.
 */
import { checkLogConfig, LOG_STREAM_QUEUE, definePlugin, logSerializer, queuedLogHandlers, StreamSender, type PluginServices } from '../../pdk/index.ts';
import { TcpLogSchema, type TcpLogConfig } from './schema.ts';

function create(config: TcpLogConfig, services: PluginServices) {
  const sender = new StreamSender({
    host: config.host,
    port: config.port,
    timeout: config.timeout,
    keepalive: config.keepalive,
    tls: config.tls,
    servername: config.tls_sni,
    verify: config.ssl_verify,
  });
  const serialize = logSerializer({ redact: config.redact, sensitive: services });
  const send = (lines: string[]) => sender.send(`${lines.join('\n')}\n`);
  return queuedLogHandlers(services, 'tcp-log', { target: `${config.host}:${config.port}`, params: LOG_STREAM_QUEUE, send, close: () => sender.close() }, (ctx) => serialize.json(ctx));
}

export default definePlugin({
  name: 'tcp-log',
  priority: 7,
  description: "TCP log (Kong's tcp-log): sends each request's log record as a JSON line to a TCP or TLS server, through a bounded queue.",
  schema: TcpLogSchema,
  validate: checkLogConfig,
  create,
});
