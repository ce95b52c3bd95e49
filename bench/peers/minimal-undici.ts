/**
 * The floor any Node gateway should reach: node:http server + undici Pool with
 * keep-alive (dispatch API), request and response bodies streamed with
 * backpressure, hop-by-hop headers removed. No routing, no plugins, no logging.
 *
 *   node bench/peers/minimal-undici.ts --port 8080 --upstream http://127.0.0.1:9000
 *
 * Self-contained on purpose (no local imports): the bench strips its types to
 * run it on Node versions without type stripping.
 */
import http from 'node:http';
import { parseArgs } from 'node:util';
import { Pool, type Dispatcher } from 'undici';

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '8080' },
    upstream: { type: 'string', default: 'http://127.0.0.1:9000' },
    connections: { type: 'string', default: '128' },
  },
});

const upstream = new URL(values.upstream);
const pool = new Pool(upstream.origin, {
  connections: Number(values.connections),
  pipelining: 1,
  keepAliveTimeout: 60_000,
  keepAliveMaxTimeout: 600_000,
});

/** RFC 9110 §7.6.1 hop-by-hop headers, plus host (undici sets it for the upstream). */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
]);

function forwardHeaders(raw: string[], connection: string | undefined): string[] {
  const extra = connection ? connection.toLowerCase().split(',').map((s) => s.trim()) : null;
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (HOP_BY_HOP.has(name) || (extra !== null && extra.includes(name))) continue;
    out.push(name, raw[i + 1]!);
  }
  return out;
}

function responseHeaders(headers: Record<string, string | string[] | undefined>): http.OutgoingHttpHeaders {
  const connection = headers['connection'];
  const extra = typeof connection === 'string' ? connection.toLowerCase().split(',').map((s) => s.trim()) : null;
  const out: http.OutgoingHttpHeaders = {};
  for (const name in headers) {
    if (HOP_BY_HOP.has(name) || (extra !== null && extra.includes(name))) continue;
    out[name] = headers[name];
  }
  return out;
}

/**
 * One proxied exchange, on undici's dispatch API (the leanest one: no promise,
 * no AsyncResource per request): the upstream's status and headers go to the
 * client as soon as they arrive, body chunks are written through with backpressure.
 */
class Exchange implements Dispatcher.DispatchHandler {
  res: http.ServerResponse;
  controller: Dispatcher.DispatchController | null;
  resumeOnDrain: (() => void) | null;

  constructor(res: http.ServerResponse) {
    this.res = res;
    this.controller = null;
    this.resumeOnDrain = null;
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.res.destroyed) controller.abort(new Error('client closed'));
  }

  onResponseStart(_c: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    if (statusCode < 200) return; // 1xx: not forwarded
    this.res.writeHead(statusCode, responseHeaders(headers));
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.res.destroyed) return controller.abort(new Error('client closed'));
    if (!this.res.write(chunk)) {
      controller.pause();
      this.res.once('drain', (this.resumeOnDrain ??= () => this.controller?.resume()));
    }
  }

  onResponseEnd(): void {
    this.res.end();
  }

  onResponseError(_c: Dispatcher.DispatchController, err: Error): void {
    const res = this.res;
    if (res.destroyed) return;
    if (!res.headersSent) {
      res.writeHead(502, { 'content-type': 'text/plain', connection: 'close' });
      res.end('bad gateway\n');
    } else {
      res.destroy(err);
    }
  }
}

const server = http.createServer((req, res) => {
  const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
  pool.dispatch(
    {
      method: req.method as Dispatcher.HttpMethod,
      path: req.url ?? '/',
      headers: forwardHeaders(req.rawHeaders, req.headers.connection),
      body: hasBody ? req : null,
    },
    new Exchange(res),
  );
});
server.keepAliveTimeout = 65_000;

server.listen(Number(values.port), values.host, () => {
  process.stdout.write(`minimal-undici listening on ${values.host}:${values.port} -> ${upstream.origin}\n`);
});

function shutdown(): void {
  server.close();
  void pool.close().finally(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
