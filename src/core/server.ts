/**
 * Listeners: node:http and node:https with explicit limits (header size → 431,
 * head timeout → 408 slow-loris protection, keep-alive lifetime and request
 * count), certificates chosen by SNI, optional client certificates.
 */
import { randomUUID } from 'node:crypto';
import { createServer as createHttp, type IncomingMessage, type Server, type ServerResponse, STATUS_CODES } from 'node:http';
import { createServer as createHttps } from 'node:https';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { problem } from '../pdk/reply.ts';
import { ERR, type GatewayError } from './errors.ts';
import type { RuntimeConfig } from './runtime.ts';

export interface ListenerHost {
  readonly runtime: RuntimeConfig;
  /** Where requests refused by the listener itself are logged (they never reach the handler). */
  readonly log?: Logger;
  handle(req: IncomingMessage, res: ServerResponse, scheme: 'http' | 'https', port: number): void;
}


/** The same problem document the handler answers with (src/pdk/reply.ts). */
function problemBody(e: GatewayError, requestId: string): string {
  return problem(e.status, e.message, requestId).body as string;
}

function rawProblem(e: GatewayError, requestIdHeader: string, requestId: string): string {
  const body = problemBody(e, requestId);
  return (
    `HTTP/1.1 ${e.status} ${STATUS_CODES[e.status]}\r\ncontent-type: application/problem+json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
    `${requestIdHeader}: ${requestId}\r\nconnection: close\r\n\r\n${body}`
  );
}

/** Malformed requests never reach the router: answer in plain HTTP and close. */
function clientErrorHandler(host: ListenerHost) {
  return (err: Error & { code?: string }, socket: Socket): void => {
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
    const requestId = randomUUID();
    host.log?.info({ request_id: requestId, error: e.code, parser: err.code, client_ip: socket.remoteAddress }, 'request refused by the listener');
    socket.end(rawProblem(e, host.runtime.settings.request_id_header, requestId));
  };
}

/** Answer from the listener (before the handler) with a problem document, and close. */
function refuse(host: ListenerHost, req: IncomingMessage, res: ServerResponse, e: GatewayError): void {
  const requestId = randomUUID();
  host.log?.info({ request_id: requestId, error: e.code, client_ip: req.socket.remoteAddress, path: req.url?.split('?', 1)[0] }, 'request refused by the listener');
  const body = problemBody(e, requestId);
  res.shouldKeepAlive = false;
  res.writeHead(e.status, {
    'content-type': 'application/problem+json',
    'content-length': Buffer.byteLength(body),
    [host.runtime.settings.request_id_header]: requestId,
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/** An absolute-form request target (RFC 9112 §3.2.2): its authority, and its path and query. */
const ABSOLUTE_FORM = /^https?:\/\/([^/?#]*)([^#]*)/i;
/** What a Host never holds (nginx's ngx_http_validate_host): path separators, white space, controls, "..". */
const BAD_HOST = /[/\\\s\x00-\x1f\x7f]|\.\./;
/** The dot that ends a fully qualified name, before the port if any. */
const TRAILING_DOT = /\.(?=(?::\d*)?$)/;

/**
 * Checks every request shares, before the handler; false = already answered.
 * - RFC 9112 §3.2: an HTTP/1.1 request without Host, or with more than one, gets 400
 *   (node's own requireHostHeader answers without a problem document, and allows duplicates).
 * - HTTP/1.0 with Transfer-Encoding gets 400 (the parser catches every other framing conflict).
 * - keep-alive: node only *announces* `Connection: close` on the keepalive_requests-th
 *   response and keeps the socket open; keepalive_timeout 0 means no keep-alive (like nginx).
 */
function admit(host: ListenerHost, req: IncomingMessage, res: ServerResponse): boolean {
  // A request pipelined behind a body the gateway gave up reading (discardUnread): the connection is closing, it is not served.
  if (!req.socket.writable) return false;
  const raw = req.rawHeaders;
  let hosts = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 4 && name.toLowerCase() === 'host') hosts++;
  }
  if (hosts > 1 || (hosts === 0 && req.httpVersionMajor === 1 && req.httpVersionMinor === 1)) {
    refuse(host, req, res, ERR.BAD_REQUEST);
    return false;
  }
  // RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 means faulty framing (node would
  // honour it, and keep the connection alive: a request-smuggling vector).
  const te = req.headers['transfer-encoding'];
  if (te !== undefined) {
    if (req.httpVersionMinor === 0) {
      refuse(host, req, res, ERR.BAD_REQUEST);
      return false;
    }
    // A coding other than chunked (gzip, chunked …): node undoes only the chunking, so the upstream would get a
    // still-encoded body as a plain one. nginx answers 501.
    if (te.trim().toLowerCase() !== 'chunked') {
      refuse(host, req, res, ERR.NOT_IMPLEMENTED);
      return false;
    }
  }
  // RFC 9112 §3.2.2: an absolute-form target's authority replaces Host, for every later reader (the
  // client-certificate check, routing, preserve_host, X-Forwarded-Host), so that they cannot disagree;
  // the target becomes origin-form (another form is left as it is: the handler refuses it).
  const url = req.url!;
  if (url.charCodeAt(0) !== 47) {
    const m = ABSOLUTE_FORM.exec(url);
    if (m !== null) {
      req.headers.host = m[1]!.slice(m[1]!.lastIndexOf('@') + 1);
      req.url = m[2]!.charCodeAt(0) === 47 ? m[2]! : `/${m[2]!}`;
    }
  }
  const h = req.headers.host;
  if (h !== undefined) {
    // nginx's ngx_http_validate_host: no path separator, white space, control character or "..", in a Host
    // that goes into redirects, X-Forwarded-Host and the upstream's Host.
    if (BAD_HOST.test(h)) {
      refuse(host, req, res, ERR.BAD_REQUEST);
      return false;
    }
    // "api.example." is "api.example" (nginx drops the dot too): the client-certificate check and routing see one name.
    if (TRAILING_DOT.test(h)) req.headers.host = h.replace(TRAILING_DOT, '');
  }
  if ((res as ServerResponse & { maxRequestsOnConnectionReached?: boolean }).maxRequestsOnConnectionReached || host.runtime.settings.keepalive_timeout === 0) res.shouldKeepAlive = false;
  return true;
}

/**
 * Client certificates are verified per connection, for the SNI's certificate. A
 * request must not reach a host whose certificate requires one over a connection
 * negotiated for another name (or none): 421, or mTLS could be bypassed by
 * choosing the SNI.
 */
function tlsHostAllowed(rt: RuntimeConfig, req: IncomingMessage): boolean {
  if (!rt.tls.required) return true;
  const hostHeader = req.headers.host ?? '';
  const colon = hostHeader.lastIndexOf(':');
  const name = colon > hostHeader.lastIndexOf(']') ? hostHeader.slice(0, colon) : hostHeader;
  const wanted = rt.namedContextFor(name);
  if (wanted === null || rt.tls.verify.get(wanted) !== 'required') return true;
  const socket = req.socket as TLSSocket & { servername?: string | false };
  const conn = socket.servername ? rt.secureContextFor(socket.servername) : rt.tls.default;
  return conn === wanted && socket.authorized;
}

function applyLimits(server: Server, rt: RuntimeConfig): void {
  const s = rt.settings;
  // Read by node when a connection's parser is set up: a reload applies to new connections.
  (server as Server & { maxHeaderSize: number }).maxHeaderSize = s.max_header_size;
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
    // Checked in admit(), which answers with a problem document.
    requireHostHeader: false,
    // A request without Content-Length or Transfer-Encoding has no body (RFC 9112 §6.3): node (24.12+) skips
    // its stream life cycle ('data', 'end', 'close' events) instead of running it for nothing.
    optimizeEmptyRequests: true,
    insecureHTTPParser: false,
  };
  const onClientError = clientErrorHandler(host);
  let http: Server | null = null;
  let https: Server | null = null;
  if (want.http) {
    const srv = createHttp(common);
    const onRequest = (req: IncomingMessage, res: ServerResponse) => {
      if (admit(host, req, res)) host.handle(req, res, 'http', req.socket.localPort ?? 0);
    };
    srv.on('request', onRequest);
    // Expect: 100-continue is answered when the body is first read (RequestContext.continueBody), after access control.
    srv.on('checkContinue', onRequest);
    srv.on('clientError', onClientError);
    applyLimits(srv, rt);
    http = srv;
  }
  const first = rt.config.certificates[0];
  if (want.https && first) {
    const srv = createHttps({
      ...common,
      cert: first.cert,
      key: first.key,
      ...(first.client_ca ? { ca: first.client_ca } : {}),
      requestCert: rt.config.certificates.some((c) => c.client_verify !== 'off'),
      rejectUnauthorized: false,
      minVersion: 'TLSv1.2',
      SNICallback: (servername, cb) => cb(null, host.runtime.secureContextFor(servername) ?? undefined),
    });
    const onTlsRequest = (req: IncomingMessage, res: ServerResponse): void => {
      if (!admit(host, req, res)) return;
      if (!tlsHostAllowed(host.runtime, req)) return refuse(host, req, res, ERR.MISDIRECTED);
      host.handle(req, res, 'https', req.socket.localPort ?? 0);
    };
    srv.on('request', onTlsRequest);
    srv.on('checkContinue', onTlsRequest);
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
        // Read by node for each new connection: a reload that adds client_verify must start asking for certificates.
        (https as unknown as { requestCert: boolean }).requestCert = next.config.certificates.some((c) => c.client_verify !== 'off');
        const c = next.config.certificates[0];
        if (c) (https as unknown as { setSecureContext(o: object): void }).setSecureContext({ cert: c.cert, key: c.key, minVersion: 'TLSv1.2', ...(c.client_ca ? { ca: c.client_ca } : {}) });
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
