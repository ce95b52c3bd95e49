import net from 'node:net';
import http from 'node:http';
import type { Child } from './procs.ts';

/** A port that was free a moment ago on 127.0.0.1 (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export interface Probe {
  status: number;
  body: string;
}

/** One GET on a fresh connection; rejects on connection error or after timeoutMs. */
export function probe(port: number, path = '/', timeoutMs = 2000, headers: Record<string, string> = {}): Promise<Probe> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false, headers: { connection: 'close', ...headers } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        if (body.length < 4096) body += d;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

export interface Ready {
  ok: boolean;
  reason: string;
  lastStatus?: number;
}

/**
 * Poll until the port answers HTTP 2xx with the upstream's body (the proxy works
 * end to end), the child exits, or timeoutMs passes.
 */
export async function waitForHttp(port: number, child: Child | null, timeoutMs = 15000, headers: Record<string, string> = {}, expectBody = 'ok\n'): Promise<Ready> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  let lastStatus: number | undefined;
  while (Date.now() < deadline) {
    if (child && child.exitInfo !== null) {
      return { ok: false, reason: `exited (${child.exitInfo}) before answering; last probe: ${last}`, lastStatus };
    }
    try {
      const res = await probe(port, '/', 1000, headers);
      lastStatus = res.status;
      if (res.status >= 200 && res.status < 300 && res.body === expectBody) return { ok: true, reason: 'ready', lastStatus };
      last = `HTTP ${res.status} ${JSON.stringify(res.body.slice(0, 120))}`;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { ok: false, reason: `not ready within ${Math.round(timeoutMs / 1000)} s; last probe: ${last}`, lastStatus };
}
