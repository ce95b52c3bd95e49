/**
 * Instructions per request, counted by valgrind's callgrind: a measure that
 * does not move with the machine's speed, for comparing two builds or two
 * scenarios on a noisy VM where requests/s drift by 2× between minutes.
 *
 * For each Node contender: start it under callgrind with instrumentation off,
 * warm it up with wrk (the JIT tiers up at valgrind's uninstrumented speed),
 * turn instrumentation on, load it a while longer (code is translated again),
 * zero the counters, load it for the measured run, dump the counters. What is
 * printed is the instructions of the main thread and of all threads (the
 * garbage collector's and compiler's helpers), divided by the requests wrk
 * completed. User space only: the kernel's share of a request (sockets) is not
 * counted, and instructions are not time (a cache miss costs many), so a
 * difference here is a lead to confirm with run.ts, not a throughput ratio.
 *
 *   npm run bench -- --instructions --only palisade:plain,palisade:opentelemetry
 *   ./node_modules/.bin/node bench/instructions.ts --help
 */
import { parseArgs } from 'node:util';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stop, logTail, runToEnd } from './lib/procs.ts';
import { waitForHttp } from './lib/net.ts';
import { probeNode } from './lib/node-runtime.ts';
import { PINNED_NODE, selectContenders, Skip, slug, type Ctx } from './lib/contenders.ts';
import { benchNodeFlags, intOption, log, makeTmp, runCli, startUpstream, REQUEST_HEADERS } from './lib/session.ts';
import { runWrk, socketErrorCount } from './lib/wrk.ts';

const HELP = `Usage: npm run bench -- --instructions [options]
   or: ./node_modules/.bin/node bench/instructions.ts [options]

Counts the instructions each Node contender executes per request under valgrind
(callgrind), after a warm-up: a number that does not drift with the machine's
speed. Needs valgrind (callgrind_control) and wrk on the PATH. Takes about
70 s per contender. BENCH_NODE_FLAGS adds Node flags (e.g. --perf-basic-prof).

Options:
  --only a,b        contenders (default palisade:plain); one of: ${PINNED_NODE.join(', ')}
  --warmup N        seconds of uninstrumented load first (default 25)
  --settle N        seconds of instrumented load before counting (default 10)
  --duration N      seconds of counted load (default 20)
  --connections N   wrk connections (default 10)
  --keep-tmp        keep the callgrind files (in the temp dir, printed)
  --help            this text`;

/** Totals of a callgrind dump: one file per thread (…-01 is the main thread). */
function totals(dir: string, prefix: string): { main: number; all: number } {
  let main = 0;
  let all = 0;
  for (const f of readdirSync(dir)) {
    // The dump asked for is <prefix>.1-<thread>; the files written at exit (<prefix>-<thread>) are left out.
    const m = new RegExp(`^${prefix}\\.\\d+-(\\d+)$`).exec(f);
    if (m === null) continue;
    const t = /^totals:\s+(\d+)/m.exec(readFileSync(join(dir, f), 'utf8'));
    const n = t === null ? 0 : Number(t[1]);
    all += n;
    if (m[1] === '01') main += n;
  }
  return { main, all };
}

async function control(pid: number, args: string[]): Promise<void> {
  const r = await runToEnd('callgrind_control', [...args, String(pid)]);
  if (r.code !== 0) throw new Error(`callgrind_control ${args.join(' ')} ${pid} failed: ${r.stderr.trim() || r.stdout.trim()}`);
}

export async function instructionsMain(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      only: { type: 'string', default: 'palisade:plain' },
      warmup: { type: 'string', default: '25' },
      settle: { type: 'string', default: '10' },
      duration: { type: 'string', default: '20' },
      connections: { type: 'string', default: '10' },
      'keep-tmp': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return;
  }
  const [warmup, settle, duration, connections] = (['warmup', 'settle', 'duration', 'connections'] as const).map((k) => intOption(k, values[k], 1));
  // A name (`palisade`) selects its pinned Node contenders; a key that cannot be counted is an error.
  const named = new Set((values.only ?? '').split(',').map((s) => s.trim()));
  const selected = selectContenders(values.only);
  const wrong = selected.filter((c) => !PINNED_NODE.includes(c.key) && (values.only === undefined || named.has(c.key)));
  if (wrong.length > 0) throw new Error(`cannot count ${wrong.map((c) => c.key).join(', ')}: only the pinned Node contenders (${PINNED_NODE.join(', ')})`);
  const contenders = selected.filter((c) => PINNED_NODE.includes(c.key));
  if ((await runToEnd('valgrind', ['--version'])).code !== 0) throw new Error('valgrind is not installed (apt-get install valgrind)');

  const tmp = makeTmp(values['keep-tmp']);
  const upstream = await startUpstream(tmp);
  const node = await probeNode(process.execPath);
  log(`upstream nginx on 127.0.0.1:${upstream.port}; node ${node.version} under callgrind`);
  const rows: string[] = [];
  let base: number | null = null;
  for (const contender of contenders) {
    const prefix = `cg-${slug(contender.key)}`;
    const ctx: Ctx = {
      tmp,
      upstreamPort: upstream.port,
      node,
      nodeFlags: benchNodeFlags(),
      wrapper: ['valgrind', '--tool=callgrind', '--instr-atstart=no', '--separate-threads=yes', `--callgrind-out-file=${join(tmp, prefix)}`],
    };
    let running;
    try {
      running = await contender.start(ctx);
    } catch (err) {
      if (err instanceof Skip) {
        log(`${contender.key}: skipped (${err.message})`);
        continue;
      }
      throw err;
    }
    const child = running.child!;
    try {
      const ready = await waitForHttp(running.port, child, 240_000, REQUEST_HEADERS);
      if (!ready.ok) throw new Error(`${contender.key} is not ready under valgrind: ${ready.reason}\n${logTail(child)}`);
      const load = (seconds: number) => runWrk({ port: running.port, connections, seconds, headers: REQUEST_HEADERS, request: contender.request });
      log(`${contender.key}: warm-up ${warmup}s (uninstrumented)`);
      await load(warmup);
      await control(child.pid, ['-i', 'on']);
      log(`${contender.key}: instrumented, settling ${settle}s`);
      await load(settle);
      await control(child.pid, ['-z']);
      log(`${contender.key}: counting ${duration}s`);
      const r = await load(duration);
      await control(child.pid, ['-d']);
      if (child.exitInfo !== null) throw new Error(`${contender.key} exited (${child.exitInfo}) during the run\n${logTail(child)}`);
      // Only what the bench measures is divided: a refusal or a broken connection is cheaper than a proxied request.
      if (r.non2xx > 0 || socketErrorCount(r) > 0) throw new Error(`${contender.key}: ${r.non2xx} non-2xx answers, ${socketErrorCount(r)} socket errors in the counted run`);
      const requests = r.requests;
      const t = totals(tmp, prefix);
      if (requests === 0 || t.all === 0) throw new Error(`${contender.key}: nothing counted (${requests} requests, ${t.all} instructions)`);
      const perMain = t.main / requests;
      const perAll = t.all / requests;
      base ??= perMain;
      const line = `${contender.key.padEnd(26)} ${String(requests).padStart(8)} ${Math.round(perMain / 1000).toLocaleString('en-US').padStart(10)}k ${Math.round(perAll / 1000).toLocaleString('en-US').padStart(10)}k ${(perMain / base).toFixed(2).padStart(8)}`;
      log(line);
      rows.push(line);
    } finally {
      await stop(child, 20_000);
    }
  }
  await stop(upstream.child);
  const out = [
    '',
    `Instructions per request under callgrind (node ${node.version}; wrk -t1 -c${connections}; ${warmup}s warm-up, ${settle}s settle, ${duration}s counted)`,
    `${'contender'.padEnd(26)} ${'requests'.padStart(8)} ${'main thread'.padStart(11)} ${'all threads'.padStart(11)} ${'vs first'.padStart(8)}`,
    ...rows,
    '',
  ];
  if (values['keep-tmp']) out.push(`callgrind files: ${tmp} (callgrind_annotate <file>)`, '');
  process.stdout.write(out.join('\n'));
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) runCli(() => instructionsMain(process.argv.slice(2)));
