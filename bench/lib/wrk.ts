/** Running wrk and reading its --latency report. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { start } from './procs.ts';
import { pinned, LOAD_CPU } from './pin.ts';

export interface WrkResult {
  requests: number;
  seconds: number;
  rps: number;
  /** Latency percentiles in milliseconds. */
  p50: number;
  p75: number;
  p90: number;
  p99: number;
  avg: number;
  max: number;
  /** Responses that were not 2xx/3xx. */
  non2xx: number;
  socketErrors: { connect: number; read: number; write: number; timeout: number };
  raw: string;
}

export interface WrkOptions {
  port: number;
  seconds: number;
  connections: number;
  threads?: number;
  headers?: Record<string, string>;
  path?: string;
  /** A request other than GET (sent by a wrk Lua script). */
  request?: WrkRequest;
}

export interface WrkRequest {
  method: string;
  headers: Record<string, string>;
  body: string;
}

/** A wrk script that sends `r` on every request (long-bracket strings: no escaping needed). */
function luaScript(r: WrkRequest): string {
  const str = (v: string) => `[==[${v}]==]`;
  const lines = [`wrk.method = ${str(r.method)}`, `wrk.body = ${str(r.body)}`];
  for (const [k, v] of Object.entries(r.headers)) lines.push(`wrk.headers[${str(k)}] = ${str(v)}`);
  return lines.join('\n') + '\n';
}

/** wrk prints durations as 1.23us / 4.56ms / 7.89s / 1.00m. */
export function parseDuration(text: string): number {
  const m = /^([\d.]+)(us|ms|s|m|h)?$/.exec(text.trim());
  if (!m) return Number.NaN;
  const v = Number(m[1]);
  switch (m[2]) {
    case 'us':
      return v / 1000;
    case 'ms':
      return v;
    case 's':
      return v * 1000;
    case 'm':
      return v * 60_000;
    case 'h':
      return v * 3_600_000;
    default:
      return v; // wrk prints bare numbers only for 0
  }
}

export function parseWrk(raw: string): WrkResult {
  const num = (re: RegExp): number => {
    const m = re.exec(raw);
    return m ? Number(m[1]) : 0;
  };
  const pct = (p: string): number => {
    const m = new RegExp(`^\\s*${p}%\\s+(\\S+)`, 'm').exec(raw);
    return m ? parseDuration(m[1]!) : Number.NaN;
  };
  const lat = /^\s*Latency\s+(\S+)\s+(\S+)\s+(\S+)/m.exec(raw);
  const total = /(\d+) requests in ([\d.]+)(us|ms|s|m)/.exec(raw);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(raw);
  if (!/Requests\/sec:/.test(raw)) throw new Error(`could not parse wrk output:\n${raw}`);
  return {
    requests: total ? Number(total[1]) : 0,
    seconds: total ? parseDuration(`${total[2]}${total[3]}`) / 1000 : 0,
    rps: num(/Requests\/sec:\s+([\d.]+)/),
    p50: pct('50'),
    p75: pct('75'),
    p90: pct('90'),
    p99: pct('99'),
    avg: lat ? parseDuration(lat[1]!) : Number.NaN,
    max: lat ? parseDuration(lat[3]!) : Number.NaN,
    non2xx: num(/Non-2xx or 3xx responses:\s+(\d+)/),
    socketErrors: sock
      ? { connect: Number(sock[1]), read: Number(sock[2]), write: Number(sock[3]), timeout: Number(sock[4]) }
      : { connect: 0, read: 0, write: 0, timeout: 0 },
    raw,
  };
}

export function socketErrorCount(r: WrkResult): number {
  const s = r.socketErrors;
  return s.connect + s.read + s.write + s.timeout;
}

/** One wrk run (keep-alive, HTTP/1.1), pinned to the load CPU. */
export async function runWrk(o: WrkOptions): Promise<WrkResult> {
  const args = [`-t${o.threads ?? 1}`, `-c${o.connections}`, `-d${o.seconds}s`, '--latency', '--timeout', '5s'];
  for (const [k, v] of Object.entries(o.headers ?? {})) args.push('-H', `${k}: ${v}`);
  const dir = o.request ? mkdtempSync(join(tmpdir(), 'palisade-wrk-')) : null;
  if (dir !== null) {
    const file = join(dir, 'request.lua');
    writeFileSync(file, luaScript(o.request!));
    args.push('-s', file);
  }
  args.push(`http://127.0.0.1:${o.port}${o.path ?? '/'}`);
  const [cmd, argv] = pinned(LOAD_CPU, 'wrk', args);
  const child = start('wrk', cmd, argv, { captureStdout: true });
  const code = await child.exited;
  if (dir !== null) rmSync(dir, { recursive: true, force: true });
  const out = child.stdout();
  if (code !== 0) throw new Error(`wrk exited with ${code}: ${out.slice(-500)}`);
  return parseWrk(out);
}
