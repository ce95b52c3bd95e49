/**
 * Child processes of the bench: each one is spawned in its own process group
 * (detached) so that it and anything it forks (nginx workers, cluster workers)
 * can be stopped together by the group id. Every child is tracked and killed
 * when the bench exits — normally, on Ctrl-C/SIGTERM, or on a crash.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, readFileSync, existsSync } from 'node:fs';

export interface Child {
  name: string;
  proc: ChildProcess;
  pid: number;
  logFile: string | null;
  /** Resolves with the exit code (or the signal name) when the process has exited. */
  exited: Promise<number | string>;
  exitInfo: number | string | null;
}

const live = new Set<Child>();
let cleanupInstalled = false;
const cleanupHooks: Array<() => void> = [];

function killGroup(child: Child, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.proc.kill(signal);
    } catch {
      /* already gone */
    }
  }
}

/** Synchronous last-resort cleanup: SIGKILL every live child group, run hooks. */
export function killAllNow(): void {
  for (const child of live) killGroup(child, 'SIGKILL');
  live.clear();
  for (const hook of cleanupHooks.splice(0)) {
    try {
      hook();
    } catch {
      /* best effort */
    }
  }
}

/** Register a synchronous hook run at exit (e.g. removing the temp dir). */
export function onCleanup(hook: () => void): void {
  cleanupHooks.push(hook);
}

export function installCleanup(): void {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  process.on('exit', killAllNow);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      process.stderr.write(`\n[bench] ${sig}: stopping children and cleaning up\n`);
      killAllNow();
      process.exit(sig === 'SIGINT' ? 130 : 143);
    });
  }
  process.on('uncaughtException', (err) => {
    process.stderr.write(`[bench] fatal: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    killAllNow();
    process.exit(1);
  });
  process.on('unhandledRejection', (err) => {
    process.stderr.write(`[bench] fatal (unhandled rejection): ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    killAllNow();
    process.exit(1);
  });
}

export interface StartOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** stdout+stderr go to this file (appended); null = ignored. */
  logFile?: string | null;
  /** Capture stdout into a string instead (for short-lived tools such as wrk). */
  captureStdout?: boolean;
}

export function start(name: string, cmd: string, args: string[], opts: StartOptions = {}): Child & { stdout: () => string } {
  installCleanup();
  const logFile = opts.logFile ?? null;
  const fd = logFile ? openSync(logFile, 'a') : null;
  const proc = spawn(cmd, args, {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    detached: true,
    stdio: ['ignore', opts.captureStdout ? 'pipe' : (fd ?? 'ignore'), fd ?? 'ignore'],
  });
  if (fd !== null) closeSync(fd);
  let out = '';
  if (opts.captureStdout && proc.stdout) {
    proc.stdout.setEncoding('utf8');
    proc.stdout.on('data', (d: string) => {
      out += d;
    });
  }
  const child: Child & { stdout: () => string } = {
    name,
    proc,
    pid: proc.pid ?? -1,
    logFile,
    exitInfo: null,
    exited: Promise.resolve(0),
    stdout: () => out,
  };
  child.exited = new Promise((resolve) => {
    proc.on('error', (err) => {
      child.exitInfo = `spawn error: ${err.message}`;
      live.delete(child);
      resolve(child.exitInfo);
    });
    // With a captured stdout, wait for 'close' so that all output has been read.
    proc.on(opts.captureStdout ? 'close' : 'exit', (code: number | null, signal: NodeJS.Signals | null) => {
      child.exitInfo = code ?? signal ?? 'unknown';
      live.delete(child);
      resolve(child.exitInfo);
    });
  });
  if (proc.pid !== undefined) live.add(child);
  return child;
}

/** SIGTERM the child's process group, then SIGKILL it if it has not exited within graceMs. */
export async function stop(child: Child, graceMs = 5000, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitInfo !== null) {
    // The leader is gone; make sure nothing it forked is left behind.
    killGroup(child, 'SIGKILL');
    return;
  }
  killGroup(child, signal);
  const deadline = Date.now() + graceMs;
  const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), graceMs).unref());
  if ((await Promise.race([child.exited, timer])) === 'timeout') {
    killGroup(child, 'SIGKILL');
    await child.exited;
  }
  // Give the rest of the group (workers that outlive their primary, e.g. while
  // writing a CPU profile) the remaining grace time, then kill leftovers.
  while (groupAlive(child.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  killGroup(child, 'SIGKILL');
}

/** Whether any process of the group still exists. */
export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * What a child's log says went wrong, for error messages: the first line naming
 * an error (e.g. "TypeError: …" of a crash) and where it was thrown, else the last lines.
 */
export function logTail(child: Child, lines = 6): string {
  if (!child.logFile || !existsSync(child.logFile)) return '';
  const all = readFileSync(child.logFile, 'utf8').trimEnd().split('\n');
  const i = all.findIndex((l) => /^\s*(\w*Error|Error \[\w+\])(:|\s)/.test(l));
  if (i >= 0) return all.slice(i, i + 2).join('\n');
  return all.slice(-lines).join('\n');
}

/** Run a command to completion and return its stdout (stderr ignored unless it fails). */
export async function runToEnd(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<{ code: number | string; stdout: string; stderr: string }> {
  installCleanup();
  return new Promise((resolve) => {
    const proc = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    proc.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    proc.on('error', (err) => resolve({ code: `spawn error: ${err.message}`, stdout, stderr }));
    proc.on('close', (code, signal) => resolve({ code: code ?? signal ?? 'unknown', stdout, stderr }));
  });
}
