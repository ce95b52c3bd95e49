/** What run.ts, profile.ts and instructions.ts share: temp dir, the upstream, one measured load, the CLI wrapper. */
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onCleanup, stop, logTail, killAllNow, type Child, installCleanup } from './procs.ts';
import { freePort, waitForHttp } from './net.ts';
import { startNginx, upstreamConf } from './nginx.ts';
import { LOAD_CPU } from './pin.ts';
import { runWrk, type WrkRequest, type WrkResult } from './wrk.ts';
import { makeCredentials } from './credentials.ts';
import { readCpuTimes, busyPercent, groupCpuSeconds } from './cpu.ts';

export function log(msg: string): void {
  process.stderr.write(`[bench] ${msg}\n`);
}

/**
 * Requests carry an Origin so that the cors plugin has work to do, and the
 * credentials of the auth scenarios; the same request goes to every contender.
 */
export const CREDENTIALS = makeCredentials();
export const REQUEST_HEADERS: Record<string, string> = { Origin: 'http://bench.example', ...CREDENTIALS.headers };

/** Extra Node flags for the Node contenders, from BENCH_NODE_FLAGS (e.g. --perf-basic-prof). */
export const benchNodeFlags = (): string[] => (process.env.BENCH_NODE_FLAGS ?? '').split(/\s+/).filter(Boolean);

/** A whole-number command-line option, at least `min`. */
export function intOption(name: string, v: string, min: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min} (got ${v})`);
  return n;
}

export function makeTmp(keep: boolean): string {
  installCleanup();
  const tmp = mkdtempSync(join(tmpdir(), 'palisade-bench-'));
  if (!keep) onCleanup(() => rmSync(tmp, { recursive: true, force: true }));
  return tmp;
}

export interface Upstream {
  port: number;
  child: Child;
}

export async function startUpstream(tmp: string): Promise<Upstream> {
  const port = await freePort();
  const prefix = join(tmp, 'upstream');
  mkdirSync(prefix, { recursive: true });
  const child = startNginx('upstream', prefix, upstreamConf(prefix, port), LOAD_CPU);
  const ready = await waitForHttp(port, child, 10_000, REQUEST_HEADERS);
  if (!ready.ok) {
    await stop(child);
    throw new Error(`upstream nginx did not start: ${ready.reason}\n${logTail(child)}`);
  }
  return { port, child };
}

export interface Measurement {
  wrk: WrkResult;
  /** Busy % per CPU during the measured run (cpu0 = contender, cpu1 = wrk + upstream). */
  cpu: Record<string, number>;
  /** CPU used by the contender's processes during the measured run, in % of one core (null without a process). */
  procCpu: number | null;
  /** CLOCK_MONOTONIC microseconds at the start and end of the measured run (the clock V8 profiles use on Linux). */
  windowUs: [number, number];
}

export async function measure(port: number, seconds: number, warmupSeconds: number, connections: number, label: string, pgid: number | null, request?: WrkRequest): Promise<Measurement> {
  if (warmupSeconds > 0) {
    log(`${label}: warm-up ${warmupSeconds}s`);
    await runWrk({ port, seconds: warmupSeconds, connections, headers: REQUEST_HEADERS, request });
  }
  log(`${label}: measuring ${seconds}s with ${connections} connections`);
  const before = readCpuTimes();
  const procBefore = pgid === null ? 0 : groupCpuSeconds(pgid);
  const t0 = performance.now();
  const w0 = Number(process.hrtime.bigint() / 1000n);
  const wrk = await runWrk({ port, seconds, connections, headers: REQUEST_HEADERS, request });
  const w1 = Number(process.hrtime.bigint() / 1000n);
  const procAfter = pgid === null ? 0 : groupCpuSeconds(pgid);
  const wall = (performance.now() - t0) / 1000;
  const cpu = busyPercent(before, readCpuTimes());
  const procCpu = pgid === null ? null : Math.round(((procAfter - procBefore) / wall) * 1000) / 10;
  return { wrk, cpu, procCpu, windowUs: [w0, w1] };
}

/** Busy % per CPU over a quiet moment: other work on the machine skews every number. */
export async function backgroundLoad(ms = 1000): Promise<Record<string, number>> {
  const before = readCpuTimes();
  await new Promise((r) => setTimeout(r, ms));
  return busyPercent(before, readCpuTimes());
}

/** Run a bench entry point: its child processes are stopped at the end; an error is printed and exits 1. */
export function runCli(fn: () => Promise<void>): void {
  fn().then(
    () => killAllNow(),
    (err: unknown) => {
      process.stderr.write(`[bench] error: ${err instanceof Error ? err.message : String(err)}\n`);
      killAllNow();
      process.exit(1);
    },
  );
}
