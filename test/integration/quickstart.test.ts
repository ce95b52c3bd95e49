/**
 * The quick start as a user runs it: `npm start` (= node scripts/quickstart.ts)
 * starts the demo upstream and Palisade on examples/quickstart/palisade.yaml;
 * the documented curl requests work; Ctrl-C stops both. Ports are moved to
 * free ones: DEMO_UPSTREAM_PORT for the demo upstream, `--listen` passed
 * through to `palisade start`, PALISADE_ADMIN_LISTEN for the admin listener.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { freePorts, portAnswers, request, ROOT, spawnPalisade, type PalisadeProcess } from '../helpers/process.ts';

let qs: PalisadeProcess;
let port: number;
let demo: number;
let admin: number;

before(async () => {
  [port, demo, admin] = (await freePorts(3)) as [number, number, number];
  qs = spawnPalisade(['--listen', `127.0.0.1:${port}`], {
    script: join(ROOT, 'scripts', 'quickstart.ts'),
    env: { DEMO_UPSTREAM_PORT: String(demo), PALISADE_ADMIN_LISTEN: `127.0.0.1:${admin}` },
    detached: true, // its own process group, so the test can press Ctrl-C like a terminal does
  });
  await qs.waitForLog((l) => l.msg === 'palisade started', 20000, "'palisade started'");
});

after(async () => {
  if (qs.exit === null) process.kill(-qs.pid, 'SIGKILL');
  await qs.kill();
});

test('both started on the requested ports', async () => {
  assert.ok(await portAnswers(demo), 'the demo upstream listens on DEMO_UPSTREAM_PORT');
  assert.ok(await portAnswers(port), 'the gateway listens on the --listen port');
  assert.equal((await request(admin, '/status/ready')).status, 200, 'the admin listener moved with PALISADE_ADMIN_LISTEN');
  assert.match(qs.stderr, new RegExp(`curl -i http://127\\.0\\.0\\.1:${port}/api/hello`), 'the banner shows the address in use');
});

test('curl -i localhost:8000/api/hello → 200, the demo upstream echo', async () => {
  const r = await request(port, '/api/hello?name=palisade');
  assert.equal(r.status, 200, r.body);
  assert.match(String(r.headers['content-type']), /^application\/json/);
  const echo = r.json();
  assert.equal(echo.service, 'demo');
  assert.equal(echo.method, 'GET');
  assert.equal(echo.url, '/hello?name=palisade', 'the route prefix is stripped');
  assert.ok(echo.headers['x-correlation-id'], 'correlation-id plugin adds the header upstream');
  assert.equal(r.headers['x-correlation-id'], echo.headers['x-correlation-id'], 'and echoes it downstream');
  assert.equal(echo.headers['x-forwarded-for'], '127.0.0.1');
});

test('curl -i localhost:8000/maintenance → 503 with the message', async () => {
  const r = await request(port, '/maintenance');
  assert.equal(r.status, 503);
  assert.equal(r.json().message, 'Down for maintenance');
});

test('CORS preflight from https://app.example.com is answered by the gateway', async () => {
  const r = await request(port, '/api/hello', {
    method: 'OPTIONS',
    headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
  });
  assert.ok(r.status === 200 || r.status === 204, `preflight status ${r.status}`);
  assert.equal(r.headers['access-control-allow-origin'], 'https://app.example.com');
  assert.equal(r.headers['access-control-allow-credentials'], 'true');
  assert.equal(r.headers['access-control-max-age'], '3600');
  assert.match(String(r.headers['access-control-allow-methods']), /\bPOST\b/);
  assert.equal(r.body.includes('"service"'), false, 'the preflight did not reach the upstream');

  const other = await request(port, '/api/hello', { method: 'OPTIONS', headers: { origin: 'https://evil.example.net', 'access-control-request-method': 'POST' } });
  assert.notEqual(other.headers['access-control-allow-origin'], 'https://evil.example.net', 'another origin is not allowed');
});

test('a body over 1 KB → 413; under it passes', async () => {
  const big = await request(port, '/api/upload', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x'.repeat(2048) });
  assert.equal(big.status, 413, big.body);
  const small = await request(port, '/api/upload', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x'.repeat(512) });
  assert.equal(small.status, 200, small.body);
  assert.equal(small.json().body.length, 512);
});

test('Ctrl-C (SIGINT to the process group) stops both, exit 0', async () => {
  process.kill(-qs.pid, 'SIGINT');
  const exit = await qs.waitForExit(15000);
  assert.deepEqual(exit, { code: 0, signal: null }, qs.output);
  assert.equal(await portAnswers(port), false, 'the gateway is gone');
  assert.equal(await portAnswers(demo), false, 'the demo upstream is gone');
  assert.ok(qs.logs().some((l) => l.msg === 'stopped'), `the gateway stopped gracefully${qs.output}`);
  assert.doesNotMatch(qs.stderr, /killed by/);
});
