/**
 * One gateway process (--workers 1) through its life: reload on SIGHUP and on
 * file change, an invalid file rejected while the old config keeps serving,
 * graceful shutdown on SIGTERM draining in-flight requests, bounded by
 * server.shutdown_timeout.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { after, before, test } from 'node:test';
import { eventually, freePorts, portAnswers, request, sleep, spawnPalisade, startUpstream, TempDir, type PalisadeProcess, type Upstream } from '../helpers/process.ts';

const dir = new TempDir();
let upstream: Upstream;
before(async () => {
  upstream = await startUpstream();
});
after(async () => {
  await upstream.close();
  dir.remove();
});

function config(paths: string[], server: Record<string, unknown> = {}): string {
  return JSON.stringify(
    {
      _format_version: '3.0',
      server: { access_log: 'stdout', ...server },
      services: [{ name: 'echo', url: upstream.url, routes: paths.map((p) => ({ name: `r${p.replace(/\W/g, '')}`, paths: [p] })) }],
    },
    null,
    2,
  );
}

/** A gateway on a free port from `file`; resolves once 'palisade started' is logged. */
async function start(file: string): Promise<{ p: PalisadeProcess; port: number }> {
  const [port] = await freePorts(1);
  const p = spawnPalisade(['start', '--config', file, '--listen', `127.0.0.1:${port}`, '--tls-listen', 'off', '--admin-listen', 'off', '--workers', '1']);
  await p.waitForLog((l) => l.msg === 'palisade started', 20000, "'palisade started'");
  return { p, port: port! };
}

const count = (p: PalisadeProcess, msg: string) => p.logs().filter((l) => l.msg === msg).length;

test('SIGHUP reloads a changed valid file: a new route starts answering', async () => {
  const file = dir.write('hup.yaml', config(['/a'], { watch: false }));
  const { p, port } = await start(file);
  try {
    assert.equal((await request(port, '/a/x')).status, 200);
    assert.equal((await request(port, '/b/x')).status, 404);

    dir.write('hup.yaml', config(['/a', '/b'], { watch: false }));
    await sleep(500); // with watch: false, only the signal reloads
    assert.equal((await request(port, '/b/x')).status, 404, 'reloaded without SIGHUP although watch is false');

    p.signal('SIGHUP');
    await p.waitForLog((l) => l.msg === 'config reloaded', 5000, "'config reloaded'");
    const r = await request(port, '/b/hello');
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json().url, '/hello');
    assert.equal((await request(port, '/a/x')).status, 200, 'the old route still answers');
    assert.equal(await p.stop('SIGTERM'), 0, p.output);
    // The access log is buffered; after the exit it is all on stdout.
    const versions = new Set(p.accessLog().map((l) => l.config_version));
    assert.equal(versions.size, 2, `access log lines carry the old and the new config version${p.output}`);
  } finally {
    await p.kill();
  }
});

test('a changed file is reloaded without a signal (in-place write and editor-style rename); an invalid one is rejected', async () => {
  const file = dir.write('watch.yaml', config(['/a']));
  const { p, port } = await start(file);
  try {
    assert.equal((await request(port, '/b/x')).status, 404);

    dir.write('watch.yaml', config(['/a', '/b']));
    await eventually(async () => (await request(port, '/b/x')).status === 200, 5000, '/b after an in-place write');

    dir.replace('watch.yaml', config(['/a', '/b', '/c']));
    await eventually(async () => (await request(port, '/c/x')).status === 200, 5000, '/c after a rename over the file');
    assert.equal(count(p, 'config reloaded'), 2, p.output);

    dir.write('watch.yaml', '_format_version: "3.0"\nservices: [ {\n');
    await p.waitForLog((l) => l.msg === 'config reload rejected; the running config is unchanged', 5000, 'the rejection of the invalid file');
    assert.equal((await request(port, '/c/x')).status, 200, 'still serving the last valid config');
    assert.equal(await p.stop('SIGTERM'), 0, p.output);
  } finally {
    await p.kill();
  }
});

test('an invalid file on SIGHUP: still serving the old config, the error logged with line:column', async () => {
  const file = dir.write('invalid.yaml', config(['/a'], { watch: false }));
  const { p, port } = await start(file);
  try {
    dir.write(
      'invalid.yaml',
      ['_format_version: "3.0"', 'services:', '  - name: echo', `    url: ${upstream.url}`, '    routes:', '      - name: b', '        paths: ["/b"]', '        strip_path: maybe', ''].join('\n'),
    );
    p.signal('SIGHUP');
    const rejected = await p.waitForLog((l) => l.msg === 'config reload rejected; the running config is unchanged', 5000, 'the rejection');
    assert.equal(rejected.level, 50, 'logged at error level');
    const errors = rejected.errors as string[];
    assert.ok(Array.isArray(errors) && errors.length > 0, JSON.stringify(rejected));
    assert.ok(errors.some((e) => e === `${file}:8:21: /services/0/routes/0/strip_path: must be boolean`), JSON.stringify(errors));
    assert.equal((await request(port, '/a/x')).status, 200, 'the old route still answers');
    assert.equal((await request(port, '/b/x')).status, 404, 'nothing of the invalid file is applied');
    assert.equal(count(p, 'config reloaded'), 0);
    assert.equal(p.exit, null, 'still running');
    assert.equal(await p.stop('SIGTERM'), 0, p.output);
  } finally {
    await p.kill();
  }
});

test('SIGTERM with a request in flight: it completes with 200, new connections are refused, exit 0', async () => {
  const file = dir.write('drain.yaml', config(['/a'], { watch: false, shutdown_timeout: 10000 }));
  const { p, port } = await start(file);
  try {
    const seen = upstream.requests.length;
    const started = Date.now();
    const agent = new Agent({ keepAlive: true });
    const inflight = request(port, '/a/slow/1500', { agent });
    await eventually(() => upstream.requests.length > seen, 5000, 'the upstream to receive the slow request');
    p.signal('SIGTERM');
    await p.waitForLog((l) => l.msg === 'shutting down: draining in-flight requests', 5000, "'shutting down'");
    // Repeated signals (an impatient supervisor; Ctrl-C reaching the whole process group) must not cut the drain short.
    p.signal('SIGTERM');
    p.signal('SIGINT');
    p.signal('SIGINT');
    assert.equal(await portAnswers(port), false, 'new connections are refused while draining');
    const r = await inflight;
    agent.destroy();
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json().url, '/slow/1500');
    assert.equal(r.headers.connection, 'close', 'a keep-alive client is told not to reuse the connection during the drain');
    assert.ok(Date.now() - started >= 1400);
    const exit = await p.waitForExit(10000);
    assert.deepEqual(exit, { code: 0, signal: null }, p.output);
    assert.equal(p.logs().at(-1)?.msg, 'stopped');
    assert.ok(p.accessLog().some((l) => l.path === '/a/slow/1500' && l.status === 200), 'the drained request was access-logged');
  } finally {
    await p.kill();
  }
});

test('shutdown_timeout bounds the drain: a 30 s upstream, shutdown_timeout 500 → exits promptly with 0', async () => {
  const file = dir.write('bounded.yaml', config(['/a'], { watch: false, shutdown_timeout: 500 }));
  const { p, port } = await start(file);
  try {
    const seen = upstream.requests.length;
    const inflight = request(port, '/a/slow/30000', { timeoutMs: 40000 }).then(
      (r) => r.status,
      (err: Error) => err.message,
    );
    await eventually(() => upstream.requests.length > seen, 5000, 'the upstream to receive the request');
    const t0 = Date.now();
    p.signal('SIGTERM');
    const exit = await p.waitForExit(8000);
    const took = Date.now() - t0;
    assert.deepEqual(exit, { code: 0, signal: null }, p.output);
    assert.ok(took >= 450, `exited after ${took} ms: before the drain period`);
    assert.ok(took < 3000, `exited after ${took} ms: the drain was not bounded by shutdown_timeout 500`);
    const outcome = await inflight;
    assert.notEqual(outcome, 200, 'the cut request cannot have completed');
  } finally {
    await p.kill();
  }
});

test('an access log file gets every line on SIGTERM, also those still waiting in its 32 KB batch', async () => {
  const log = dir.file('access-batch.log');
  const file = dir.write('access-file.yaml', config(['/a'], { watch: false, access_log: log }));
  const { p, port } = await start(file);
  try {
    for (let i = 0; i < 25; i++) assert.equal((await request(port, `/a/line/${i}`)).status, 200);
    assert.equal(await p.stop('SIGTERM'), 0, p.output);
    const lines = readFileSync(log, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { path: string; status: number });
    assert.deepEqual(lines.map((l) => l.path), Array.from({ length: 25 }, (_, i) => `/a/line/${i}`), 'each request once, in order');
    assert.ok(lines.every((l) => l.status === 200));
  } finally {
    await p.kill();
  }
});
