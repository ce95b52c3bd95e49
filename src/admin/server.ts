/**
 * The admin/status listener (loopback by default). /status and /status/ready
 * need no token (health probes); everything else needs `Authorization: Bearer
 * <admin token>`, compared in constant time. Without a configured token only
 * the status endpoints are served. Endpoints are entries of two tables (open,
 * behind the token), keyed by method and path; a known path with another
 * method answers 405.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { AdminAuditor } from '../audit/admin.ts';
import type { AdminAuditEvent } from '../audit/entries.ts';
import type { PalisadeConfig } from '../config/schema.ts';
import { diffConfig, getConfig, putConfig } from './config-api.ts';
import { problem, send } from './http.ts';

export interface AdminBackend {
  status(): Record<string, unknown>;
  /** The running config. */
  config(): PalisadeConfig;
  /** Re-read the config file. */
  reload(): Promise<{ ok: boolean; version?: string; errors?: string[] }>;
  /** The file the gateway was started from: PUT /config persists there (null: PUT /config is refused). */
  readonly configFile: string;
  /** Runs `fn` while no reload or other config change runs (they wait for it). */
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
  /**
   * Compile `next` beside the running config, run `persist`, then swap `next` in.
   * When compiling or persisting fails, nothing changes. Called inside exclusive().
   */
  commit(next: PalisadeConfig, persist: () => Promise<void>): Promise<{ ok: true; version: string } | { ok: false; error: Error }>;
  /** Told about a request that failed unexpectedly (answered 500). */
  error?(err: unknown): void;
  /** Told about requests past the open endpoints, allowed (valid token) or refused, once answered: the audit trail (refusals aggregated per address, src/audit/admin.ts). */
  audit?(event: AdminAuditEvent): void;
  /** Prometheus exposition of the whole gateway (all workers): GET /metrics, open like /status. */
  metrics?(): Promise<{ contentType: string; text: string }>;
}

/** The request target: path as sent (no normalisation) and query. */
export interface AdminUrl {
  pathname: string;
  searchParams: URLSearchParams;
}
type Handler = (req: IncomingMessage, res: ServerResponse, url: AdminUrl) => void | Promise<void>;
type Routes = Record<string, Record<string, Handler>>; // path → method → handler

const digest = (s: string) => createHash('sha256').update(s).digest();

export function createAdminServer(backend: AdminBackend, token: string | undefined, version: string): Server {
  const expected = token ? digest(token) : null;
  const auditor = backend.audit ? new AdminAuditor(backend.audit.bind(backend)) : null;
  const open: Routes = {
    '/status': { GET: (_q, res) => send(res, 200, backend.status()) },
    '/status/ready': { GET: (_q, res) => send(res, 200, { message: 'ready' }) },
  };
  if (backend.metrics) {
    const metrics = backend.metrics.bind(backend);
    open['/metrics'] = {
      GET: async (_q, res) => {
        const m = await metrics();
        res.writeHead(200, { 'content-type': m.contentType, 'content-length': Buffer.byteLength(m.text), 'cache-control': 'no-store' });
        res.end(m.text);
      },
    };
  }
  const authenticated: Routes = {
    '/': { GET: (_q, res) => send(res, 200, { tagline: 'Welcome to palisade', version, node: process.version }) },
    '/config': {
      GET: (_q, res, url) => getConfig(backend, res, url),
      PUT: (req, res) => putConfig(backend, req, res),
    },
    '/config/diff': { POST: (req, res) => diffConfig(backend, req, res) },
    '/config/reload': {
      POST: async (_q, res) => {
        const r = await backend.reload();
        send(res, r.ok ? 200 : 400, r);
      },
    },
  };
  const dispatch = (routes: Routes, req: IncomingMessage, res: ServerResponse, url: AdminUrl): void => {
    const methods = routes[url.pathname]!;
    const handler = methods[req.method ?? ''];
    if (!handler) {
      res.setHeader('allow', Object.keys(methods).join(', '));
      return problem(res, 405, 'Method Not Allowed', `${req.method} is not allowed on ${url.pathname}`);
    }
    Promise.resolve()
      .then(() => handler(req, res, url))
      .catch((err: unknown) => {
        backend.error?.(err);
        if (!res.headersSent) problem(res, 500, 'Internal Server Error', 'the request failed; see the gateway log');
        else res.destroy();
      });
  };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const target = req.url ?? '/';
    const q = target.indexOf('?');
    const url = { pathname: q < 0 ? target : target.slice(0, q), searchParams: new URLSearchParams(q < 0 ? '' : target.slice(q + 1)) };
    if (Object.hasOwn(open, url.pathname)) return dispatch(open, req, res, url);
    auditor?.track(req, res, url);
    if (expected === null) return problem(res, 401, 'Unauthorized', 'the admin API needs a token: set admin.token in the config or PALISADE_ADMIN_TOKEN');
    const m = /^Bearer +(\S+) *$/i.exec(req.headers.authorization ?? ''); // the scheme is case-insensitive (RFC 9110 §11.1)
    const given = m ? digest(m[1]!) : null;
    if (given === null || !timingSafeEqual(given, expected)) {
      res.setHeader('www-authenticate', 'Bearer realm="palisade-admin"');
      return problem(res, 401, 'Unauthorized', 'a valid admin token is required: Authorization: Bearer <token>');
    }
    if (Object.hasOwn(authenticated, url.pathname)) return dispatch(authenticated, req, res, url);
    problem(res, 404, 'Not Found', 'Not found');
  });
  if (auditor) server.once('close', () => auditor.flush());
  return server;
}
