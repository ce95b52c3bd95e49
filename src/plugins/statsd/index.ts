/**
 * statsd — Kong's plugin (kong/plugins/statsd): request metrics sent to a
 * StatsD server in the log phase, through hot-shots (UDP by default, TCP with
 * use_tcp; lines combined into packets up to udp_packet_size). Sending never
 * blocks or fails a request: UDP is fire-and-forget, errors are logged (at
 * most every 10 s) and counted. The client is opened on the first logged
 * request (never by a dry compile) and closed when the config version is
 * retired.
 */
import { hostname } from 'node:os';
import StatsD from 'hot-shots';
import { definePlugin, type PdkContext, type PluginServices } from '../../pdk/index.ts';
import { compileMetrics, withTags, type Send } from './metrics.ts';
import { StatsdSchema, type StatsdConfig } from './schema.ts';

/** The part of hot-shots' client used here (sendAll takes any stat type, including meters). */
interface Client {
  sendAll(stat: string, value: number | string, type: string, sampleRate?: number, tags?: string[]): void;
  close(callback?: (err?: Error) => void): void;
}

const ERROR_LOG_EVERY = 10_000;

/** "200-299" → [200, 299]. */
function ranges(list: readonly string[] | undefined): [number, number][] | null {
  if (list === undefined) return null;
  return list.map((r) => r.split('-').map(Number) as [number, number]);
}

function validate(config: StatsdConfig): string | null {
  for (const [i, m] of config.metrics.entries()) {
    if ((m.stat_type === 'counter' || m.stat_type === 'gauge') && m.sample_rate === undefined) return `metrics[${i}] (${m.name}): sample_rate is required for a ${m.stat_type}`;
    if (m.name === 'unique_users' && m.stat_type !== 'set') return `metrics[${i}]: unique_users must be a set`;
    if (m.sample_rate !== undefined && m.sample_rate > 1) return `metrics[${i}] (${m.name}): sample_rate must be at most 1`;
  }
  for (const r of ranges(config.allow_status_codes) ?? []) if (r[0] > r[1]) return `allow_status_codes: ${r[0]}-${r[1]} is an empty range`;
  return null;
}

function create(config: StatsdConfig, services: PluginServices) {
  const prefix = config.hostname_in_prefix ? `${config.prefix}.node.${hostname().replace(/\./g, '_')}` : config.prefix;
  const metrics = compileMetrics(config, prefix);
  const allowed = ranges(config.allow_status_codes);
  const style = config.tag_style ?? null;
  const log = services.logger;
  const errors = services.metrics.counter('palisade_statsd_send_errors_total', 'Errors of the statsd plugin while sending metrics (they are dropped).', []);
  let lastError = 0;
  let client: Client | null = null;
  let closed = false;

  const open = (): Client => {
    const c = new StatsD({
      host: config.host,
      port: config.port,
      protocol: config.use_tcp ? 'tcp' : 'udp',
      cacheDns: true,
      datadog: false, // no DD_* environment detection, origin fields or client telemetry
      maxBufferSize: config.udp_packet_size > 0 ? config.udp_packet_size : 0,
      bufferFlushInterval: Math.max(10, config.queue.max_coalescing_delay * 1000),
      tcpGracefulErrorHandling: true,
      errorHandler: (err: Error) => {
        errors.inc();
        const now = Date.now();
        if (now - lastError >= ERROR_LOG_EVERY) {
          lastError = now;
          log.warn({ err: err.message, host: config.host, port: config.port }, 'statsd: sending metrics failed; they are dropped');
        }
      },
    } as ConstructorParameters<typeof StatsD>[0]) as unknown as Client;
    return c;
  };

  const send: Send = (name, value, type, rate, tags) => {
    const c = (client ??= open());
    if (tags === undefined || style === 'dogstatsd') c.sendAll(name, value, type, rate, tags);
    else c.sendAll(withTags(style!, name, tags), value, type, rate);
  };

  return {
    log(ctx: PdkContext): void {
      if (closed) return;
      if (allowed !== null) {
        const s = ctx.response.status;
        if (!allowed.some((r) => s >= r[0] && s <= r[1])) return;
      }
      try {
        metrics(ctx, send);
      } catch (err) {
        errors.inc();
        log.error({ err, request_id: ctx.requestId }, 'statsd: building metrics failed');
      }
    },
    dispose(): Promise<void> | void {
      closed = true;
      const c = client;
      client = null;
      if (c !== null) return new Promise<void>((ok) => c.close(() => ok())); // flushes combined packets
    },
  };
}

export default definePlugin({
  name: 'statsd',
  priority: 11,
  description: "StatsD metrics (Kong's statsd): request counts, sizes, latencies and status codes sent to a StatsD/DogStatsD server.",
  schema: StatsdSchema,
  validate,
  create,
});
