/**
 * Palisade proxy benchmark: nginx, three Node proxies and Palisade in front of the
 * same nginx upstream, each pinned to one core, loaded by wrk on the other core.
 *
 *   npm run bench -- [--duration 10] [--connections 50] [--only nginx,palisade] [--node /usr/bin/node] [--json FILE]
 *
 * See bench/README.md.
 */
import { parseArgs } from 'node:util';
import { writeFileSync, readFileSync, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import os from 'node:os';
import { stop, logTail, runToEnd } from './lib/procs.ts';
import { profileMain } from './profile.ts';
import { instructionsMain } from './instructions.ts';
import { waitForHttp, probe } from './lib/net.ts';
import { canPin, setNiceness, CONTENDER_CPU, LOAD_CPU } from './lib/pin.ts';
import { probeNode, type NodeRuntime } from './lib/node-runtime.ts';
import { CONTENDERS, selectContenders, Skip, type Contender, type Ctx, type Running } from './lib/contenders.ts';
import { backgroundLoad, benchNodeFlags, intOption, log, makeTmp, measure, runCli, startUpstream, REQUEST_HEADERS } from './lib/session.ts';
import { socketErrorCount, type WrkResult } from './lib/wrk.ts';
import { SCENARIO_PLUGINS } from './lib/palisade.ts';

const HELP = `Usage: npm run bench -- [options]      (or: ./node_modules/.bin/node bench/run.ts [options])

Runs every contender as a reverse proxy in front of the same private nginx
upstream (return 200 "ok\\n"), one after the other, and loads each with
wrk -t1 -c<connections> --latency after a warm-up. Contenders are pinned to
CPU ${CONTENDER_CPU}; wrk and the upstream to CPU ${LOAD_CPU} (taskset).

Options:
  --duration N      seconds of measured load per contender (default 10)
  --warmup N        seconds of warm-up load before each measurement (default 3)
  --connections N   wrk connections (default 50)
  --rounds N        run the whole list N times, interleaved; report each contender's best
                      run (default 1). Noise from other work only ever lowers req/s.
  --nice N          run contenders, wrk and the upstream under nice -n N (e.g. --nice=-10 as root,
                      to shield them from other work on a shared machine; default 0)
  --only a,b        contenders to run (default: all). Keys:
                      ${CONTENDERS.map((c) => c.key).join(', ')}
                      (palisade = every palisade:*)
  --node PATH       Node binary for the Node contenders and Palisade
                      (default: the Node running the bench, ${process.execPath})
  --json FILE       also write the raw results (meta, every run, wrk output) as JSON
  --keep-tmp        keep the temp dir (configs, logs, access logs) and print its path
  --help            this text
  --profile ...     instead of the comparison: profile one Node contender under --cpu-prof
                      (see: npm run bench -- --profile --help)
  --instructions ...  instead of the comparison: instructions per request of Node contenders
                      under valgrind, a count that does not drift with the machine's speed
                      (see: npm run bench -- --instructions --help)

"vs nginx" = req/s divided by the nginx reverse proxy's req/s from the same run.`;

interface RunResult {
  status: 'ok' | 'skipped' | 'failed';
  reason?: string;
  rps?: number;
  p50?: number;
  p99?: number;
  non2xx?: number;
  socketErrors?: number;
  /** Busy % per CPU during the measured run. */
  cpu?: Record<string, number>;
  /** CPU used by the contender's own processes, % of one core. */
  procCpu?: number | null;
  wrk?: WrkResult;
}

interface Row extends RunResult {
  key: string;
  name: string;
  scenario: string;
  pinned: string;
  description: string;
  reference: boolean;
  ratio?: number | null;
  /** req/s of every successful round (the row shows the best one). */
  roundsRps?: number[];
  runs: RunResult[];
}

type Options = ReturnType<typeof parseOptions>;

function parseOptions() {
  const { values } = parseArgs({
    options: {
      duration: { type: 'string', default: '10' },
      warmup: { type: 'string', default: '3' },
      connections: { type: 'string', default: '50' },
      rounds: { type: 'string', default: '1' },
      nice: { type: 'string', default: '0' },
      only: { type: 'string' },
      node: { type: 'string' },
      json: { type: 'string' },
      'keep-tmp': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    allowPositionals: false,
  });
  return {
    help: values.help,
    duration: intOption('duration', values.duration, 1),
    warmup: intOption('warmup', values.warmup, 0),
    connections: intOption('connections', values.connections, 1),
    rounds: intOption('rounds', values.rounds, 1),
    nice: intOption('nice', values.nice, -20),
    only: values.only,
    node: values.node ? resolve(values.node) : process.execPath,
    json: values.json ? resolve(values.json) : undefined,
    keepTmp: values['keep-tmp'],
  };
}

async function toolVersion(cmd: string, args: string[]): Promise<string> {
  const r = await runToEnd(cmd, args);
  return (r.stdout + r.stderr).split('\n')[0]!.trim();
}

function cpuModel(): string {
  try {
    const m = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) return m[1]!.trim();
  } catch {
    /* not Linux */
  }
  return os.cpus()[0]?.model ?? 'unknown';
}

const fmtInt = (n: number): string => Math.round(n).toLocaleString('en-US');
const fmtMs = (n: number | undefined): string => (n === undefined || Number.isNaN(n) ? '-' : n < 10 ? n.toFixed(2) : n.toFixed(1));
const fmtPct = (n: number | null | undefined): string => (n === undefined || n === null || Number.isNaN(n) ? '-' : n.toFixed(0));

function table(rows: Row[], rounds: number): string {
  const head = ['contender', 'scenario', 'pinned', 'req/s', 'p50 ms', 'p99 ms', 'non-2xx', 'sock err', 'vs nginx', 'proc cpu%', 'cpu0%', 'cpu1%'];
  if (rounds > 1) head.push('rounds req/s (min–max)');
  const body = rows.map((r) => {
    const cells =
      r.status === 'ok'
        ? [
            r.name,
            r.scenario,
            r.pinned,
            fmtInt(r.rps!),
            fmtMs(r.p50),
            fmtMs(r.p99),
            String(r.non2xx),
            String(r.socketErrors),
            r.ratio == null ? '-' : r.reference ? `(${r.ratio.toFixed(2)})` : r.ratio.toFixed(2),
            fmtPct(r.procCpu),
            fmtPct(r.cpu?.['cpu0']),
            fmtPct(r.cpu?.['cpu1']),
          ]
        : [r.name, r.scenario, r.pinned, r.status, '', '', '', '', '', '', '', ''];
    if (rounds > 1) {
      const rr = r.roundsRps ?? [];
      cells.push(rr.length ? `${rr.length}× ${fmtInt(Math.min(...rr))}–${fmtInt(Math.max(...rr))}` : '');
    }
    return cells;
  });
  const numeric = new Set([3, 4, 5, 6, 7, 8, 9, 10, 11]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]): string =>
    cells.map((c, i) => (numeric.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

async function runOne(c: Contender, ctx: Ctx, opts: Options, label: string): Promise<RunResult> {
  log(`${label}: starting — ${c.description}${c.usesNode ? ` [node ${ctx.node.version}]` : ''}`);
  let running: Running;
  try {
    running = await c.start(ctx);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    log(`${label}: SKIPPED — ${reason}`);
    return { status: err instanceof Skip ? 'skipped' : 'failed', reason };
  }
  const child = running.child;
  try {
    const ready = await waitForHttp(running.port, child, 15_000, REQUEST_HEADERS);
    if (!ready.ok) {
      const tail = child ? logTail(child) : '';
      const reason = `${ready.reason}${tail ? `\n    log: ${tail.split('\n').join('\n         ')}` : ''}`;
      log(`${label}: SKIPPED — ${reason}`);
      return { status: 'skipped', reason };
    }
    // The same request wrk sends must be a 2xx with the upstream's body.
    const check = await probe(running.port, '/', 2000, REQUEST_HEADERS);
    if (check.status < 200 || check.status > 299) {
      const reason = `answers HTTP ${check.status} to the benchmark request: ${check.body.slice(0, 200)}`;
      log(`${label}: SKIPPED — ${reason}`);
      return { status: 'skipped', reason };
    }
    const m = await measure(running.port, opts.duration, opts.warmup, opts.connections, label, child ? child.pid : null, c.request);
    if (child && child.exitInfo !== null) {
      const reason = `exited (${child.exitInfo}) during the run\n${logTail(child)}`;
      log(`${label}: FAILED — ${reason}`);
      return { status: 'failed', reason };
    }
    const r: RunResult = {
      status: 'ok',
      rps: m.wrk.rps,
      p50: m.wrk.p50,
      p99: m.wrk.p99,
      non2xx: m.wrk.non2xx,
      socketErrors: socketErrorCount(m.wrk),
      cpu: m.cpu,
      procCpu: m.procCpu,
      wrk: m.wrk,
    };
    const errs = r.non2xx! + r.socketErrors!;
    log(
      `${label}: ${fmtInt(m.wrk.rps)} req/s, p50 ${fmtMs(m.wrk.p50)} ms, p99 ${fmtMs(m.wrk.p99)} ms` +
        `${errs ? `, ${r.non2xx} non-2xx, ${r.socketErrors} socket errors` : ''}` +
        `; cpu: contender ${fmtPct(m.procCpu)}%, cpu0 ${fmtPct(m.cpu['cpu0'])}%, cpu1 ${fmtPct(m.cpu['cpu1'])}%`,
    );
    return r;
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    log(`${label}: FAILED — ${reason}`);
    return { status: 'failed', reason };
  } finally {
    if (child) await stop(child);
  }
}

/**
 * One row per contender: its best successful round (interference from other work
 * only ever lowers throughput, so the best run is the least disturbed), or the first failure.
 */
function aggregate(c: Contender, runs: RunResult[]): Row {
  const ok = runs.filter((r) => r.status === 'ok').sort((a, b) => b.rps! - a.rps!);
  const chosen = ok[0] ?? runs.find((r) => r.status === 'failed') ?? runs[0]!;
  return {
    ...chosen,
    wrk: undefined,
    key: c.key,
    name: c.name,
    scenario: c.scenario,
    pinned: c.cpus === null || !canPin() ? 'no' : `cpu${c.cpus}`,
    description: c.description,
    reference: c.reference ?? false,
    roundsRps: ok.map((r) => r.rps!),
    runs,
  };
}

function warnings(rows: Row[], background: Record<string, number>): string[] {
  const out: string[] = [];
  const busyBg = Object.entries(background).filter(([, v]) => v > 10);
  if (busyBg.length) {
    out.push(`WARNING: the machine was not idle before the run (${busyBg.map(([k, v]) => `${k} ${v}% busy`).join(', ')}): other work skews every number.`);
  }
  const direct = rows.find((r) => r.key === 'direct' && r.status === 'ok');
  if (direct) {
    const near = rows.filter((r) => r.status === 'ok' && !r.reference && r.rps! > 0.85 * direct.rps!);
    if (near.length) out.push(`WARNING: ${near.map((r) => r.key).join(', ')} within 15% of the direct (load-side) ceiling: load-bound, not proxy-bound.`);
  }
  const shared = rows.filter((r) => r.status === 'ok' && r.pinned === `cpu${CONTENDER_CPU}` && r.procCpu != null && (r.cpu?.['cpu0'] ?? 0) - r.procCpu > 10);
  if (shared.length) {
    out.push(
      `WARNING: something else used cpu${CONTENDER_CPU} during ${shared.map((r) => `${r.key} (cpu0 ${fmtPct(r.cpu?.['cpu0'])}% vs contender ${fmtPct(r.procCpu)}%)`).join(', ')}: those numbers are low.`,
    );
  }
  const bad = rows.filter((r) => r.status === 'ok' && (r.non2xx! > 0 || r.socketErrors! > 0));
  if (bad.length) out.push(`WARNING: errors during the run: ${bad.map((r) => `${r.key} (${r.non2xx} non-2xx, ${r.socketErrors} socket errors)`).join('; ')}`);
  return out;
}

async function main(): Promise<void> {
  let opts: Options;
  let contenders: Contender[];
  try {
    opts = parseOptions();
    contenders = selectContenders(opts.only);
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n\n${HELP}\n`);
    process.exit(2);
  }
  if (opts.help) {
    process.stdout.write(`${HELP}\n`);
    return;
  }

  for (const tool of ['nginx', 'wrk']) {
    const r = await runToEnd('sh', ['-c', `command -v ${tool}`]);
    if (r.code !== 0) throw new Error(`${tool} is not installed (apt-get install nginx-light wrk)`);
  }
  setNiceness(opts.nice);
  if (!canPin()) log('WARNING: taskset or a second CPU is missing: everything runs unpinned; numbers are not comparable to pinned runs');

  const nodeRt: NodeRuntime = await probeNode(opts.node);
  const meta = {
    date: new Date().toISOString(),
    host: os.hostname(),
    cpu: cpuModel(),
    cpus: os.availableParallelism(),
    kernel: `${os.type()} ${os.release()}`,
    pinning: canPin() ? `contenders on cpu${CONTENDER_CPU}, wrk + upstream on cpu${LOAD_CPU}` : 'none',
    benchNode: process.version,
    contenderNode: `${nodeRt.version} (${nodeRt.path})${nodeRt.typescript ? '' : ', no type stripping: peers run as stripped .mjs'}`,
    nginx: await toolVersion('nginx', ['-v']),
    wrk: await toolVersion('wrk', ['-v']),
    duration: opts.duration,
    warmup: opts.warmup,
    connections: opts.connections,
    rounds: opts.rounds,
    nice: opts.nice,
    wrkThreads: 1,
    requestHeaders: REQUEST_HEADERS,
    palisadePlugins: SCENARIO_PLUGINS.map((p) => p.trim().replace(/\s+/g, ' ')),
    backgroundCpu: {} as Record<string, number>,
  };
  log(`${meta.cpu}, ${meta.cpus} CPUs, ${meta.kernel}; ${meta.pinning}`);
  log(`Node contenders on ${meta.contenderNode}; ${meta.nginx}; ${meta.wrk}`);
  const perRun = opts.warmup + opts.duration + 2;
  log(
    `${contenders.length} contender(s) × ${opts.rounds} round(s), ${opts.warmup}s warm-up + ${opts.duration}s each, ` +
      `${opts.connections} connections: about ${Math.ceil((contenders.length * opts.rounds * perRun) / 60)} min`,
  );

  const tmp = makeTmp(opts.keepTmp);
  const upstream = await startUpstream(tmp);
  log(`upstream nginx ready on 127.0.0.1:${upstream.port} (cpu${LOAD_CPU})`);
  meta.backgroundCpu = await backgroundLoad(1000);
  log(`background load before the run: ${Object.entries(meta.backgroundCpu).map(([k, v]) => `${k} ${v}%`).join(', ')}`);

  const ctx: Ctx = { tmp, upstreamPort: upstream.port, node: nodeRt, nodeFlags: benchNodeFlags() };
  const runs: RunResult[][] = contenders.map(() => []);
  for (let round = 1; round <= opts.rounds; round++) {
    for (const [i, c] of contenders.entries()) {
      // A contender that cannot start will not start in the next round either.
      if (round > 1 && runs[i]!.every((r) => r.status === 'skipped')) continue;
      const label = opts.rounds > 1 ? `[${round}/${opts.rounds}] ${c.key}` : c.key;
      runs[i]!.push(await runOne(c, ctx, opts, label));
    }
  }
  await stop(upstream.child);

  const rows = contenders.map((c, i) => aggregate(c, runs[i]!));
  const nginxRow = rows.find((r) => r.key === 'nginx' && r.status === 'ok');
  for (const r of rows) if (r.status === 'ok') r.ratio = nginxRow ? r.rps! / nginxRow.rps! : null;

  const out: string[] = [''];
  out.push(`Palisade proxy benchmark, ${meta.date}`);
  out.push(`${meta.cpu} (${meta.cpus} CPUs), ${meta.kernel}`);
  out.push(
    `wrk -t1 -c${opts.connections} -d${opts.duration}s --latency after ${opts.warmup}s warm-up` +
      `${opts.rounds > 1 ? `, best of ${opts.rounds} rounds` : ''}${opts.nice ? `, nice ${opts.nice}` : ''}; ${meta.pinning}`,
  );
  out.push(`Node contenders on ${meta.contenderNode}; ${meta.nginx}`);
  out.push('');
  out.push(table(rows, opts.rounds));
  out.push('');
  out.push('vs nginx = req/s ÷ nginx reverse proxy req/s in this run; (in parentheses) for the reference rows, which are not proxies.');
  out.push('proc cpu% = CPU used by the contender (100 = one core);');
  out.push('cpu0%/cpu1% = busy % of each CPU during the measured run.');
  out.push(...warnings(rows, meta.backgroundCpu));
  for (const r of rows.filter((x) => x.status !== 'ok')) out.push(`${r.status}: ${r.key}: ${r.reason}`);
  if (opts.keepTmp) out.push(`temp dir kept: ${tmp}`);
  process.stdout.write(out.join('\n') + '\n');

  if (opts.json) {
    mkdirSync(dirname(opts.json), { recursive: true });
    writeFileSync(opts.json, JSON.stringify({ meta, results: rows }, null, 2) + '\n');
    log(`raw results written to ${opts.json}`);
  }
}

const argv = process.argv.slice(2);
if (argv.includes('--profile')) runCli(() => profileMain(argv.filter((a) => a !== '--profile')));
else if (argv.includes('--instructions')) runCli(() => instructionsMain(argv.filter((a) => a !== '--instructions')));
else runCli(main);
