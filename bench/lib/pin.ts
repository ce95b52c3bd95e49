/** CPU pinning with taskset, when the machine allows it. */
import { availableParallelism } from 'node:os';
import { execFileSync } from 'node:child_process';

let tasksetOk: boolean | null = null;

export function canPin(): boolean {
  if (tasksetOk === null) {
    try {
      execFileSync('taskset', ['-c', '0', 'true'], { stdio: 'ignore' });
      tasksetOk = availableParallelism() >= 2;
    } catch {
      tasksetOk = false;
    }
  }
  return tasksetOk;
}

let niceness = 0;

/** Scheduling priority for everything the bench starts (--nice; negative needs root). */
export function setNiceness(n: number): void {
  niceness = n;
}

/**
 * [cmd, args] running `cmd args` on the given CPU list ("0", "1", "0,1"), or
 * unpinned when cpus is null or pinning is unavailable; under `nice` when set.
 */
export function pinned(cpus: string | null, cmd: string, args: string[]): [string, string[]] {
  const [c, a]: [string, string[]] = cpus === null || !canPin() ? [cmd, args] : ['taskset', ['-c', cpus, cmd, ...args]];
  return niceness === 0 ? [c, a] : ['nice', ['-n', String(niceness), c, ...a]];
}

/** The CPU the contender runs on and the CPU for wrk + upstream. */
export const CONTENDER_CPU = '0';
export const LOAD_CPU = '1';
