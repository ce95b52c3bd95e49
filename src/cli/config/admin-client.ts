/**
 * The admin API of a running gateway, as the `palisade config` commands reach
 * it: base URL from --admin (PALISADE_ADMIN_URL, default http://127.0.0.1:8001),
 * bearer token from --token or PALISADE_ADMIN_TOKEN. Connection failures and a
 * refused token become errors that say what to check.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

export interface AdminOptions {
  admin: string;
  token?: string;
}

export interface AdminAnswer {
  status: number;
  body: any;
}

const TIMEOUT_MS = 120_000;

/** One request on its own connection (no keep-alive: the command exits as soon as it is done). */
function send(url: URL, method: string, headers: Record<string, string>, body: string | undefined): Promise<{ status: number; text: string }> {
  return new Promise((ok, fail) => {
    const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, { method, headers, agent: false, signal: AbortSignal.timeout(TIMEOUT_MS) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', fail);
      res.on('end', () => ok({ status: res.statusCode!, text: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', (err) => fail((err as { cause?: Error }).cause?.name === 'TimeoutError' ? (err as { cause: Error }).cause : err));
    req.end(body);
  });
}

function reason(err: unknown): string {
  const cause = ((err as { cause?: NodeJS.ErrnoException }).cause ?? err) as NodeJS.ErrnoException;
  switch (cause?.code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'host not found';
    case 'ECONNRESET':
      return 'connection reset';
    default:
      return cause?.message ?? (err as Error).message;
  }
}

/** One admin API call; resolves with any answer but 401 (thrown, like every failure to get an answer). */
export async function callAdmin(o: AdminOptions, method: string, path: string, body?: string): Promise<AdminAnswer> {
  let base: URL;
  try {
    base = new URL(o.admin);
    if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new Error();
  } catch {
    throw new Error(`--admin '${o.admin}' is not an http(s) URL (e.g. http://127.0.0.1:8001)`);
  }
  const url = new URL(path, base.href.endsWith('/') ? base : `${base.href}/`);
  const headers: Record<string, string> = { accept: 'application/json', connection: 'close' };
  if (o.token) headers.authorization = `Bearer ${o.token}`;
  if (body !== undefined) headers['content-type'] = 'application/yaml; charset=utf-8';
  let res: { status: number; text: string };
  try {
    res = await send(url, method, headers, body);
  } catch (err) {
    if ((err as Error).name === 'TimeoutError') throw new Error(`the admin API at ${base.origin} did not answer within ${TIMEOUT_MS / 1000} s`);
    throw new Error(`cannot reach the admin API at ${base.origin}: ${reason(err)}; is the gateway running, and is --admin (PALISADE_ADMIN_URL) its admin address?`);
  }
  let parsed: any = res.text;
  try {
    parsed = JSON.parse(res.text);
  } catch {}
  if (res.status === 401) {
    const why = o.token ? 'the token was refused' : 'no token was given';
    throw new Error(`the admin API at ${base.origin} answered 401 Unauthorized: ${why}; pass --token or set PALISADE_ADMIN_TOKEN to the gateway's admin token`);
  }
  return { status: res.status, body: parsed };
}

/** An answer the command does not expect, as an error. */
export function unexpected(a: AdminAnswer, what: string): Error {
  const detail = typeof a.body === 'object' && a.body !== null ? (a.body.detail ?? a.body.message ?? JSON.stringify(a.body)) : String(a.body).slice(0, 200);
  const hint = a.status === 404 || a.status === 405 ? ' (is this a Palisade admin API recent enough to have the config endpoints?)' : '';
  return new Error(`${what} failed: the admin API answered ${a.status}: ${detail}${hint}`);
}
