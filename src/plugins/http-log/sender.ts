/**
 * Delivers http-log batches over an undici Pool to the collector: keep-alive
 * connections, Kong's timeouts, a status >= 400 is a failure (the queue
 * retries the batch).
 */
import { Pool } from 'undici';
import { post } from '../../pdk/index.ts';

/** Bytes of a collector's error body read for the message (the rest is not read; the connection is dropped). */
const ERROR_BODY_READ = 4096;
/** Characters of it kept in the error message (Kong's 200). */
const ERROR_BODY_KEPT = 200;

export interface Endpoint {
  /** scheme://host:port */
  readonly origin: string;
  /** path and query */
  readonly path: string;
  /** Basic credentials from user:password@ in the URL, or null. */
  readonly authorization: string | null;
  /** The URL without credentials, for log messages. */
  readonly display: string;
}

export function parseEndpoint(url: string): Endpoint {
  const u = new URL(url);
  const user = u.username !== '' ? `${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}` : null;
  return {
    origin: u.origin,
    path: `${u.pathname}${u.search}`,
    authorization: user === null ? null : `Basic ${Buffer.from(user).toString('base64')}`,
    display: `${u.origin}${u.pathname}`,
  };
}

export interface SenderOptions {
  readonly method: 'POST' | 'PUT' | 'PATCH';
  readonly contentType: string;
  readonly timeout: number;
  readonly keepalive: number;
  readonly headers: Record<string, string>;
  readonly verify: boolean;
  /** Connections to the collector (the queue's concurrency). */
  readonly connections: number;
}

export class HttpSender {
  readonly #pool: Pool;
  readonly #endpoint: Endpoint;
  readonly #method: SenderOptions['method'];
  readonly #headers: Record<string, string>;
  readonly #timeout: number;

  constructor(endpoint: Endpoint, o: SenderOptions) {
    this.#endpoint = endpoint;
    this.#timeout = o.timeout;
    this.#method = o.method;
    this.#pool = new Pool(endpoint.origin, {
      connections: o.connections,
      keepAliveTimeout: Math.max(1, o.keepalive),
      keepAliveMaxTimeout: Math.max(1, o.keepalive),
      connectTimeout: o.timeout,
      headersTimeout: o.timeout,
      bodyTimeout: o.timeout,
      connect: { rejectUnauthorized: o.verify },
    });
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(o.headers)) headers[k.toLowerCase()] = v;
    headers['content-type'] = o.contentType;
    if (endpoint.authorization !== null) headers.authorization = endpoint.authorization;
    this.#headers = headers;
  }

  /** Sends a batch: its bytes, one part after the other. */
  async send(payload: readonly Buffer[]): Promise<void> {
    const res = await post(this.#pool, this.#endpoint.origin, { path: this.#endpoint.path, method: this.#method, headers: this.#headers, body: payload, keep: ERROR_BODY_READ, headersTimeout: this.#timeout });
    if (res.status < 400) return;
    throw new Error(`request to ${this.#endpoint.display} returned status code ${res.status} and body ${res.body.slice(0, ERROR_BODY_KEPT)}`);
  }

  close(): void {
    void this.#pool.close().catch(() => {});
  }
}
