/**
 * Config as code against a real `palisade start` process: `palisade config
 * diff` (exit 0 same / 2 different / 1 error, secrets never printed), `config
 * sync` (applied at once, written to the gateway's file, kept across a restart,
 * an invalid file changes nothing and its errors name line:column), `config
 * dump` (masked by default; a masked dump diffs as "no changes" and syncs back
 * keeping the secrets, plugin headers included), two-file diffs, settings
 * sections (audit), token, connection and usage errors, the admin API's body
 * limit, and syncs with workers (one that does not apply it is reported).
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { eventually, freePorts, request, sleep, runPalisade, spawnPalisade, TempDir, startUpstream, type PalisadeProcess, type RunResult, type Upstream } from '../helpers/process.ts';

const TOKEN = 'gitops-admin-token-0123456789';
/** Every secret below contains this: no output may. */
const S = 'S3CRET';
const KEY1 = `alice-key-${S}-one`;
const KEY2 = `alice-key-${S}-two`;
const PW1 = `bob-pw-${S}-one`;
const PW2 = `bob-pw-${S}-two`;
const REDIS_PW = `redis-pw-${S}`;
const URL_PW = `url-pw-${S}`;
/** Headers log plugins send to their collectors (every value of a plugin's `headers` map is a secret, whatever its name). */
const HEC1 = `hec-${S}-one`;
const HEC2 = `hec-${S}-two`;
const COOKIE = `cookie-${S}`;
const TENANT = `tenant-${S}`;
const HONEY = `honeycomb-${S}`;
const MASK = '[REDACTED]';

const dir = new TempDir();
let upstream: Upstream;
before(async () => {
  upstream = await startUpstream();
});
after(async () => {
  await upstream.close();
  dir.remove();
});

interface Shape {
  routes?: string[];
  readTimeout?: number;
  aliceKey?: string;
  bobPassword?: string;
  cors?: boolean;
  logLevel?: string;
  hecToken?: string;
}

/** The gateway's config as YAML; each option changes one entity. */
function yaml(o: Shape = {}): string {
  return `_format_version: "3.0"
server:
  access_log: "off"
  watch: true
  log_level: ${o.logLevel ?? 'info'}
services:
  - name: echo
    url: ${upstream.url}
    read_timeout: ${o.readTimeout ?? 60000}
    routes:
${(o.routes ?? ['a']).map((r) => `      - name: ${r}\n        paths: ["/${r}"]`).join('\n')}
    plugins:
      - name: key-auth
  - name: vault
    url: http://svc:${URL_PW}@127.0.0.1:9/
    routes:
      - name: limited
        paths: ["/limited"]
        plugins:
          - name: rate-limiting
            config: { minute: 5, policy: redis, redis: { host: 127.0.0.1, port: 9, password: "${REDIS_PW}" } }
consumers:
  - username: alice
    keyauth_credentials:
      - key: "${o.aliceKey ?? KEY1}"
  - username: bob
    basicauth_credentials:
      - username: bob
        password: "${o.bobPassword ?? PW1}"
plugins:
  - name: http-log
    config:
      http_endpoint: ${upstream.url}/logs
      headers: { Authorization: "Splunk ${o.hecToken ?? HEC1}", Cookie: "session=${COOKIE}", X-Tenant: "${TENANT}" }
  - name: opentelemetry
    config:
      traces_endpoint: ${upstream.url}/v1/traces
      headers: { x-honeycomb-team: "${HONEY}" }
${o.cors === false ? '' : '  - name: cors\n'}`;
}

interface Running {
  p: PalisadeProcess;
  port: number;
  admin: number;
}

async function start(file: string, workers = 1, env: Record<string, string> = {}): Promise<Running> {
  const [port, admin] = (await freePorts(2)) as [number, number];
  const p = spawnPalisade(['start', '--config', file, '--listen', `127.0.0.1:${port}`, '--tls-listen', 'off', '--admin-listen', `127.0.0.1:${admin}`, '--workers', String(workers)], {
    env: { PALISADE_ADMIN_TOKEN: TOKEN, ...env },
  });
  await p.waitForLog((l) => l.msg === 'palisade started', 30000, "'palisade started'");
  return { p, port, admin };
}

/** `palisade config …` against the gateway (token and admin URL from the environment, as in CI). */
function cli(g: Running | null, args: string[], env: Record<string, string> = {}): Promise<RunResult> {
  const base: Record<string, string> = g ? { PALISADE_ADMIN_URL: `http://127.0.0.1:${g.admin}`, PALISADE_ADMIN_TOKEN: TOKEN } : {};
  return runPalisade(['config', ...args], { env: { ...base, ...env }, timeoutMs: 60000 });
}

function noSecrets(r: RunResult | string, what: string): void {
  const text = typeof r === 'string' ? r : r.stdout + r.stderr;
  assert.ok(!text.includes(S), `${what}: a secret was printed:\n${text}`);
}

const withKey = (key: string) => ({ headers: { apikey: key } });
const auth = { authorization: `Bearer ${TOKEN}` };

describe('a single-process gateway', () => {
  let g: Running;
  let file: string;
  before(async () => {
    file = dir.write('gateway.yaml', yaml());
    g = await start(file);
  });
  after(async () => {
    await g.p.kill();
  });

  test('diff of the running file: no changes, exit 0', async () => {
    const r = await cli(g, ['diff', file]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(r.stdout.trim(), 'no changes');
  });

  test('diff with added, changed and removed entities: exit 2, field-level lines, secrets masked', async () => {
    const next = dir.write('next.yaml', yaml({ routes: ['a', 'b'], readTimeout: 5000, aliceKey: KEY2, bobPassword: PW2, cors: false }));
    const r = await cli(g, ['diff', next]);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    const lines = r.stdout.trim().split('\n');
    for (const expected of [
      '~ keyauth_credentials #1 (consumer alice)',
      '    key: changed (secret, masked)',
      '~ basicauth_credentials bob (consumer bob)',
      '    password: changed (secret, masked)',
      '~ service echo',
      '    read_timeout: 60000 → 5000',
      '+ route b (service echo)',
      '- plugin cors (global)',
      '5 changes: 1 to add, 3 to change, 1 to remove',
    ]) {
      assert.ok(lines.includes(expected), `missing line '${expected}' in:\n${r.stdout}`);
    }
    assert.equal(lines.length, 9, r.stdout);
    noSecrets(r, 'diff');

    const j = await cli(g, ['diff', next, '--json']);
    assert.equal(j.code, 2, j.stderr);
    const d = JSON.parse(j.stdout);
    assert.deepEqual(d.summary, { add: 1, change: 3, remove: 1 });
    assert.equal(d.same, false);
    const route = d.changes.find((c: any) => c.action === 'add');
    assert.equal(route.kind, 'route');
    assert.deepEqual(route.entity.paths, ['/b']);
    noSecrets(j, 'diff --json');
  });

  test("plugin headers are secrets whatever their name: masked in GET /config and in a diff's old and new values", async () => {
    const live = await request(g.admin, '/config', { headers: auth });
    assert.equal(live.status, 200);
    noSecrets(live.body, 'GET /config');
    const plugin = (name: string) => live.json().plugins.find((p: { name: string }) => p.name === name).config;
    assert.deepEqual(plugin('http-log').headers, { Authorization: MASK, Cookie: MASK, 'X-Tenant': MASK });
    assert.deepEqual(plugin('opentelemetry').headers, { 'x-honeycomb-team': MASK });
    assert.equal(plugin('http-log').http_endpoint, `${upstream.url}/logs`, 'other fields are shown');

    const next = dir.write('hec.yaml', yaml({ hecToken: HEC2 }));
    const r = await cli(g, ['diff', next]);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), ['~ plugin http-log (global)', '    config.headers.Authorization: changed (secret, masked)', '1 change: 0 to add, 1 to change, 0 to remove']);
    noSecrets(r, 'diff of a header');
    const j = await cli(g, ['diff', next, '--json']);
    assert.deepEqual(JSON.parse(j.stdout).changes[0].fields, [{ path: 'config.headers.Authorization', before: MASK, after: MASK }]);
    noSecrets(j, 'diff --json of a header');
  });

  test('sync applies at once, writes the gateway file, and the watcher seeing it changes nothing', async () => {
    assert.equal((await request(g.port, '/b', withKey(KEY1))).status, 404);
    const text = yaml({ routes: ['a', 'b'], aliceKey: KEY2 });
    const next = dir.write('sync.yaml', text);
    const r = await cli(g, ['sync', next]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^\+ route b \(service echo\)$/m);
    assert.match(r.stdout, /^synced .*sync\.yaml: 1 added, 1 changed, 0 removed; config version [0-9a-f]{12}, written to .*gateway\.yaml$/m);
    noSecrets(r, 'sync');

    assert.equal((await request(g.port, '/b', withKey(KEY2))).status, 200, 'the new route and key answer right after the sync');
    assert.equal((await request(g.port, '/a', withKey(KEY1))).status, 401, 'the old key is gone');
    assert.equal(readFileSync(file, 'utf8'), text, "the gateway's config file is the synced file");

    const version = (await request(g.admin, '/status')).json().configuration_hash;
    await sleep(1000); // the file watcher fires on the rename (debounced 200 ms)
    assert.equal((await request(g.admin, '/status')).json().configuration_hash, version);
    assert.ok(!g.p.logs().some((l) => l.msg === 'config reloaded' || String(l.msg).includes('rejected')), g.p.output);
    assert.equal((await cli(g, ['diff', next])).code, 0, 'nothing left to sync');
  });

  test('an invalid sync changes nothing and prints FILE:LINE:COLUMN errors', async () => {
    const before = readFileSync(file, 'utf8');
    const bad = dir.write('bad.yaml', yaml({ routes: ['a', 'c'] }).replace('    read_timeout: 60000\n', '    read_timeout: soon\n    colour: blue\n'));
    const r = await cli(g, ['sync', bad]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.ok(r.stderr.includes(`${bad}:9:19: /services/0/read_timeout: must be integer`), r.stderr);
    assert.ok(r.stderr.includes(`${bad}:10:5: /services/0/colour: unknown field 'colour'`), r.stderr);
    assert.match(r.stderr, /2 errors; the gateway refused it; nothing was changed/);
    assert.equal(readFileSync(file, 'utf8'), before, 'the file is untouched');
    assert.equal((await request(g.port, '/c', withKey(KEY2))).status, 404);

    // Valid for the schema, refused when compiled (key-auth's anonymous consumer does not exist).
    const anon = dir.write('anon.yaml', yaml({ routes: ['a', 'c'], aliceKey: KEY2 }).replace('      - name: key-auth\n', '      - name: key-auth\n        config: { anonymous: nobody }\n'));
    const c = await cli(g, ['sync', anon]);
    assert.equal(c.code, 1, c.stdout + c.stderr);
    assert.match(c.stderr, new RegExp(`^${anon.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:\\d+:\\d+: /services/0/plugins/0/config: .*nobody`, 'm'));
    assert.equal(readFileSync(file, 'utf8'), before, 'the file is untouched');
    assert.equal((await request(g.port, '/c', withKey(KEY2))).status, 404, 'nothing of it runs');
    assert.equal((await request(g.port, '/b', withKey(KEY2))).status, 200);
  });

  test('dump: masked by default, round-trips (diff → no changes), and a masked dump syncs back keeping the secrets', async () => {
    const out = dir.file('dump.yaml');
    const r = await cli(g, ['dump', '-o', out]);
    assert.equal(r.code, 0, r.stderr);
    const dumped = readFileSync(out, 'utf8');
    noSecrets(dumped, 'the dump');
    assert.match(dumped, /key: "\[REDACTED\]"/);
    assert.match(dumped, /url: http:\/\/svc:\[REDACTED\]@127\.0\.0\.1:9\//);
    assert.match(dumped, /x-honeycomb-team: "\[REDACTED\]"/);

    const d = await cli(g, ['diff', out]);
    assert.equal(d.code, 0, d.stdout + d.stderr);

    const s = await cli(g, ['sync', out]);
    assert.equal(s.code, 0, s.stdout + s.stderr);
    assert.match(s.stdout, /no changes/);
    assert.equal((await request(g.port, '/b', withKey(KEY2))).status, 200, 'the key survived the masked round trip');
    const onDisk = readFileSync(file, 'utf8');
    for (const secret of [KEY2, REDIS_PW, URL_PW, HEC1, COOKIE, TENANT, HONEY]) assert.ok(onDisk.includes(secret), `the file on disk holds the real secrets, not masks: ${secret}`);

    const json = await cli(g, ['dump', '--format', 'json']);
    assert.equal(json.code, 0, json.stderr);
    assert.equal(JSON.parse(json.stdout).consumers[0].keyauth_credentials[0].key, '[REDACTED]');
    noSecrets(json, 'dump --format json');

    const clear = await cli(g, ['dump', '--include-secrets']);
    assert.equal(clear.code, 0, clear.stderr);
    assert.ok(clear.stdout.includes(KEY2) && clear.stdout.includes(PW1) && clear.stdout.includes(REDIS_PW), '--include-secrets writes them');
  });

  test('a mask where there is nothing to keep is an error at its line:column, never a literal value', async () => {
    const text = yaml({ routes: ['a', 'b'] }).replace('consumers:\n', 'consumers:\n  - username: carol\n    keyauth_credentials:\n      - key: "[REDACTED]"\n');
    const masked = dir.write('masked.yaml', text);
    const r = await cli(g, ['diff', masked]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.ok(r.stderr.includes(`${masked}:28:14: /consumers/0/keyauth_credentials/0/key: '[REDACTED]' keeps the gateway's current value, but keyauth_credentials #1 (consumer carol) is new`), r.stderr);
    assert.equal((await cli(g, ['sync', masked])).code, 1);
    assert.equal((await request(g.port, '/a', withKey('[REDACTED]'))).status, 401);
  });

  test('wrong or missing token: a clear error, exit 1', async () => {
    const wrong = await cli(g, ['diff', file], { PALISADE_ADMIN_TOKEN: 'not-the-token-0123456789' });
    assert.equal(wrong.code, 1, wrong.stdout + wrong.stderr);
    assert.match(wrong.stderr, /^palisade: the admin API at http:\/\/127\.0\.0\.1:\d+ answered 401 Unauthorized: the token was refused; pass --token or set PALISADE_ADMIN_TOKEN/m);
    const none = await runPalisade(['config', 'sync', file, '--admin', `http://127.0.0.1:${g.admin}`]);
    assert.equal(none.code, 1, none.stdout + none.stderr);
    assert.match(none.stderr, /401 Unauthorized: no token was given/);
    const flag = await runPalisade(['config', 'dump', '--admin', `http://127.0.0.1:${g.admin}`, '--token', TOKEN, '--format', 'json']);
    assert.equal(flag.code, 0, '--token works as well as the variable');
  });

  test('admin API: PUT /config bodies are limited, methods checked, the token required', async () => {
    // Refused on its declared length, before it is read (a client writing 11 MiB meanwhile would see the connection close).
    const big = await request(g.admin, '/config', { method: 'PUT', headers: { ...auth, 'content-length': String(11 * 1024 * 1024) }, body: 'services: []\n' });
    assert.equal(big.status, 413);
    assert.match(big.json().detail, /exceeds 10485760 bytes/);
    assert.equal(big.headers['content-type'], 'application/problem+json');
    const post = await request(g.admin, '/config', { method: 'POST', headers: auth, body: '{}' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.allow, 'GET, PUT');
    assert.equal((await request(g.admin, '/config', { method: 'PUT', body: yaml() })).status, 401);
    assert.equal((await request(g.admin, '/config/diff', { method: 'POST', body: yaml() })).status, 401);
    const yamlDump = await request(g.admin, '/config?format=yaml', { headers: auth });
    assert.equal(yamlDump.status, 200);
    assert.match(String(yamlDump.headers['content-type']), /^application\/yaml/);
    noSecrets(yamlDump.body, 'GET /config?format=yaml');
  });

  test('the synced config survives a restart', async () => {
    await g.p.stop('SIGTERM');
    g = await start(file);
    assert.equal((await request(g.port, '/b', withKey(KEY2))).status, 200);
    assert.equal((await cli(g, ['diff', dir.file('sync.yaml')])).code, 0);
  });
});

describe('without a gateway', () => {
  test('two files are compared locally: exit 2 with the changes, 0 when the same', async () => {
    const a = dir.write('a.yaml', yaml());
    const b = dir.write('b.yaml', yaml({ routes: ['a', 'b'], bobPassword: PW2 }));
    const r = await cli(null, ['diff', a, b]);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), [
      '~ basicauth_credentials bob (consumer bob)',
      '    password: changed (secret, masked)',
      '+ route b (service echo)',
      '2 changes: 1 to add, 1 to change, 0 to remove',
    ]);
    noSecrets(r, 'two-file diff');
    const same = await cli(null, ['diff', a, dir.write('a-json.json', JSON.stringify(parseYaml(yaml())))]);
    assert.equal(same.code, 0, 'YAML and JSON of the same config: no changes');
    const dump = await cli(null, ['dump', a, '--format', 'json']);
    assert.equal(dump.code, 0, dump.stderr);
    assert.equal(JSON.parse(dump.stdout).services[0].routes[0].strip_path, true, 'defaults filled');
    noSecrets(dump, 'dump of a file');
  });

  test('masked keys are kept by position only while that is certain: appending works, removing one is refused', async () => {
    const a = dir.write('keys-a.yaml', yaml().replace(`      - key: "${KEY1}"\n`, `      - key: "${KEY1}"\n      - key: "${KEY2}"\n`));
    const dump = await cli(null, ['dump', a]);
    assert.equal(dump.code, 0, dump.stderr);
    noSecrets(dump, 'dump of a file');
    const edit = (name: string, change: (creds: object[]) => void) => {
      const cfg = parseYaml(dump.stdout);
      change(cfg.consumers[0].keyauth_credentials);
      return dir.write(name, JSON.stringify(cfg, null, 2));
    };
    const appended = await cli(null, ['diff', a, edit('keys-append.json', (c) => c.push({ key: `carol-${S}` }))]);
    assert.equal(appended.code, 2, appended.stdout + appended.stderr);
    assert.deepEqual(appended.stdout.trim().split('\n'), ['+ keyauth_credentials #3 (consumer alice)', '1 change: 1 to add, 0 to change, 0 to remove']);
    // Removing the first: the mask now at position 1 must not become KEY1, the key being revoked.
    const removed = edit('keys-remove.json', (c) => c.shift());
    const r = await cli(null, ['diff', a, removed]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /keys-remove\.json:\d+:\d+: \/consumers\/0\/keyauth_credentials\/0\/key: '\[REDACTED\]' keeps the gateway's current value, but keyauth_credentials #1 \(consumer alice\) cannot be told apart/);
    noSecrets(r, 'refused diff');
  });

  test('every entity kind: matched by name, scope + instance_name, certificate, position; order changes reported', async () => {
    const tls = (f: string) => readFileSync(new URL(`../fixtures/tls/${f}`, import.meta.url), 'utf8');
    const cert = (name: string, snis: string[]) => ({ cert: tls(`${name}.crt`), key: tls(`${name}.key`), snis });
    const file = (name: string, o: { certs: object[]; groups: string[]; targets: object[]; routes: object[]; plugins: object[] }) =>
      dir.write(name, JSON.stringify({
        _format_version: '3.0',
        certificates: o.certs,
        consumer_groups: o.groups.map((g) => ({ name: g })),
        consumers: [{ username: 'alice', groups: o.groups }],
        upstreams: [{ name: 'up', targets: o.targets }],
        services: [{ name: 's', host: 'up', routes: o.routes }],
        plugins: o.plugins,
      }));
    const a = file('kinds-a.json', {
      certs: [cert('api', ['api.example.com']), cert('other', ['other.example.com'])],
      groups: ['gold'],
      targets: [{ target: '10.0.0.1:80' }, { target: '10.0.0.2:80' }],
      routes: [{ paths: ['/x'] }, { name: 'r1', paths: ['/r1'] }, { name: 'r2', paths: ['/r2'] }],
      plugins: [{ name: 'request-termination', instance_name: 'maint', route: 'r1', config: { status_code: 503 } }, { name: 'cors' }],
    });
    const b = file('kinds-b.json', {
      certs: [cert('other', ['other.example.com']), cert('api', ['api.example.com', 'api2.example.com'])],
      groups: ['gold', 'silver'],
      targets: [{ target: '10.0.0.1:80', weight: 50 }, { target: '10.0.0.3:80' }],
      routes: [{ paths: ['/y'] }, { name: 'r2', paths: ['/r2'] }, { name: 'r1', paths: ['/r1'] }],
      plugins: [{ name: 'request-termination', instance_name: 'maint', route: 'r1', config: { status_code: 418 } }],
    });
    const r = await cli(null, ['diff', a, b]);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), [
      '~ certificate api.example.com, api2.example.com',
      '    snis: ["api.example.com"] → ["api.example.com","api2.example.com"]',
      '~ certificates reordered',
      '    now: certificate other.example.com; certificate api.example.com, api2.example.com',
      '+ consumer_group silver',
      '~ consumer alice',
      '    groups: ["gold"] → ["gold","silver"]',
      '+ target 10.0.0.3:80 (upstream up)',
      '~ target 10.0.0.1:80 (upstream up)',
      '    weight: 100 → 50',
      '- target 10.0.0.2:80 (upstream up)',
      '~ route (service s, paths /y)',
      '    paths: ["/x"] → ["/y"]',
      '~ routes reordered',
      '    now: route (service s, paths /y); route r2 (service s); route r1 (service s)',
      '~ plugin request-termination "maint" (route r1)',
      '    config.status_code: 503 → 418',
      '- plugin cors (global)',
      '11 changes: 2 to add, 7 to change, 2 to remove',
    ]);
    const j = await cli(null, ['diff', a, b, '--json']);
    assert.ok(!j.stdout.includes('PRIVATE KEY'), 'certificate keys are masked in the JSON too');
  });

  test('every top-level settings section is compared: an audit-only change is a change, and a masked signing key is kept', async () => {
    const pem = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const withAudit = `${yaml()}audit:\n  enabled: false\n  signing_key: ${JSON.stringify(pem)}\n`;
    const a = dir.write('audit-a.yaml', withAudit);
    const b = dir.write('audit-b.yaml', withAudit.replace('enabled: false', 'enabled: true'));
    const r = await cli(null, ['diff', a, b]);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), ['~ audit settings', '    enabled: false → true', '1 change: 0 to add, 1 to change, 0 to remove']);
    const dump = await cli(null, ['dump', a]);
    assert.equal(dump.code, 0, dump.stderr);
    assert.ok(!dump.stdout.includes('PRIVATE KEY'), 'the signing key is masked');
    const same = await cli(null, ['diff', a, dir.write('audit-dump.yaml', dump.stdout)]);
    assert.equal(same.code, 0, `a masked dump keeps the signing key: ${same.stdout}${same.stderr}`);
    assert.equal(same.stdout.trim(), 'no changes');
  });

  test('a usage error says that nothing was compared (exit 2, like every usage error)', async () => {
    const r = await cli(null, ['diff', '--colour', dir.file('never-read.yaml')]);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.equal(r.stdout, '', 'no diff output: nothing to mistake for "different"');
    assert.match(r.stderr, /unknown option '--colour'/);
    assert.match(r.stderr, /^palisade config diff: usage error, nothing was compared \(exit 2 here is not 'different'\); usage: palisade config diff FILE \| OLD NEW/m);
  });

  test('an unreachable admin API: a clear error, exit 1', async () => {
    const [port] = await freePorts(1);
    const r = await cli(null, ['diff', dir.write('u.yaml', yaml()), '--admin', `http://127.0.0.1:${port}`, '--token', TOKEN]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, new RegExp(`^palisade: cannot reach the admin API at http://127\\.0\\.0\\.1:${port}: connection refused`, 'm'));
  });
});

describe('a gateway with two workers', () => {
  test('sync reaches every worker; a JSON config file stays JSON', async () => {
    const file = dir.write('cluster.json', JSON.stringify(parseYaml(yaml()), null, 2));
    const g = await start(file, 2);
    try {
      const r = await cli(g, ['sync', dir.write('cluster-next.yaml', `${yaml({ routes: ['a', 'z'], logLevel: 'warn' })}audit:\n  fsync: always\n`)]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /^~ server settings\n    log_level: "info" → "warn"$/m);
      assert.match(r.stdout, /^note: server\.log_level changed: it takes effect at the next restart$/m);
      assert.match(r.stdout, /^~ audit settings\n    fsync: "interval" → "always"$/m);
      assert.match(r.stdout, /^note: audit\.fsync changed: it takes effect at the next restart$/m);
      // The primary sends the config to each worker; then every new connection, whichever worker takes it, serves it.
      await eventually(async () => (await request(g.port, '/z', withKey(KEY1))).status === 200, 10000, 'the synced route');
      await sleep(300);
      for (let i = 0; i < 10; i++) assert.equal((await request(g.port, '/z', withKey(KEY1))).status, 200, `request ${i}${g.p.output}`);
      const written = JSON.parse(readFileSync(file, 'utf8'));
      assert.deepEqual(written.services[0].routes.map((x: { name: string }) => x.name), ['a', 'z'], 'the YAML synced is written as JSON');
    } finally {
      await g.p.kill();
    }
  });

  test('a worker that does not apply a sync: 500 naming it, sync exits 1 and says what to do; syncing again completes it', async () => {
    const noWatch = (text: string) => text.replace('  watch: true\n', '  watch: false\n');
    const file = dir.write('stuck.yaml', noWatch(yaml()));
    const g = await start(file, 2, { PALISADE_WORKER_APPLY_TIMEOUT: '3000' });
    const next = dir.write('stuck-next.yaml', noWatch(yaml({ routes: ['a', 's'] })));
    try {
      const pids = g.p.logs().filter((l) => l.msg === 'worker started').map((l) => l.pid as number);
      assert.equal(pids.length, 2, g.p.output);
      const stuck = pids[0]!;
      process.kill(stuck, 'SIGSTOP'); // a worker that hangs: it cannot answer
      try {
        const r = await cli(g, ['sync', next]);
        assert.equal(r.code, 1, r.stdout + r.stderr);
        assert.match(r.stdout, /^\+ route s \(service echo\)$/m);
        assert.match(r.stderr, new RegExp(`^palisade: worker \\d+ \\(pid ${stuck}\\) did not apply config version [0-9a-f]{12}: it did not answer within 3 s$`, 'm'));
        assert.match(r.stderr, /^palisade: config sync incomplete: .*stuck-next\.yaml was written to .*stuck\.yaml and runs on 1 of 2 workers; the others still run the previous config\. .*run 'palisade config sync .*stuck-next\.yaml' again/m);
        assert.doesNotMatch(r.stdout, /^synced /m);

        const put = await request(g.admin, '/config', { method: 'PUT', headers: auth, body: readFileSync(next, 'utf8') });
        assert.equal(put.status, 500, put.body);
        const body = put.json();
        assert.equal(body.workers, 2);
        assert.deepEqual(body.failed_workers.map((f: { pid: number }) => f.pid), [stuck]);
        assert.match(body.detail, /runs on 1 of 2 workers/);
      } finally {
        process.kill(stuck, 'SIGCONT');
      }
      const again = await cli(g, ['sync', next]);
      assert.equal(again.code, 0, again.stdout + again.stderr);
      assert.match(again.stdout, /^synced .*: no changes; config version/m);
      for (let i = 0; i < 10; i++) assert.equal((await request(g.port, '/s', withKey(KEY1))).status, 200, `request ${i}${g.p.output}`);
    } finally {
      await g.p.kill();
    }
  });
});
