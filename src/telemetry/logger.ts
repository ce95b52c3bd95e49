/** The gateway's own log (stderr, JSON via pino) with secrets redacted. */
import { pino, type Logger } from 'pino';

const REDACT_PATHS = [
  'req.headers.authorization', 'req.headers.cookie', 'req.headers["proxy-authorization"]', 'req.headers["x-api-key"]', 'req.headers.apikey',
  'headers.authorization', 'headers.cookie', 'config.token', 'admin.token', '*.password', '*.secret', '*.key',
];

export function createLogger(level = 'info'): Logger {
  return pino({ level, base: { pid: process.pid }, redact: { paths: REDACT_PATHS, censor: '[REDACTED]' } }, pino.destination({ dest: 2, sync: false }));
}
