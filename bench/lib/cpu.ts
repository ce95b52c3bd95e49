import { readFileSync, readdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

/** Jiffies per CPU from /proc/stat: [busy, total]. Empty on systems without /proc. */
export type CpuTimes = Map<string, [number, number]>;

export function readCpuTimes(): CpuTimes {
  const out: CpuTimes = new Map();
  let text: string;
  try {
    text = readFileSync('/proc/stat', 'utf8');
  } catch {
    return out;
  }
  for (const line of text.split('\n')) {
    const m = /^(cpu\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const f = m[2]!.trim().split(/\s+/).map(Number);
    // user nice system idle iowait irq softirq steal (guest fields are already in user/nice)
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
    const idle = (f[3] ?? 0) + (f[4] ?? 0);
    out.set(m[1]!, [total - idle, total]);
  }
  return out;
}

/** Busy percentage per CPU between two readings, e.g. { cpu0: 99.5, cpu1: 71.2 }. */
export function busyPercent(before: CpuTimes, after: CpuTimes): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [cpu, [busyA, totalA]] of after) {
    const b = before.get(cpu);
    if (!b) continue;
    const dt = totalA - b[1];
    out[cpu] = dt > 0 ? Math.round(((busyA - b[0]) / dt) * 1000) / 10 : 0;
  }
  return out;
}

let clkTck = 0;
function ticksPerSecond(): number {
  if (clkTck === 0) {
    clkTck = 100; // USER_HZ on every mainstream Linux build
    try {
      const v = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
      if (v > 0) clkTck = v;
    } catch {
      /* keep 100 */
    }
  }
  return clkTck;
}

/** CPU seconds (user + system) used so far by the live processes of a process group. */
export function groupCpuSeconds(pgid: number): number {
  let ticks = 0;
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return Number.NaN;
  }
  for (const e of entries) {
    if (e.charCodeAt(0) < 48 || e.charCodeAt(0) > 57) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${e}/stat`, 'utf8');
    } catch {
      continue;
    }
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(rest[2]) !== pgid) continue;
    ticks += Number(rest[11]) + Number(rest[12]);
  }
  return ticks / ticksPerSecond();
}
