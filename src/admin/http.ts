/** Small HTTP helpers of the admin API: JSON and problem answers, request bodies with a size limit. */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** Largest request body the admin API reads (a config file): like Kong's admin client_max_body_size. */
export const MAX_BODY_BYTES = 10 * 1024 * 1024;

export function send(res: ServerResponse, status: number, body: unknown, type = 'application/json'): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

export function problem(res: ServerResponse, status: number, title: string, message: string, extra: Record<string, unknown> = {}): void {
  send(res, status, { type: 'about:blank', title, status, detail: message, message, ...extra }, 'application/problem+json');
}

export class BodyError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

/** The request body as UTF-8 text; BodyError (413, 415) when it is too large or encoded. */
export function readText(req: IncomingMessage, limit = MAX_BODY_BYTES): Promise<string> {
  return new Promise((ok, fail) => {
    const encoding = req.headers['content-encoding'];
    if (encoding !== undefined && encoding !== 'identity') return fail(new BodyError(415, `content-encoding '${encoding}' is not supported; send the config uncompressed`));
    const tooLarge = () => new BodyError(413, `the body exceeds ${limit} bytes`);
    if (Number(req.headers['content-length'] ?? 0) > limit) return fail(tooLarge());
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.resume();
        fail(tooLarge());
      } else chunks.push(c);
    });
    req.on('end', () => ok(Buffer.concat(chunks).toString('utf8')));
    req.on('error', fail);
  });
}
