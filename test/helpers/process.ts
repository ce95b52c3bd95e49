/**
 * Test harness for the `palisade` command as a real process: spawn
 * `node bin/palisade.js …` with the Node 24 binary running the tests
 * (process.execPath), wait until a port answers, read the JSON log lines of
 * stdout (access log) and stderr (gateway log), stop with a signal and get the
 * exit code. Ports come from the OS so test files can run concurrently.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync, renameSync } from 'node:fs';
import { startUpstream as startTestUpstream, type TestUpstream } from './gateway.ts';
import { createServer, connect, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const BIN = join(ROOT, 'bin', 'palisade.js');
export const NODE = process.execPath;

/** Every child started here; killed when the test process exits so nothing outlives a failed test. */
const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

/** The environment of the test runner without PALISADE_* variables (they would leak into precedence tests). */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PALISADE_') && k !== 'DEMO_UPSTREAM_PORT' && k !== 'NODE_TEST_CONTEXT') env[k] = v;
  return { ...env, ...extra };
}

/** `n` distinct free TCP ports on 127.0.0.1 (all held open at once, then released). */
export async function freePorts(n: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const s = createServer();
      await new Promise<void>((ok, fail) => s.once('error', fail).listen(0, '127.0.0.1', () => ok()));
      servers.push(s);
    }
    return servers.map((s) => (s.address() as AddressInfo).port);
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((ok) => s.close(() => ok()))));
  }
}

export async function freePort(): Promise<number> {
  return (await freePorts(1))[0]!;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** True when something accepts TCP connections on host:port. */
export function portAnswers(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((ok) => {
    const s = connect({ port, host });
    s.once('connect', () => {
      s.destroy();
      ok(true);
    });
    s.once('error', () => ok(false));
  });
}

/** Parse the JSON lines of a log stream; other lines are kept as { raw }. */
function jsonLines(text: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      const v: unknown = JSON.parse(line);
      out.push(v !== null && typeof v === 'object' ? (v as Record<string, unknown>) : { raw: line });
    } catch {
      out.push({ raw: line });
    }
  }
  return out;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class PalisadeProcess {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  readonly exited: Promise<Exit>;
  #exit: Exit | null = null;

  constructor(child: ChildProcess) {
    this.child = child;
    children.add(child);
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (this.stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    this.exited = new Promise((ok) =>
      child.once('close', (code, signal) => {
        children.delete(child);
        this.#exit = { code, signal };
        ok(this.#exit);
      }),
    );
  }

  get pid(): number {
    return this.child.pid!;
  }

  get exit(): Exit | null {
    return this.#exit;
  }

  /** JSON lines on stdout (the access log). */
  accessLog(): Record<string, unknown>[] {
    return jsonLines(this.stdout).filter((l) => l.type === 'access');
  }

  /** JSON lines on stderr (the gateway log, pino). */
  logs(): Record<string, unknown>[] {
    return jsonLines(this.stderr);
  }

  /** Something to append to assertion messages. */
  get output(): string {
    return `\n--- stdout ---\n${this.stdout.slice(-4000)}\n--- stderr ---\n${this.stderr.slice(-4000)}`;
  }

  /** Resolves with the first gateway log line (stderr) matching; rejects on timeout or when the process exits first. */
  async waitForLog(match: (l: Record<string, unknown>) => boolean, timeoutMs = 15000, what = 'log line'): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.logs().find(match);
      if (hit) return hit;
      if (this.#exit) throw new Error(`palisade exited (${JSON.stringify(this.#exit)}) before the expected ${what}${this.output}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${this.output}`);
      await sleep(25);
    }
  }

  /** Resolves when host:port accepts connections; rejects on timeout or when the process exits first. */
  async waitForPort(port: number, host = '127.0.0.1', timeoutMs = 15000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.#exit) throw new Error(`palisade exited (${JSON.stringify(this.#exit)}) before ${host}:${port} answered${this.output}`);
      if (await portAnswers(port, host)) return;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${host}:${port}${this.output}`);
      await sleep(50);
    }
  }

  signal(sig: NodeJS.Signals): void {
    if (this.#exit === null) this.child.kill(sig);
  }

  /** Resolves with the exit; rejects (after SIGKILL) when it takes longer than timeoutMs. */
  async waitForExit(timeoutMs = 15000): Promise<Exit> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, fail) => {
      timer = setTimeout(() => {
        this.child.kill('SIGKILL');
        fail(new Error(`palisade did not exit within ${timeoutMs} ms${this.output}`));
      }, timeoutMs);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Send `sig` (SIGTERM by default) and resolve with the exit code (null when killed by a signal). */
  async stop(sig: NodeJS.Signals = 'SIGTERM', timeoutMs = 15000): Promise<number | null> {
    this.signal(sig);
    return (await this.waitForExit(timeoutMs)).code;
  }

  /** For cleanup in `after` hooks: SIGKILL, wait for the exit. */
  async kill(): Promise<void> {
    if (this.#exit) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }
}

export interface SpawnOptions {
  env?: Record<string, string>;
  cwd?: string;
  /** Node binary (default: the Node 24 running the tests). */
  node?: string;
  /** Own process group: lets a test signal the whole group, like Ctrl-C in a terminal. */
  detached?: boolean;
}

/** `node bin/palisade.js …args` (or any script with opts.script). */
export function spawnPalisade(args: string[], opts: SpawnOptions & { script?: string } = {}): PalisadeProcess {
  const child = spawn(opts.node ?? NODE, [opts.script ?? BIN, ...args], {
    cwd: opts.cwd ?? ROOT,
    env: cleanEnv(opts.env),
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: opts.detached ?? false,
  });
  return new PalisadeProcess(child);
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Run a short command to completion (help, validate, failing starts). */
export async function runPalisade(args: string[], opts: SpawnOptions & { timeoutMs?: number } = {}): Promise<RunResult> {
  const p = spawnPalisade(args, opts);
  const exit = await p.waitForExit(opts.timeoutMs ?? 20000);
  return { ...exit, stdout: p.stdout, stderr: p.stderr };
}

/** A temporary directory with helpers to write (in place or by atomic rename) files into it. */
export class TempDir {
  readonly path = mkdtempSync(join(tmpdir(), 'palisade-test-'));

  file(name: string): string {
    return join(this.path, name);
  }

  write(name: string, text: string): string {
    writeFileSync(this.file(name), text);
    return this.file(name);
  }

  /** Replace the file the way editors do: write a sibling, rename over. */
  replace(name: string, text: string): string {
    const tmp = this.file(`.${name}.tmp-${process.pid}`);
    writeFileSync(tmp, text);
    renameSync(tmp, this.file(name));
    return this.file(name);
  }

  remove(): void {
    rmSync(this.path, { recursive: true, force: true });
  }
}

export { request, type RequestOptions, type Response } from './http.ts';

/** Retry `fn` until it returns true (or resolves without throwing to true); throws the last state on timeout. */
export async function eventually(fn: () => Promise<boolean> | boolean, timeoutMs = 10000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = null;
  for (;;) {
    try {
      if (await fn()) return;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await sleep(50);
  }
}

/**
 * Linux: which process, among `pids`, owns the client end of a TCP connection
 * from localPort to peerPort (e.g. a gateway→upstream connection: the source
 * port the upstream saw, and the upstream's port). Reads /proc/net/tcp
 * (ports → socket inode) and /proc/PID/fd (inode → process). null when not found.
 */
export function pidOfConnection(localPort: number, peerPort: number, pids: number[]): number | null {
  let inode: string | null = null;
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 10) continue;
      const port = parseInt(cols[1]!.split(':').at(-1)!, 16);
      const peer = parseInt(cols[2]!.split(':').at(-1)!, 16);
      if (port === localPort && peer === peerPort && cols[9] !== '0') {
        inode = cols[9]!;
        break;
      }
    }
    if (inode) break;
  }
  if (!inode) return null;
  const target = `socket:[${inode}]`;
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`) === target) return pid;
      } catch {}
    }
  }
  return null;
}

export type { SeenRequest, TestUpstream as Upstream } from './gateway.ts';

/**
 * A real upstream on 127.0.0.1:0 (the gateway harness's, with this handler):
 * GET /slow/<ms>… (or /<prefix>/slow/<ms>…) answers after <ms> milliseconds;
 * everything else answers at once with a JSON echo of { method, url, remotePort }.
 */
export function startUpstream(): Promise<TestUpstream> {
  return startTestUpstream((req, res) => {
    const delay = /^\/[^/]+\/slow\/(\d+)/.exec(req.url!)?.[1] ?? /^\/slow\/(\d+)/.exec(req.url!)?.[1];
    const answer = () => {
      const text = JSON.stringify({ method: req.method, url: req.url, remotePort: req.socket.remotePort });
      if (!res.destroyed) res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
    };
    if (!delay) return answer();
    const t = setTimeout(answer, Number(delay));
    res.once('close', () => clearTimeout(t));
  });
}
