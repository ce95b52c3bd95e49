/**
 * One raw HTTP request with node:http: headers and path sent exactly as given
 * (no client-side normalisation of ../ or %2e, hop-by-hop headers allowed).
 */
import { type Agent, request as httpRequest, type IncomingHttpHeaders } from 'node:http';

export interface Response {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  json(): any;
}

export interface RequestOptions {
  method?: string;
  /** An object, or a flat [name, value, name, value …] list to send a header twice. */
  headers?: Record<string, string> | string[];
  body?: string | Buffer;
  host?: string;
  timeoutMs?: number;
  /** A keep-alive agent to use instead of a fresh `Connection: close` connection. */
  agent?: Agent;
}

function withConnection(o: RequestOptions): Record<string, string> | string[] {
  if (Array.isArray(o.headers)) return o.agent ? o.headers : ['connection', 'close', ...o.headers];
  return o.agent ? { ...o.headers } : { connection: 'close', ...o.headers };
}

/**
 * One HTTP request, by default on its own new connection (no agent, no
 * keep-alive reuse): each request is a fresh accept, which matters for
 * shutdown and worker-distribution tests.
 */
export function request(port: number, path: string, o: RequestOptions = {}): Promise<Response> {
  return new Promise((ok, fail) => {
    const req = httpRequest(
      { host: o.host ?? '127.0.0.1', port, path, method: o.method ?? 'GET', headers: withConnection(o), agent: o.agent ?? false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', fail);
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          ok({ status: res.statusCode!, headers: res.headers, body, json: () => JSON.parse(body) });
        });
      },
    );
    req.setTimeout(o.timeoutMs ?? 10000, () => req.destroy(new Error(`request to :${port}${path} timed out`)));
    req.on('error', fail);
    req.end(o.body);
  });
}

