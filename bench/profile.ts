/**
 * Where does the time go? Runs one Node contender (Palisade by default) under
 * `node --cpu-prof`, pinned to one core, loads it with wrk like run.ts does,
 * stops it, and prints the top self-time functions and areas of the profile.
 * The .cpuprofile files stay in bench/out/ (git-ignored); open them in Chrome
 * DevTools (Performance tab, "Load profile") or VS Code for flame charts.
 *
 *   npm run bench -- --profile [--scenario plain|plugins] [--contender KEY] [--duration 10]
 *   ./node_modules/.bin/node bench/profile.ts [same options]      (Node 24: the system node is older)
 */
import { parseArgs } from 'node:util';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stop, logTail } from './lib/procs.ts';
import { waitForHttp } from './lib/net.ts';
import { CONTENDER_CPU, LOAD_CPU } from './lib/pin.ts';
import { probeNode } from './lib/node-runtime.ts';
import { CONTENDERS, PINNED_NODE, Skip, slug, type Ctx } from './lib/contenders.ts';
import { benchNodeFlags, intOption, log, makeTmp, measure, runCli, startUpstream, REQUEST_HEADERS } from './lib/session.ts';
import { summarizeProfile, formatSelfTimes, type ProfileSummary } from './lib/cpuprofile.ts';
import { OUT_DIR, ROOT_DIR } from './lib/paths.ts';

const HELP = `Usage: npm run bench -- --profile [options]
   or: ./node_modules/.bin/node bench/profile.ts [options]

Runs one Node contender under --cpu-prof (pinned to cpu${CONTENDER_CPU}, wrk + upstream on cpu${LOAD_CPU}),
writes the .cpuprofile into bench/out/profile-<contender>-<time>/ and prints
the functions and areas with the most self time.

Options:
  --contender KEY   ${PINNED_NODE.join(', ')} (default palisade:plain)
  --scenario S      shorthand for --contender palisade:S (plain or plugins)
  --duration N      seconds of measured load (default 10)
  --warmup N        seconds of load before it (default 3; left out of the summary)
  --connections N   wrk connections (default 50)
  --interval US     sampling interval in microseconds (default 500)
  --top N           rows to print (default 25)
  --node PATH       Node binary (default: ${process.execPath})
  --help            this text`;

/** Makes SIGTERM/SIGINT exit normally so that V8 writes the profile (also in cluster workers: execArgv is inherited). */
const EXIT_ON_SIGNAL = 'data:text/javascript,process.once("SIGTERM",()=>process.exit(0));process.once("SIGINT",()=>process.exit(0));';

export async function profileMain(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      contender: { type: 'string' },
      scenario: { type: 'string' },
      duration: { type: 'string', default: '10' },
      warmup: { type: 'string', default: '3' },
      connections: { type: 'string', default: '50' },
      interval: { type: 'string', default: '500' },
      top: { type: 'string', default: '25' },
      node: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return;
  }
  const key = values.contender ?? `palisade:${values.scenario ?? 'plain'}`;
  const contender = CONTENDERS.find((c) => c.key === key);
  if (!contender || !PINNED_NODE.includes(key)) {
    process.stderr.write(`cannot profile "${key}"; choose one of: ${PINNED_NODE.join(', ')}\n`);
    process.exit(2);
  }
  const duration = intOption('duration', values.duration, 1);
  const warmup = intOption('warmup', values.warmup, 0);
  const connections = intOption('connections', values.connections, 1);
  const top = intOption('top', values.top, 1);
  const interval = intOption('interval', values.interval, 1);

  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const outDir = join(OUT_DIR, `profile-${slug(key)}-${stamp}`);
  mkdirSync(outDir, { recursive: true });

  const node = await probeNode(values.node ? resolve(values.node) : process.execPath);
  const tmp = makeTmp(false);
  const upstream = await startUpstream(tmp);
  log(`upstream nginx on 127.0.0.1:${upstream.port}; profiling ${key} on node ${node.version}`);

  const ctx: Ctx = {
    tmp,
    upstreamPort: upstream.port,
    node,
    nodeFlags: [...benchNodeFlags(), '--cpu-prof', '--cpu-prof-dir', outDir, '--cpu-prof-interval', String(interval), '--import', EXIT_ON_SIGNAL],
  };
  let running;
  try {
    running = await contender.start(ctx);
  } catch (err) {
    throw new Error(`${key} ${err instanceof Skip ? 'cannot run' : 'failed to start'}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const child = running.child!;
  const ready = await waitForHttp(running.port, child, 15_000, REQUEST_HEADERS);
  if (!ready.ok) throw new Error(`${key} is not ready: ${ready.reason}\n${logTail(child)}`);

  const m = await measure(running.port, duration, warmup, connections, key, child.pid, contender.request);
  log(`${key} under the profiler: ${Math.round(m.wrk.rps).toLocaleString('en-US')} req/s, p50 ${m.wrk.p50.toFixed(2)} ms, p99 ${m.wrk.p99.toFixed(2)} ms (profiling costs some throughput)`);
  log(`stopping ${key} so that it writes its profile`);
  await stop(child, 15_000);
  await stop(upstream.child);

  const files = readdirSync(outDir).filter((f) => f.endsWith('.cpuprofile'));
  if (files.length === 0) throw new Error(`no .cpuprofile was written into ${outDir} (did the process exit normally?)\n${logTail(child)}`);
  const summaries: ProfileSummary[] = files.map((f) => summarizeProfile(join(outDir, f), ROOT_DIR, top, m.windowUs));
  // With several processes (cluster primary + worker), the busiest one served the requests.
  summaries.sort((a, b) => b.samples * (100 - b.idlePercent) - a.samples * (100 - a.idlePercent));
  const main = summaries[0]!;

  const out: string[] = [''];
  out.push(`Profile of ${key} (${contender.description})`);
  out.push(`node ${node.version}, wrk -t1 -c${connections} -d${duration}s after ${warmup}s warm-up, sampling every ${interval} µs`);
  out.push(`throughput while profiled: ${Math.round(m.wrk.rps).toLocaleString('en-US')} req/s; contender CPU ${m.procCpu ?? '?'}% of one core`);
  out.push(`profile: ${relative(process.cwd(), main.file)}`);
  out.push(
    main.windowed
      ? `counted: the ${main.samples} of ${main.totalSamples} samples taken during the measured run (${(main.durationMs / 1000).toFixed(1)} s; startup and warm-up left out), ${main.idlePercent.toFixed(1)}% idle`
      : `counted: all ${main.samples} samples (${(main.durationMs / 1000).toFixed(1)} s, startup and warm-up included: the clocks did not line up), ${main.idlePercent.toFixed(1)}% idle`,
  );
  for (const s of summaries.slice(1)) out.push(`  also: ${relative(process.cwd(), s.file)} (${s.samples} samples, ${s.idlePercent.toFixed(1)}% idle; another process of the group)`);
  out.push('');
  out.push(formatSelfTimes('Self time by area (where the code lives):', main.groups.slice(0, Math.min(top, 15))));
  out.push('');
  out.push(formatSelfTimes(`Top ${top} functions by self time:`, main.functions));
  out.push('');
  out.push('(idle) = waiting in the event loop; (program) = V8/native work not attributed to JS; (garbage collector) = GC pauses.');
  const text = out.join('\n') + '\n';
  process.stdout.write(text);
  writeFileSync(join(outDir, 'summary.txt'), text);
  log(`summary written to ${relative(process.cwd(), join(outDir, 'summary.txt'))}`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) runCli(() => profileMain(process.argv.slice(2)));
