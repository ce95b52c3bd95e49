/** Reading a V8 .cpuprofile (the JSON written by node --cpu-prof): where the self time goes. */
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  hitCount?: number;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface SelfTime {
  name: string;
  location: string;
  /** Milliseconds of self time (samples attributed to this function itself, not its callees). */
  ms: number;
  percent: number;
}

export interface ProfileSummary {
  file: string;
  /** Samples counted (inside the window when one was given). */
  samples: number;
  /** All samples in the file. */
  totalSamples: number;
  /** Whether only the samples inside the requested time window were counted. */
  windowed: boolean;
  durationMs: number;
  /** Share of samples outside (idle) — the process waiting for I/O. */
  idlePercent: number;
  functions: SelfTime[];
  /** Self time grouped by where the code lives: node:internal/…, a package, a project folder, or V8 ((garbage collector), (program)). */
  groups: SelfTime[];
}

function shortUrl(url: string, root: string): string {
  if (!url) return '';
  if (url.startsWith('file://')) {
    try {
      const rel = relative(root, fileURLToPath(url));
      return rel.startsWith('..') ? fileURLToPath(url) : rel;
    } catch {
      return url;
    }
  }
  return url;
}

/** The bucket a function's self time is added to in the "by area" view. */
export function groupOf(url: string, functionName: string, root: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native / V8 builtins)';
  if (url.startsWith('node:')) {
    const parts = url.slice(5).split('/');
    return `node:${parts[0] === 'internal' && parts.length > 2 ? `${parts[0]}/${parts[1]}` : parts.join('/').replace(/\.js$/, '')}`;
  }
  const u = shortUrl(url, root);
  const nm = u.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = u.slice(nm + 'node_modules/'.length).split('/');
    return `pkg:${rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]}`;
  }
  // Project code: its folder (src/core, src/plugins/cors, bench/peers, …).
  const slash = u.lastIndexOf('/');
  return slash > 0 ? u.slice(0, slash) : u;
}

/**
 * Self time per function and per area. With windowUs ([start, end] in the
 * profile's clock: CLOCK_MONOTONIC µs on Linux, as process.hrtime), only samples
 * taken inside it count: startup and warm-up are left out. If no sample falls
 * inside (a clock mismatch), the whole profile is used and windowed is false.
 */
export function summarizeProfile(file: string, root: string, top = 25, windowUs: [number, number] | null = null): ProfileSummary {
  const prof = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  for (const n of prof.nodes) byId.set(n.id, n);

  // Time per sample: each sample's duration is the delta to the next sample (the last one gets the average).
  const samples = prof.samples ?? [];
  const deltas = prof.timeDeltas ?? [];
  const durationUs = prof.endTime - prof.startTime;
  const selfUs = new Map<number, number>();
  let counted = 0;
  let windowed = false;
  if (samples.length > 0) {
    const avg = durationUs / samples.length;
    const count = (w: [number, number] | null): void => {
      selfUs.clear();
      counted = 0;
      let t = prof.startTime;
      for (let i = 0; i < samples.length; i++) {
        t += deltas[i] ?? 0;
        if (w && (t < w[0] || t > w[1])) continue;
        const d = i + 1 < deltas.length ? Math.max(0, deltas[i + 1]!) : avg;
        selfUs.set(samples[i]!, (selfUs.get(samples[i]!) ?? 0) + d);
        counted++;
      }
    };
    count(windowUs);
    windowed = windowUs !== null && counted > 0;
    if (!windowed) count(null);
  } else {
    // Old format: hit counts only.
    const total = prof.nodes.reduce((a, n) => a + (n.hitCount ?? 0), 0) || 1;
    for (const n of prof.nodes) selfUs.set(n.id, ((n.hitCount ?? 0) / total) * durationUs);
  }

  const fn = new Map<string, SelfTime>();
  const grp = new Map<string, SelfTime>();
  let totalUs = 0;
  let idleUs = 0;
  for (const [id, us] of selfUs) {
    const cf = byId.get(id)?.callFrame;
    if (!cf) continue;
    totalUs += us;
    if (cf.functionName === '(idle)') idleUs += us;
    const name = cf.functionName || '(anonymous)';
    const loc = cf.url ? `${shortUrl(cf.url, root)}:${cf.lineNumber + 1}` : '';
    const key = `${name}\u0000${loc}`;
    const f = fn.get(key) ?? { name, location: loc, ms: 0, percent: 0 };
    f.ms += us / 1000;
    fn.set(key, f);
    const g = groupOf(cf.url, cf.functionName, root);
    const e = grp.get(g) ?? { name: g, location: '', ms: 0, percent: 0 };
    e.ms += us / 1000;
    grp.set(g, e);
  }
  const finish = (m: Map<string, SelfTime>, n: number): SelfTime[] =>
    [...m.values()]
      .map((x) => ({ ...x, percent: totalUs > 0 ? (x.ms * 100_000) / totalUs : 0 }))
      .sort((a, b) => b.ms - a.ms)
      .slice(0, n);
  return {
    file,
    samples: samples.length ? counted : prof.nodes.reduce((a, n) => a + (n.hitCount ?? 0), 0),
    totalSamples: samples.length,
    windowed,
    durationMs: (windowed ? [...selfUs.values()].reduce((a, b) => a + b, 0) : durationUs) / 1000,
    idlePercent: totalUs > 0 ? (idleUs * 100) / totalUs : 0,
    functions: finish(fn, top),
    groups: finish(grp, top),
  };
}

export function formatSelfTimes(title: string, rows: SelfTime[]): string {
  const w = Math.max(8, ...rows.map((r) => r.name.length));
  const lines = [title, `${'self %'.padStart(7)}  ${'self ms'.padStart(9)}  ${'function'.padEnd(w)}  location`];
  for (const r of rows) lines.push(`${r.percent.toFixed(1).padStart(7)}  ${r.ms.toFixed(0).padStart(9)}  ${r.name.padEnd(w)}  ${r.location}`.trimEnd());
  return lines.join('\n');
}
