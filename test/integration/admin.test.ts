/**
 * The admin/status listener of a real `palisade start` process: status
 * endpoints without a token, everything else behind `Authorization: Bearer`,
 * secrets redacted in /config, POST /config/reload, loopback by default.
 */
import assert from 'node:assert/strict';
import { networkInterfaces } from 'node:os';
import { after, before, describe, test } from 'node:test';
import { freePorts, portAnswers, request, spawnPalisade, startUpstream, TempDir, type PalisadeProcess, type Upstream } from '../helpers/process.ts';

const TOKEN = 'test-admin-token-0123456789';
const ENV_TOKEN = 'env-admin-token-9876543210';
const dir = new TempDir();
let upstream: Upstream;

before(async () => {
  upstream = await startUpstream();
});
after(async () => {
  await upstream.close();
  dir.remove();
});

function config(paths: string[], admin: Record<string, unknown> = {}): string {
  return JSON.stringify(
    {
      _format_version: '3.0',
      server: { access_log: 'off', watch: false },
      admin,
      services: [
        { name: 'echo', url: upstream.url, routes: paths.map((x) => ({ name: `r${x.replace(/\W/g, '')}`, paths: [x] })) },
        { name: 'private', url: 'http://svc-user:svc-password-42@127.0.0.1:9/', routes: [{ name: 'private', paths: ['/private'] }] },
      ],
    },
    null,
    2,
  );
}

interface Running {
  p: PalisadeProcess;
  port: number;
  admin: number;
}

async function start(file: string, env: Record<string, string> = {}): Promise<Running> {
  const [port, admin] = (await freePorts(2)) as [number, number];
  const p = spawnPalisade(['start', '--config', file, '--listen', `127.0.0.1:${port}`, '--tls-listen', 'off', '--admin-listen', `127.0.0.1:${admin}`, '--workers', '1'], { env });
  await p.waitForLog((l) => l.msg === 'palisade started', 20000, "'palisade started'");
  return { p, port, admin };
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

function assertUnauthorized(r: { status: number; headers: Record<string, unknown>; json(): any }, what: string): void {
  assert.equal(r.status, 401, what);
  assert.equal(r.headers['content-type'], 'application/problem+json', what);
  assert.equal(r.json().status, 401, what);
}

describe('with admin.token in the file', () => {
  let g: Running;
  let file: string;
  before(async () => {
    file = dir.write('admin.yaml', config(['/a'], { token: TOKEN }));
    g = await start(file);
  });
  after(async () => {
    assert.equal(await g.p.stop('SIGTERM'), 0, g.p.output);
  });

  test('GET /status and /status/ready answer without a token', async () => {
    const status = await request(g.admin, '/status');
    assert.equal(status.status, 200);
    assert.match(String(status.headers['content-type']), /^application\/json/);
    const body = status.json();
    assert.equal(body.workers, 1);
    assert.match(body.configuration_hash, /^[0-9a-f]{12}$/);
    assert.equal(body.server.version, JSON.parse((await import('node:fs')).readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version);
    const ready = await request(g.admin, '/status/ready');
    assert.equal(ready.status, 200);
    assert.deepEqual(ready.json(), { message: 'ready' });
  });

  test('GET /: 401 with WWW-Authenticate without the right token, 200 with it', async () => {
    const none = await request(g.admin, '/');
    assertUnauthorized(none, 'no Authorization');
    assert.match(String(none.headers['www-authenticate']), /^Bearer realm="palisade-admin"/);
    assertUnauthorized(await request(g.admin, '/', { headers: bearer('wrong-token-wrong-token') }), 'wrong token');
    assertUnauthorized(await request(g.admin, '/', { headers: bearer(TOKEN.slice(0, -1)) }), 'a prefix of the token');
    assertUnauthorized(await request(g.admin, '/', { headers: { authorization: `Basic ${Buffer.from(`admin:${TOKEN}`).toString('base64')}` } }), 'Basic scheme');
    assertUnauthorized(await request(g.admin, '/', { headers: bearer(ENV_TOKEN) }), 'a token from elsewhere');

    const ok = await request(g.admin, '/', { headers: bearer(TOKEN) });
    assert.equal(ok.status, 200, ok.body);
    assert.equal(ok.json().tagline, 'Welcome to palisade');
    const lower = await request(g.admin, '/', { headers: { authorization: `bearer ${TOKEN}` } });
    assert.equal(lower.status, 200, 'the auth scheme is case-insensitive');
  });

  test('GET /config: 401 without the token; with it the config, secrets redacted', async () => {
    const none = await request(g.admin, '/config');
    assertUnauthorized(none, 'no token');
    assert.ok(!none.body.includes(TOKEN));

    const r = await request(g.admin, '/config', { headers: bearer(TOKEN) });
    assert.equal(r.status, 200, r.body);
    assert.equal(r.headers['cache-control'], 'no-store');
    const cfg = r.json();
    assert.deepEqual(cfg.services[0].routes[0].paths, ['/a'], 'the config is shown');
    assert.equal(cfg.admin.token, '[REDACTED]');
    assert.equal(cfg.services[1].url, 'http://svc-user:[REDACTED]@127.0.0.1:9/');
    assert.ok(!r.body.includes(TOKEN), 'the admin token appears nowhere');
    assert.ok(!r.body.includes('svc-password-42'), 'the URL password appears nowhere');
  });

  test('unknown admin paths: 404 behind the token, 401 before it', async () => {
    assertUnauthorized(await request(g.admin, '/nope'), 'no token');
    assert.equal((await request(g.admin, '/nope', { headers: bearer(TOKEN) })).status, 404);
  });

  test('POST /config/reload: needs the token; reloads a valid file; 400 with the errors for an invalid one', async () => {
    assert.equal((await request(g.port, '/b/x')).status, 404);
    const before = (await request(g.admin, '/status')).json().configuration_hash;
    dir.write('admin.yaml', config(['/a', '/b'], { token: TOKEN }));

    assertUnauthorized(await request(g.admin, '/config/reload', { method: 'POST' }), 'no token');
    assert.equal((await request(g.port, '/b/x')).status, 404, 'an unauthenticated POST reloads nothing');

    const ok = await request(g.admin, '/config/reload', { method: 'POST', headers: bearer(TOKEN) });
    assert.equal(ok.status, 200, ok.body);
    assert.equal(ok.json().ok, true);
    assert.notEqual(ok.json().version, before);
    assert.equal((await request(g.port, '/b/x')).status, 200, 'the new route answers');
    assert.equal((await request(g.admin, '/status')).json().configuration_hash, ok.json().version);

    dir.write('admin.yaml', `_format_version: "3.0"\nadmin:\n  token: ${TOKEN}\nservices:\n  - name: echo\n    port: http\n`);
    const ko = await request(g.admin, '/config/reload', { method: 'POST', headers: bearer(TOKEN) });
    assert.equal(ko.status, 400, ko.body);
    const body = ko.json();
    assert.equal(body.ok, false);
    assert.ok(body.errors.includes(`${file}:6:11: /services/0/port: must be integer`), JSON.stringify(body.errors));
    assert.equal((await request(g.port, '/b/x')).status, 200, 'the running config is untouched');
    assert.equal((await request(g.admin, '/status')).json().configuration_hash, ok.json().version);
  });
});

describe('without a token configured', () => {
  let g: Running;
  before(async () => {
    g = await start(dir.write('no-token.yaml', config(['/a'])));
  });
  after(async () => {
    assert.equal(await g.p.stop('SIGTERM'), 0, g.p.output);
  });

  test('only the status endpoints answer; the rest is 401 telling how to set a token', async () => {
    assert.equal((await request(g.admin, '/status')).status, 200);
    assert.equal((await request(g.admin, '/status/ready')).status, 200);
    for (const [method, path] of [['GET', '/'], ['GET', '/config'], ['POST', '/config/reload']] as const) {
      for (const headers of [{}, bearer('anything-at-all-0123456789'), bearer('')]) {
        const r = await request(g.admin, path, { method, headers });
        assertUnauthorized(r, `${method} ${path} ${JSON.stringify(headers)}`);
        const detail = r.json().detail as string;
        assert.match(detail, /admin\.token/);
        assert.match(detail, /PALISADE_ADMIN_TOKEN/);
      }
    }
  });
});

test('PALISADE_ADMIN_TOKEN sets the token (and wins over admin.token)', async () => {
  const g = await start(dir.write('env-token.yaml', config(['/a'], { token: TOKEN })), { PALISADE_ADMIN_TOKEN: ENV_TOKEN });
  try {
    assert.equal((await request(g.admin, '/', { headers: bearer(ENV_TOKEN) })).status, 200);
    assertUnauthorized(await request(g.admin, '/', { headers: bearer(TOKEN) }), 'the file token is overridden');
    const cfg = await request(g.admin, '/config', { headers: bearer(ENV_TOKEN) });
    assert.ok(!cfg.body.includes(ENV_TOKEN) && !cfg.body.includes(TOKEN));
  } finally {
    assert.equal(await g.p.stop('SIGTERM'), 0, g.p.output);
  }
});

function externalIPv4(): string | null {
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  return null;
}

test('the admin listener binds loopback (127.0.0.1:8001) by default', async (t) => {
  if (await portAnswers(8001)) return t.skip('127.0.0.1:8001 is in use on this machine');
  const [port] = await freePorts(1);
  const p = spawnPalisade(['start', '--config', dir.write('default-admin.yaml', config(['/a'])), '--listen', `127.0.0.1:${port}`, '--tls-listen', 'off', '--workers', '1']);
  try {
    const started = await p.waitForLog((l) => l.msg === 'palisade started', 20000, "'palisade started'");
    assert.equal(started.admin, '127.0.0.1:8001');
    assert.equal((await request(8001, '/status')).status, 200);
    const ext = externalIPv4();
    // Reported as skipped (not silently passed) where the machine has no external IPv4.
    await t.test('not reachable on an external interface', { skip: ext === null && 'no external IPv4 on this machine' }, async () => {
      assert.equal(await portAnswers(8001, ext!), false, `the admin listener must not answer on ${ext}`);
    });
  } finally {
    assert.equal(await p.stop('SIGTERM'), 0, p.output);
  }
});
