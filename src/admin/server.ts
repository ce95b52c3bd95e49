/**
 * The admin/status listener (loopback by default). /status and /status/ready
 * need no token (health probes); everything else needs `Authorization: Bearer
 * <admin token>`, compared in constant time. Without a configured token only
 * the status endpoints are served.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { redactConfig } from './redact.ts';
import type { PalisadeConfig } from '../config/schema.ts';

export interface AdminBackend {
  status(): Record<string, unknown>;
  config(): PalisadeConfig;
  reload(): Promise<{ ok: boolean; version?: string; errors?: string[] }>;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

function send(res: ServerResponse, status: number, body: unknown, type = 'application/json'): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

function problem(res: ServerResponse, status: number, title: string, message: string): void {
  send(res, status, { type: 'about:blank', title, status, detail: message, message }, 'application/problem+json');
}

export function createAdminServer(backend: AdminBackend, token: string | undefined, version: string): Server {
  const expected = token ? digest(token) : null;
  return createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && path === '/status') return send(res, 200, backend.status());
    if (req.method === 'GET' && path === '/status/ready') return send(res, 200, { message: 'ready' });
    if (expected === null) return problem(res, 401, 'Unauthorized', 'the admin API needs a token: set admin.token in the config or PALISADE_ADMIN_TOKEN');
    const m = /^Bearer +(\S+) *$/i.exec(req.headers.authorization ?? ''); // the scheme is case-insensitive (RFC 9110 §11.1)
    const given = m ? digest(m[1]!) : null;
    if (given === null || !timingSafeEqual(given, expected)) {
      res.setHeader('www-authenticate', 'Bearer realm="palisade-admin"');
      return problem(res, 401, 'Unauthorized', 'a valid admin token is required: Authorization: Bearer <token>');
    }
    if (req.method === 'GET' && path === '/') return send(res, 200, { tagline: 'Welcome to palisade', version, node: process.version });
    if (req.method === 'GET' && path === '/config') return send(res, 200, redactConfig(backend.config()));
    if (req.method === 'POST' && path === '/config/reload') {
      backend.reload().then(
        (r) => send(res, r.ok ? 200 : 400, r),
        () => problem(res, 500, 'Internal Server Error', 'the reload failed; see the gateway log'),
      );
      return;
    }
    problem(res, 404, 'Not Found', 'Not found');
  });
}
