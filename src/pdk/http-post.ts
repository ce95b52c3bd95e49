/**
 * One request to a collector (log batches, OTLP exports) on undici's dispatch
 * API: the status and the first bytes of the answer, for the queue to decide
 * whether the batch was delivered.
 *
 * Not undici's request(), and the handler must have onRequestStart: undici
 * runs a handler without it (request()'s own is one) through its legacy
 * adapter, and under load V8 then promoted each exchange's objects to the old
 * generation (measured at ~7k proxied requests/s with every span exported:
 * ~4 MB promoted per scavenge and 14 ms pauses, against 0.3 MB and 3 ms).
 */
import type { Dispatcher } from 'undici';

export interface PostResult {
  readonly status: number;
  /** The start of an error answer's body (status >= 400, up to `keep` bytes), decoded as UTF-8; '' for a success. */
  readonly body: string;
}

export interface PostOptions {
  readonly path: string;
  readonly method?: 'POST' | 'PUT' | 'PATCH';
  readonly headers: Record<string, string>;
  /** Buffers are sent one after the other (a batch's ranges, see LogArena.parts), with their total length. */
  readonly body: string | Buffer | readonly Buffer[];
  /** ms to wait for the response head once the request is sent (undefined: the dispatcher's). */
  readonly headersTimeout?: number;
  /**
   * Bytes of an error answer's body (status >= 400) kept in the result; its connection is dropped after
   * them, or once `headersTimeout` has passed since the head. A success resolves at its head: its body is
   * drained in the background and not kept, its connection dropped after SUCCESS_BODY_MAX bytes or
   * `headersTimeout`, so that a collector trickling it holds neither the queue nor the connection for long.
   */
  readonly keep?: number;
}

/** Bytes of a success answer's body drained to keep its connection; a longer one is cut. */
const SUCCESS_BODY_MAX = 64 * 1024;

/** Sends one request and resolves with its status (a success at its head, an error once its body was read in part); rejects on a network error or timeout. */
export function post(dispatcher: Dispatcher, origin: string, o: PostOptions): Promise<PostResult> {
  return new Promise((resolve, reject) => {
    const keep = o.keep ?? 0;
    let status = 0;
    let chunks: Buffer[] | null = null;
    let kept = 0;
    let settled = false;
    /** Bounds the answer's body: a success's is drained (to keep the connection), an error's read in part. */
    let cutoff: NodeJS.Timeout | null = null;
    const stop = () => {
      if (cutoff !== null) clearTimeout(cutoff);
      cutoff = null;
    };
    const done = () => {
      settled = true;
      resolve({ status, body: chunks === null ? '' : Buffer.concat(chunks).subarray(0, keep).toString('utf8') });
    };
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart() {}, // see above: required to stay off undici's legacy adapter
      onResponseStart(controller, statusCode) {
        status = statusCode;
        cutoff = setTimeout(() => {
          cutoff = null;
          if (!settled) done();
          controller.abort(new Error('answer body cut'));
        }, o.headersTimeout ?? 10_000);
        cutoff.unref();
        if (status < 400) done(); // delivered: the body does not matter
      },
      onResponseData(controller, chunk) {
        if (status < 400) {
          kept += chunk.length;
          if (kept > SUCCESS_BODY_MAX) {
            stop();
            controller.abort(new Error('success body cut'));
          }
          return;
        }
        if (settled) return;
        if (kept < keep) {
          (chunks ??= []).push(chunk);
          kept += chunk.length;
        }
        if (kept >= keep) {
          stop();
          done();
          controller.abort(new Error('error body read in part'));
        }
      },
      onResponseEnd() {
        stop();
        if (!settled) done();
      },
      onResponseError(_controller, err) {
        stop();
        if (settled) return;
        settled = true;
        reject(err);
      },
    };
    let body = o.body;
    let headers = o.headers;
    if (Array.isArray(body)) {
      let length = 0;
      for (const b of body as readonly Buffer[]) length += b.length;
      // The length is the parts' (a configured Content-Length, in any case, would be a second or a wrong one).
      headers = { 'content-length': String(length) };
      for (const [k, v] of Object.entries(o.headers)) if (k.toLowerCase() !== 'content-length') headers[k] = v;
      if (body.length === 1) body = body[0]!;
    }
    dispatcher.dispatch(
      {
        origin,
        path: o.path,
        method: o.method ?? 'POST',
        headers,
        // undici sends an iterable body chunk by chunk (its dispatch types do not list iterables).
        body: body as string | Buffer,
        ...(o.headersTimeout === undefined ? {} : { headersTimeout: o.headersTimeout }),
      },
      handler,
    );
  });
}
