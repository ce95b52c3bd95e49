/**
 * `palisade start --workers 2`: a primary and two worker processes.
 *
 * Which worker served a request is observed from the upstream's side: the
 * upstream echoes the source port of the connection it got, and /proc tells
 * which process owns that socket (each worker has its own upstream
 * connection pool). Worker pids come from the workers' 'worker started' log
 * lines (pino `pid` field).
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { eventually, freePorts, pidOfConnection, request, spawnPalisade, startUpstream, TempDir, type PalisadeProcess, type Upstream } from '../helpers/process.ts';

const dir = new TempDir();
let upstream: Upstream;
let p: PalisadeProcess;
let port: number;
let adminPort: number;
let file: string;

function config(paths: string[]): string {
  return JSON.stringify({
    _format_version: '3.0',
    // Workers share the primary's stdout: each writes its access-log lines one at a time (not batched), so lines never interleave.
    server: { access_log: 'stdout', watch: false, shutdown_timeout: 2000 },
    services: [{ name: 'echo', url: upstream.url, routes: paths.map((x) => ({ name: `r${x.replace(/\W/g, '')}`, paths: [x] })) }],
  });
}

const workerStarts = () => p.logs().filter((l) => l.msg === 'worker started');
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** The live worker pids (started and not reported dead). */
function workerPids(): number[] {
  const dead = new Set(p.logs().filter((l) => l.msg === 'worker died; starting a new one').map((l) => l.worker_pid as number));
  return workerStarts().map((l) => l.pid as number).filter((pid) => !dead.has(pid));
}

/**
 * `n` requests, each on a new client connection; every one must answer 200.
 * Returns the pid of the worker that served each (from the upstream connection's source port).
 */
async function servedBy(path: string, n: number): Promise<number[]> {
  const pids = workerPids();
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const r = await request(port, path);
    assert.equal(r.status, 200, `${path} #${i}: ${r.body}`);
    const pid = pidOfConnection(r.json().remotePort, upstream.port, pids);
    assert.notEqual(pid, null, `no worker among ${pids} owns the upstream connection from port ${r.json().remotePort}`);
    out.push(pid!);
  }
  return out;
}

before(async () => {
  upstream = await startUpstream();
  [port, adminPort] = (await freePorts(2)) as [number, number];
  file = dir.write('cluster.yaml', config(['/a']));
  p = spawnPalisade(['start', '--config', file, '--listen', `127.0.0.1:${port}`, '--tls-listen', 'off', '--admin-listen', `127.0.0.1:${adminPort}`, '--workers', '2']);
  await p.waitForLog((l) => l.msg === 'palisade started', 30000, "'palisade started'");
});

after(async () => {
  await p.kill();
  await upstream.close();
  dir.remove();
});

describe('--workers 2', { skip: existsSync('/proc/net/tcp') ? false : 'needs Linux /proc to tell workers apart' }, () => {
  test('two worker processes, both serving', async () => {
    const pids = workerPids();
    assert.equal(pids.length, 2, p.output);
    assert.equal(new Set(pids).size, 2);
    assert.ok(!pids.includes(p.pid), 'workers are not the primary');
    const started = p.logs().find((l) => l.msg === 'palisade started')!;
    assert.equal(started.workers, 2);
    assert.equal((await request(adminPort, '/status')).json().workers, 2);

    const served = await servedBy('/a/x', 10);
    assert.deepEqual(new Set(served), new Set(pids), `requests were served by ${served.join(', ')}`);
  });

  test('access log on a shared stdout: every request one whole JSON line, from both workers', async () => {
    const long = 'q'.repeat(3000); // lines of ~3 KB: interleaved writes would break them
    const served = new Set<number>();
    for (let i = 0; i < 20; i++) {
      const r = await request(port, `/a/log-${i}?pad=${long}`);
      assert.equal(r.status, 200);
      served.add(pidOfConnection(r.json().remotePort, upstream.port, workerPids())!);
    }
    assert.equal(served.size, 2, 'both workers served some');
    await eventually(() => p.accessLog().filter((l) => String(l.path).startsWith('/a/log-')).length === 20, 2000, 'the 20 access-log lines');
    const lines = p.stdout.split('\n').filter((l) => l.includes('/a/log-'));
    assert.equal(lines.length, 20, 'one line per request');
    for (const line of lines) {
      const rec = JSON.parse(line) as Record<string, unknown>; // whole: no other line written into it
      assert.equal(rec.path, `${/"path":"([^"?]*)/.exec(line)![1]}?pad=${long}`);
      assert.equal(rec.status, 200);
    }
  });

  test('SIGHUP reload reaches every worker: afterwards every request sees the new route', async () => {
    assert.equal((await request(port, '/b/x')).status, 404);
    const pids = workerPids();
    dir.write('cluster.yaml', config(['/a', '/b']));
    p.signal('SIGHUP');
    await p.waitForLog((l) => l.msg === 'config reloaded', 5000, "the primary's 'config reloaded'");
    for (const pid of pids) await p.waitForLog((l) => l.msg === 'config applied' && l.pid === pid, 5000, `'config applied' from worker ${pid}`);
    const served = await servedBy('/b/x', 10);
    assert.deepEqual(new Set(served), new Set(pids), 'both workers answered the new route');
  });

  test('a worker killed with SIGKILL is replaced (with the running config, even when the file is now invalid) and traffic continues', async () => {
    const [victim, survivor] = workerPids() as [number, number];
    dir.write('cluster.yaml', '_format_version: "3.0"\nservices: [ {\n'); // not reloaded: the replacement must not read it
    process.kill(victim, 'SIGKILL');
    await p.waitForLog((l) => l.msg === 'worker died; starting a new one' && l.worker_pid === victim, 5000, "'worker died'");
    assert.deepEqual(new Set(await servedBy('/b/x', 4)), new Set([survivor]), 'the survivor serves meanwhile');

    await eventually(() => workerStarts().length === 3, 15000, 'a replacement worker');
    const replacement = workerPids().find((pid) => pid !== survivor)!;
    assert.ok(replacement && replacement !== victim && alive(replacement));
    const served = await servedBy('/b/x', 10);
    assert.deepEqual(new Set(served), new Set([survivor, replacement]), 'the replacement serves the reloaded config (/b)');
    assert.equal((await request(adminPort, '/status')).json().restarts, 1);
    assert.equal(p.logs().filter((l) => l.msg === 'worker died; starting a new one').length, 1, `no crash loop${p.output}`);
  });

  test('SIGTERM: primary and workers exit, code 0', async () => {
    const pids = workerPids();
    const exit = await p.stop('SIGTERM', 10000);
    assert.equal(exit, 0, p.output);
    await eventually(() => pids.every((pid) => !alive(pid)), 3000, 'the workers to exit');
    assert.equal(p.logs().at(-1)?.msg, 'stopped');
  });
});
