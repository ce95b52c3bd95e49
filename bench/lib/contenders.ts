/** Everything the bench can put in front of the shared upstream. */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { start, type Child } from './procs.ts';
import { freePort } from './net.ts';
import { pinned, CONTENDER_CPU, LOAD_CPU } from './pin.ts';
import { proxyConf, startNginx } from './nginx.ts';
import { peerEntry, type NodeRuntime } from './node-runtime.ts';
import { SCENARIO_DESCRIPTIONS, SCENARIO_REQUESTS, writePalisadeConfig, type PalisadeScenario, type ScenarioRequest } from './palisade.ts';
import { CREDENTIALS } from './session.ts';
import { PALISADE_BIN, ROOT_DIR } from './paths.ts';

/** A contender that cannot run here: reported as skipped with the reason. */
export class Skip extends Error {}

export interface Ctx {
  tmp: string;
  upstreamPort: number;
  node: NodeRuntime;
  /** Extra Node flags for Node contenders (profile.ts uses --cpu-prof). */
  nodeFlags: string[];
  /** A command the Node contenders run under (instructions.ts: valgrind); empty: none. */
  wrapper?: string[];
}

/** The Node binary with these arguments, under ctx.wrapper when there is one. */
function nodeCommand(ctx: Ctx, args: string[]): [string, string[]] {
  const w = ctx.wrapper ?? [];
  return w.length === 0 ? [ctx.node.path, [...ctx.nodeFlags, ...args]] : [w[0]!, [...w.slice(1), ctx.node.path, ...ctx.nodeFlags, ...args]];
}

export interface Running {
  port: number;
  /** null for the direct baseline (nothing between wrk and the upstream). */
  child: Child | null;
}

export interface Contender {
  /** Filter key for --only: "nginx", "palisade:plugins", … (--only palisade selects every palisade:*). */
  key: string;
  name: string;
  scenario: string;
  /** CPU list it is pinned to, or null when it runs unpinned. */
  cpus: string | null;
  /** Runs on the --node binary. */
  usesNode: boolean;
  /** Not a proxy: a reference row, left out of the ratios. */
  reference?: boolean;
  /** The request to load it with when it is not the shared GET / (e.g. the oas-validation scenario's JSON POST). */
  request?: ScenarioRequest;
  description: string;
  start(ctx: Ctx): Promise<Running>;
}

/** A contender key as a file name part. */
export const slug = (key: string): string => key.replace(/[^a-z0-9-]+/gi, '-');

function logFile(ctx: Ctx, key: string): string {
  return join(ctx.tmp, `${slug(key)}.log`);
}

/** A package's `engines.node` lower bound (">=22.19.0" → [22, 19, 0]), if it declares one. */
function minNode(pkg: string): [string, number[]] | null {
  try {
    const json = JSON.parse(readFileSync(join(ROOT_DIR, 'node_modules', pkg, 'package.json'), 'utf8')) as { version?: string; engines?: { node?: string } };
    const m = /^>=\s*(\d+)(?:\.(\d+))?(?:\.(\d+))?$/.exec(json.engines?.node?.trim() ?? '');
    return m ? [`${pkg} ${json.version} needs Node ${json.engines!.node}`, [Number(m[1]), Number(m[2] ?? 0), Number(m[3] ?? 0)]] : null;
  } catch {
    return null;
  }
}

function olderThan(version: string, min: number[]): boolean {
  const v = version.replace(/^v/, '').split('.').map(Number);
  for (let i = 0; i < 3; i++) if ((v[i] ?? 0) !== min[i]) return (v[i] ?? 0) < min[i]!;
  return false;
}

function nodePeer(key: string, peer: string, description: string, needs: string | null = null, reference = false): Contender {
  return {
    key,
    name: key,
    scenario: reference ? 'no proxy' : 'proxy',
    reference,
    cpus: CONTENDER_CPU,
    usesNode: true,
    description,
    async start(ctx) {
      const req = needs ? minNode(needs) : null;
      if (req && olderThan(ctx.node.version, req[1])) throw new Skip(`${req[0]}; this is Node ${ctx.node.version}`);
      const port = await freePort();
      const entry = peerEntry(ctx.node, peer);
      const [cmd, args] = pinned(this.cpus, ...nodeCommand(ctx, [entry, '--port', String(port), '--upstream', `http://127.0.0.1:${ctx.upstreamPort}`]));
      const child = start(key, cmd, args, { cwd: ROOT_DIR, logFile: logFile(ctx, key), env: { ...process.env, NODE_ENV: 'production' } });
      return { port, child };
    },
  };
}

function palisade(scenario: PalisadeScenario, workers: number): Contender {
  const label = workers === 1 ? scenario : `${scenario}-${workers}w`;
  return {
    key: `palisade:${label}`,
    name: 'palisade',
    scenario: label,
    cpus: workers === 1 ? CONTENDER_CPU : null,
    usesNode: true,
    request: SCENARIO_REQUESTS[scenario],
    description:
      workers === 1
        ? `Palisade, --workers 1, ${SCENARIO_DESCRIPTIONS[scenario]}`
        : `Palisade, --workers ${workers}, UNPINNED (shares both cores with wrk and the upstream)`,
    async start(ctx) {
      if (!existsSync(PALISADE_BIN)) throw new Skip('bin/palisade.js not found (the CLI is not there yet)');
      const port = await freePort();
      const dir = join(ctx.tmp, `palisade-${label}`);
      mkdirSync(dir, { recursive: true });
      const config = writePalisadeConfig(dir, ctx.upstreamPort, scenario, CREDENTIALS);
      const [cmd, args] = pinned(this.cpus, ...nodeCommand(ctx, [
        PALISADE_BIN,
        'start',
        '--config',
        config,
        '--listen',
        `127.0.0.1:${port}`,
        '--tls-listen',
        'off',
        '--admin-listen',
        'off',
        '--workers',
        String(workers),
      ]));
      const child = start(this.key, cmd, args, { cwd: ROOT_DIR, logFile: logFile(ctx, this.key), env: { ...process.env, NODE_ENV: 'production' } });
      return { port, child };
    },
  };
}

export const CONTENDERS: Contender[] = [
  {
    key: 'direct',
    name: 'direct',
    scenario: 'no proxy',
    cpus: LOAD_CPU,
    usesNode: false,
    reference: true,
    description: 'wrk straight to the upstream: the ceiling of the load side (wrk + upstream share one core)',
    async start(ctx) {
      return { port: ctx.upstreamPort, child: null };
    },
  },
  {
    key: 'nginx',
    name: 'nginx',
    scenario: 'proxy',
    cpus: CONTENDER_CPU,
    usesNode: false,
    description: 'nginx reverse proxy, 1 worker, upstream keepalive 64, access log to a file',
    async start(ctx) {
      const port = await freePort();
      const prefix = join(ctx.tmp, 'nginx-proxy');
      mkdirSync(prefix, { recursive: true });
      const child = startNginx('nginx-proxy', prefix, proxyConf(prefix, port, ctx.upstreamPort), this.cpus);
      return { port, child };
    },
  },
  nodePeer('node-hello', 'node-hello', 'bare node:http server answering "ok" itself: the ceiling of any Node server here (not a proxy)', null, true),
  nodePeer('minimal-undici', 'minimal-undici', 'node:http + undici Pool, streaming, hop-by-hop headers stripped (the floor)', 'undici'),
  nodePeer('fastify-proxy', 'fastify-proxy', '@fastify/http-proxy, defaults'),
  nodePeer('http-proxy', 'http-proxy', 'http-proxy (node-http-proxy) with a keep-alive agent'),
  palisade('plain', 1),
  palisade('plain-nolog', 1),
  palisade('plugins', 1),
  palisade('key-auth', 1),
  palisade('jwt-hs256', 1),
  palisade('jwt-rs256', 1),
  palisade('jwt-es256', 1),
  palisade('jwt-es256-nocache', 1),
  palisade('key-auth+rl-local', 1),
  palisade('key-auth+rl-redis', 1),
  palisade('plain-post', 1),
  palisade('oas-validation', 1),
  palisade('observability', 1),
  palisade('prometheus', 1),
  palisade('opentelemetry', 1),
  palisade('http-log', 1),
  palisade('plain', 2),
];

/** Keys of the Node contenders pinned to one core: what profile.ts and instructions.ts can run. */
export const PINNED_NODE: readonly string[] = CONTENDERS.filter((c) => c.usesNode && c.cpus !== null).map((c) => c.key);

/** --only a,b: exact keys, or a name selecting all its scenarios (palisade → palisade:*). */

export function selectContenders(only: string | undefined): Contender[] {
  if (!only) return CONTENDERS;
  const wanted = only.split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = wanted.filter((w) => !CONTENDERS.some((c) => c.key === w || c.name === w));
  if (unknown.length) {
    throw new Error(`unknown contender(s) in --only: ${unknown.join(', ')}; known: ${CONTENDERS.map((c) => c.key).join(', ')}`);
  }
  return CONTENDERS.filter((c) => wanted.includes(c.key) || wanted.includes(c.name));
}
