/**
 * Listeners: node:http and node:https with explicit limits (header size → 431,
 * head timeout → 408 slow-loris protection, keep-alive lifetime and request
 * count), certificates chosen by SNI, optional client certificates.
 */
import { createServer as createHttp, type IncomingMessage, type Server, type ServerResponse, STATUS_CODES } from 'node:http';
import { createServer as createHttps } from 'node:https';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { ERR, type GatewayError } from './errors.ts';
import type { RuntimeConfig } from './runtime.ts';

export interface ListenerHost {
  readonly runtime: RuntimeConfig;
  handle(req: IncomingMessage, res: ServerResponse, scheme: 'http' | 'https', port: number): void;
}

function rawProblem(e: GatewayError): string {
  const body = JSON.stringify({
    type: `urn:palisade:problem:${(STATUS_CODES[e.status] ?? 'error').toLowerCase().replace(/[^a-z0-9]+/g, '-')}`,
    title: STATUS_CODES[e.status],
    status: e.status,
    detail: e.message,
    message: e.message,
  });
  return `HTTP/1.1 ${e.status} ${STATUS_CODES[e.status]}\r\ncontent-type: application/problem+json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`;
}

/** Malformed requests never reach the router: answer in plain HTTP and close. */
function onClientError(err: Error & { code?: string }, socket: Socket): void {
  if (!socket.writable || (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent) {
    socket.destroy();
    return;
  }
  const e =
    err.code === 'HPE_HEADER_OVERFLOW' ? ERR.HEADERS_TOO_LARGE : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? ERR.REQUEST_TIMEOUT : err.code === 'ECONNRESET' ? null : ERR.BAD_REQUEST;
  if (e === null) {
    socket.destroy();
    return;
  }
  socket.end(rawProblem(e));
}

function applyLimits(server: Server, rt: RuntimeConfig): void {
  const s = rt.settings;
  server.headersTimeout = s.headers_timeout;
  server.requestTimeout = s.request_timeout;
  server.keepAliveTimeout = s.keepalive_timeout;
  server.maxRequestsPerSocket = s.keepalive_requests;
}

export function createListeners(host: ListenerHost, want: { http: boolean; https: boolean }): { http: Server | null; https: Server | null; update(rt: RuntimeConfig): void } {
  const rt = host.runtime;
  const common = {
    maxHeaderSize: rt.settings.max_header_size,
    headersTimeout: rt.settings.headers_timeout,
    requestTimeout: rt.settings.request_timeout,
    keepAliveTimeout: rt.settings.keepalive_timeout,
    connectionsCheckingInterval: 1000,
    requireHostHeader: false,
    insecureHTTPParser: false,
  };
  let http: Server | null = null;
  let https: Server | null = null;
  if (want.http) {
    const srv = createHttp(common);
    const onRequest = (req: IncomingMessage, res: ServerResponse) => host.handle(req, res, 'http', (req.socket.localPort ?? 0));
    srv.on('request', onRequest);
    srv.on('clientError', onClientError);
    applyLimits(srv, rt);
    http = srv;
  }
  const first = rt.config.certificates[0];
  if (want.https && first) {
    const requestCert = rt.config.certificates.some((c) => c.client_verify !== 'off');
    const srv = createHttps({
      ...common,
      cert: first.cert,
      key: first.key,
      ...(first.client_ca ? { ca: first.client_ca } : {}),
      requestCert,
      rejectUnauthorized: false,
      minVersion: 'TLSv1.2',
      SNICallback: (servername, cb) => cb(null, host.runtime.secureContextFor(servername) ?? undefined),
    });
    srv.on('request', (req: IncomingMessage, res: ServerResponse) => host.handle(req, res, 'https', req.socket.localPort ?? 0));
    srv.on('clientError', onClientError);
    // Per-SNI "required" client certificates: refuse the connection when it did not verify.
    srv.on('secureConnection', (socket: TLSSocket) => {
      const name = (socket as TLSSocket & { servername?: string | false }).servername;
      const ctx = name ? host.runtime.secureContextFor(name) : host.runtime.tls.default;
      if (ctx && host.runtime.tls.verify.get(ctx) === 'required' && !socket.authorized) socket.destroy();
    });
    applyLimits(srv, rt);
    https = srv;
  }
  return {
    http,
    https,
    update(next: RuntimeConfig) {
      if (http) applyLimits(http, next);
      if (https) {
        applyLimits(https, next);
        const c = next.config.certificates[0];
        if (c) (https as unknown as { setSecureContext(o: object): void }).setSecureContext({ cert: c.cert, key: c.key, ...(c.client_ca ? { ca: c.client_ca } : {}) });
      }
    },
  };
}

export function parseListen(spec: string): { host: string; port: number } | null {
  if (spec === 'off') return null;
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(spec);
  if (!m) throw new Error(`invalid listen address '${spec}' (expected HOST:PORT or off)`);
  return { host: m[1]!, port: Number(m[2]) };
}
