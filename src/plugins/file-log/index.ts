/**
 * file-log — Kong's plugin (kong/plugins/file-log/handler.lua): the log record
 * of every request (docs/log-record.md) appended to a file as a JSON line.
 * Lines are buffered in a bounded queue and appended in batches after the
 * response is sent; requests never wait for the disk. Log rotation: rename the
 * file (logrotate's default `create` mode) and a new one is started within a
 * second; no signal needed.
 */
import { statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { checkLogConfig, LOG_STREAM_QUEUE, definePlugin, logSerializer, queuedLogHandlers, type PluginServices } from '../../pdk/index.ts';
import { FileAppender } from './appender.ts';
import { FileLogSchema, type FileLogConfig } from './schema.ts';

function create(config: FileLogConfig, services: PluginServices) {
  const path = resolve(config.path);
  let dir: ReturnType<typeof statSync> | undefined;
  try {
    dir = statSync(dirname(path));
  } catch {}
  if (!dir?.isDirectory()) throw new Error(`path: cannot create a file in ${dirname(path)}: the directory does not exist`);
  const appender = new FileAppender(path, config.reopen);
  const serialize = logSerializer({ redact: config.redact, sensitive: services });
  const send = (lines: string[]) => appender.append(`${lines.join('\n')}\n`);
  return queuedLogHandlers(services, 'file-log', { target: path, params: LOG_STREAM_QUEUE, send, close: () => appender.close() }, (ctx) => serialize.json(ctx));
}

export default definePlugin({
  name: 'file-log',
  priority: 9,
  description: "File log (Kong's file-log): appends each request's log record to a file as a JSON line, buffered, rotation-friendly.",
  schema: FileLogSchema,
  validate: checkLogConfig,
  create,
});
