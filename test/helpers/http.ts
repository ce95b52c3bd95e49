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


export interface Streamed {
  status: number;
  text: string;
  /** Body bytes the client had produced when the answer arrived. */
  produced: number;
  /** The client had written the whole body before the answer. */
  finished: boolean;
}

/**
 * POST a chunked body produced lazily from `chunks()` (at most `total`
 * bytes), honouring backpressure; production stops once the answer arrives.
 */
export function streamPost(url: string, headers: Record<string, string>, next: (i: number) => Buffer, total: number): Promise<Streamed> {
  return new Promise((resolve, reject) => {
    let produced = 0;
    let answered = false;
    let finished = false;
    const req = httpRequest(url, { method: 'POST', headers: { ...headers, 'transfer-encoding': 'chunked' }, agent: false }, (res) => {
      answered = true;
      const at = produced;
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        resolve({ status: res.statusCode!, text, produced: at, finished });
        req.destroy();
      });
    });
    // The gateway answers and closes before the body is over: the rest cannot be written.
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (!answered && err.code !== 'EPIPE' && err.code !== 'ECONNRESET') reject(err);
    });
    let i = 0;
    const pump = () => {
      while (!answered && !req.destroyed && produced < total) {
        const chunk = next(i++);
        produced += chunk.length;
        if (!req.write(chunk)) return void req.once('drain', pump);
      }
      if (!answered && !req.destroyed) {
        finished = true;
        req.end();
      }
    };
    pump();
  });
}
