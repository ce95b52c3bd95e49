/**
 * A private redis-server for one test file: its own free port on 127.0.0.1,
 * nothing on disk, a child process of the test (killed when the test process
 * exits). Tests stop and start it to play outages and recoveries; the shared
 * Redis on 6379 is never touched.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, freePorts, portAnswers, sleep } from './process.ts';

const TLS = fileURLToPath(new URL('../fixtures/tls/', import.meta.url));

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

export interface RedisOptions {
  /** Also listen with TLS (test CA: test/fixtures/tls/localhost.crt, SAN localhost and 127.0.0.1) on `tlsPort`. */
  tls?: boolean;
  /** Run as a one-node Redis Cluster holding every slot. */
  cluster?: boolean;
  /** Run as a Sentinel monitoring the master on this port as 'mymaster'. */
  sentinelOf?: number;
}

export interface PrivateRedis {
  readonly port: number;
  readonly url: string;
  /** The TLS port (option tls), else 0. */
  readonly tlsPort: number;
  /** True while the server runs. */
  readonly running: boolean;
  /** (Re)start the server on the same port; resolves once it answers PING. */
  start(): Promise<void>;
  /** Stop it (SIGKILL by default: an abrupt outage) and wait for the exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** One command over RESP; resolves with the raw reply text. */
  command(...args: (string | number)[]): Promise<string>;
}

/** One RESP command on a fresh connection. */
export function redisCommand(port: number, ...args: (string | number)[]): Promise<string> {
  return new Promise((ok, fail) => {
    const s = connect({ port, host: '127.0.0.1' });
    let reply = '';
    s.setEncoding('utf8');
    s.once('error', fail);
    s.on('data', (d: string) => {
      reply += d;
      if (reply.endsWith('\r\n')) {
        s.end();
        ok(reply);
      }
    });
    s.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(String(a))}\r\n${a}\r\n`).join('')}`);
  });
}

export async function startRedis(options: RedisOptions = {}): Promise<PrivateRedis> {
  const [port, tlsPort] = options.tls ? ((await freePorts(2)) as [number, number]) : [await freePort(), 0];
  const dir = mkdtempSync(join(tmpdir(), 'palisade-redis-'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--dir', dir];
  if (options.tls) {
    args.push('--tls-port', String(tlsPort), '--tls-cert-file', `${TLS}localhost.crt`, '--tls-key-file', `${TLS}localhost.key`, '--tls-ca-cert-file', `${TLS}ca.crt`, '--tls-auth-clients', 'no');
  }
  if (options.cluster) args.push('--cluster-enabled', 'yes', '--cluster-config-file', join(dir, 'nodes.conf'), '--cluster-announce-ip', '127.0.0.1');
  let command = ['redis-server', ...args];
  if (options.sentinelOf !== undefined) {
    // A Sentinel rewrites its config file: give it one of its own.
    const conf = join(dir, 'sentinel.conf');
    writeFileSync(conf, `port ${port}\nbind 127.0.0.1\ndir ${dir}\nsentinel monitor mymaster 127.0.0.1 ${options.sentinelOf} 1\n`);
    command = ['redis-server', conf, '--sentinel'];
  }
  let child: ChildProcess | null = null;
  let output = '';
  const r: PrivateRedis = {
    port,
    tlsPort,
    url: `redis://127.0.0.1:${port}`,
    get running() {
      return child !== null && child.exitCode === null && child.signalCode === null;
    },
    async start() {
      if (r.running) return;
      output = '';
      const c = spawn(command[0]!, command.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
      child = c;
      children.add(c);
      c.stdout!.setEncoding('utf8').on('data', (d: string) => (output += d));
      c.stderr!.setEncoding('utf8').on('data', (d: string) => (output += d));
      const spawned = new Promise<void>((ok, fail) => {
        c.once('spawn', () => ok());
        c.once('error', (err) => fail(new Error(`cannot start redis-server (is it installed?): ${err.message}`)));
      });
      c.once('exit', () => children.delete(c));
      await spawned;
      const deadline = Date.now() + 10_000;
      for (;;) {
        if (c.exitCode !== null) throw new Error(`redis-server exited (${c.exitCode}):\n${output}`);
        if ((await portAnswers(port)) && (await redisCommand(port, 'PING').catch(() => '')).startsWith('+PONG')) break;
        if (Date.now() > deadline) throw new Error(`redis-server did not answer on ${port}:\n${output}`);
        await sleep(20);
      }
      if (options.cluster) {
        await redisCommand(port, 'CLUSTER', 'ADDSLOTSRANGE', 0, 16383).catch(() => '');
        while (!(await redisCommand(port, 'CLUSTER', 'INFO')).includes('cluster_state:ok')) {
          if (Date.now() > deadline) throw new Error(`redis cluster on ${port} did not get ready:\n${output}`);
          await sleep(50);
        }
      }
    },
    async stop(signal: NodeJS.Signals = 'SIGKILL') {
      const c = child;
      if (c === null || !r.running) return;
      const exited = new Promise<void>((ok) => c.once('exit', () => ok()));
      c.kill(signal);
      await exited;
    },
    command: (...args) => redisCommand(port, ...args),
  };
  await r.start();
  return r;
}
