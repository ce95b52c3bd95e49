/**
 * syslog — Kong's plugin (kong/plugins/syslog/handler.lua): the log record of
 * every request (docs/log-record.md) as a JSON message, with the severity of
 * its status class (successful / client errors / server errors), sent when
 * that severity is at least log_level. Kong hands it to the local syslog;
 * Palisade sends RFC 5424 messages to host:port over UDP or TCP, through a
 * bounded queue (requests never wait for the syslog server).
 */
import { checkLogConfig, LOG_STREAM_QUEUE, DatagramSender, definePlugin, logSerializer, queuedLogHandlers, StreamSender, type PluginServices } from '../../pdk/index.ts';
import { formatMessage, SEVERITY_CODE, type Severity } from './rfc5424.ts';
import { SyslogSchema, type SyslogConfig } from './schema.ts';

/** The largest UDP payload over IPv4: a longer message is cut there (RFC 5426 §3.2: a sender may truncate). */
const MAX_DATAGRAM = 65507;

function create(config: SyslogConfig, services: PluginServices) {
  const threshold = SEVERITY_CODE[config.log_level];
  const severityOf = (status: number): Severity | null => {
    const s = status >= 500 ? config.server_errors_severity : status >= 400 ? config.client_errors_severity : config.successful_severity;
    return SEVERITY_CODE[s] <= threshold ? s : null;
  };
  let send: (messages: string[]) => Promise<void>;
  let close: () => void;
  if (config.protocol === 'udp') {
    const udp = new DatagramSender(config.host, config.port);
    send = async (messages) => {
      // Each datagram on its own: one that cannot be sent must not take the rest of its batch with it
      // (a client's oversized headers could otherwise suppress other requests' records).
      let failure: unknown = null;
      for (const m of messages) {
        try {
          await udp.send(Buffer.byteLength(m) > MAX_DATAGRAM ? Buffer.from(m).subarray(0, MAX_DATAGRAM) : m);
        } catch (err) {
          failure ??= err;
        }
      }
      if (failure !== null) throw failure; // counted as failed: never reported delivered when one was not
    };
    close = () => udp.close();
  } else {
    const tcp = new StreamSender({ host: config.host, port: config.port, timeout: config.timeout, keepalive: config.keepalive });
    send = (messages) => tcp.send(`${messages.join('\n')}\n`);
    close = () => tcp.close();
  }
  // UDP has nothing to retry (a datagram is sent or it is not); TCP retries like tcp-log.
  const params = config.protocol === 'udp' ? { ...LOG_STREAM_QUEUE, max_retry_time: -1 } : LOG_STREAM_QUEUE;
  const serialize = logSerializer({ redact: config.redact, sensitive: services });
  const target = `${config.protocol}://${config.host}:${config.port}`;
  return queuedLogHandlers(services, 'syslog', { target, params, send, close }, (ctx) => {
    const severity = severityOf(ctx.response.status);
    return severity === null ? null : formatMessage(config.facility, severity, new Date(), serialize.json(ctx));
  });
}

export default definePlugin({
  name: 'syslog',
  priority: 4,
  description: "Syslog (Kong's syslog): sends each request's log record to a syslog server as an RFC 5424 message, with a severity by status class.",
  schema: SyslogSchema,
  validate: checkLogConfig,
  create,
});
