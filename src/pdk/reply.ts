import { STATUS_CODES } from 'node:http';

/** A response decided by the gateway (a plugin or the core). Returning one stops the chain. */
export class Reply {
  readonly status: number;
  readonly body: string | Buffer | null;
  readonly headers: Record<string, string>;
  /** Why (recorded as the plugin's decision; safe to log). */
  readonly reason: string | null;

  constructor(status: number, body: string | Buffer | null, headers: Record<string, string>, reason: string | null = null) {
    this.status = status;
    this.body = body;
    this.headers = headers;
    this.reason = reason;
  }
}

/** Slug used in the problem `type`, derived from the status text. */
function slug(status: number): string {
  return (STATUS_CODES[status] ?? 'error').toLowerCase().replace(/[^a-z0-9]+/g, '-');
}

/**
 * RFC 9457 problem document with Kong's `message` member, so clients written
 * against Kong keep working. Never carries a stack trace or a secret.
 * `reason` is the decision recorded for it (default: the message).
 */
export function problem(
  status: number,
  message: string,
  requestId: string,
  headers: Record<string, string> = {},
  detail?: string,
  reason: string = message,
): Reply {
  const body = JSON.stringify({
    type: `urn:palisade:problem:${slug(status)}`,
    title: STATUS_CODES[status] ?? 'Error',
    status,
    detail: detail ?? message,
    request_id: requestId,
    message,
  });
  return new Reply(status, body, { 'content-type': 'application/problem+json', ...headers }, reason);
}
