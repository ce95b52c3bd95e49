/**
 * The Node binary the Node contenders run on (--node). Node 24 runs the peers'
 * .ts files directly; for a Node without type stripping (e.g. the system Node 20)
 * the peers are stripped of their types once, into bench/out/node-compat/*.mjs
 * (still inside the repo, so their imports resolve from node_modules).
 */
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { stripTypeScriptTypes } from 'node:module';
import { runToEnd } from './procs.ts';
import { BENCH_DIR, OUT_DIR } from './paths.ts';

export interface NodeRuntime {
  path: string;
  version: string;
  /** process.features.typescript of that binary: 'strip', 'transform' or '' (none). */
  typescript: string;
}

export async function probeNode(path: string): Promise<NodeRuntime> {
  const r = await runToEnd(path, ['-e', 'process.stdout.write(process.version + " " + String(process.features.typescript || ""))']);
  if (r.code !== 0) throw new Error(`cannot run ${path}: ${String(r.code)} ${r.stderr.trim().slice(0, 300)}`);
  const [version = '?', typescript = ''] = r.stdout.trim().split(' ');
  return { path, version, typescript };
}

/** The file to run for a peer under this runtime: the .ts itself, or a stripped .mjs copy. */
export function peerEntry(rt: NodeRuntime, peer: string): string {
  const src = join(BENCH_DIR, 'peers', `${peer}.ts`);
  if (rt.typescript) return src;
  const dir = join(OUT_DIR, 'node-compat', 'peers');
  mkdirSync(dir, { recursive: true });
  const dest = join(dir, `${basename(peer)}.mjs`);
  writeFileSync(dest, stripTypeScriptTypes(readFileSync(src, 'utf8'), { mode: 'strip' }));
  return dest;
}
