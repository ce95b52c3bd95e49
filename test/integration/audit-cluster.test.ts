/**
 * The audit trail of a real `palisade start --workers 2`: the workers'
 * security decisions, config reloads (SIGHUP, admin API) and admin API
 * requests form ONE chain written by the primary, ended by a final checkpoint
 * at shutdown, which `palisade audit verify --require-final-checkpoint` accepts.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { eventually, freePorts, request, runPalisade, spawnPalisade, startUpstream, TempDir, type PalisadeProcess, type Upstream } from '../helpers/process.ts';

const dir = new TempDir();
const TOKEN = 'audit-admin-token-0123456789';
const KEY = 'worker-key-0123456789';
let upstream: Upstream;
let p: PalisadeProcess;
let port: number;
let adminPort: number;
let cfgFile: string;
let auditFile: string;
let pubFile: string;

function config(extraRoute = false): string {
  return JSON.stringify({
    _format_version: '3.0',
    server: { access_log: 'off', watch: false, shutdown_timeout: 2000 },
    admin: { token: TOKEN },
    audit: { enabled: true, path: auditFile, signing_key: dir.file('audit.key'), checkpoint_records: 10 },
    services: [
      {
        name: 'svc',
        url: upstream.url,
        routes: [{ name: 'keyed', paths: ['/keyed'], plugins: [{ name: 'key-auth' }] }, ...(extraRoute ? [{ name: 'extra', paths: ['/extra'] }] : [])],
      },
    ],
    consumers: [{ username: 'bob', keyauth_credentials: [{ key: KEY }] }],
  });
}

const records = () => readFileSync(auditFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));

before(async () => {
  upstream = await startUpstream();
  [port, adminPort] = (await freePorts(2)) as [number, number];
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  dir.write('audit.key', privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
  pubFile = dir.write('audit.pub', publicKey.export({ type: 'spki', format: 'pem' }) as string);
  auditFile = dir.file('audit.log');
  cfgFile = dir.write('palisade.json', config());
  p = spawnPalisade(['start', '--config', cfgFile, '--listen', `127.0.0.1:${port}`, '--tls-listen', 'off', '--admin-listen', `127.0.0.1:${adminPort}`, '--workers', '2']);
  await p.waitForLog((l) => l.msg === 'palisade started', 30000, "'palisade started'");
});

after(async () => {
  await p?.kill();
  await upstream?.close();
  dir.remove();
});

test('two workers, one chain: decisions, config changes and admin requests, verified after shutdown', async () => {
  const workerPids = p.logs().filter((l) => l.msg === 'worker started').map((l) => l.pid as number);
  assert.equal(workerPids.length, 2, p.output);
  for (let i = 0; i < 20; i++) assert.equal((await request(port, '/keyed', { headers: { apikey: KEY } })).status, 200);
  for (let i = 0; i < 4; i++) assert.equal((await request(port, '/keyed', { headers: { apikey: 'wrong' } })).status, 401);

  dir.write('palisade.json', config(true));
  p.signal('SIGHUP');
  await p.waitForLog((l) => l.msg === 'config reloaded', 15000, 'the reload');
  dir.write('palisade.json', '{ not json');
  const reload = await request(adminPort, '/config/reload', { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(reload.status, 400);
  assert.equal((await request(adminPort, '/config', { headers: { authorization: 'Bearer wrong-token-wrong-token' } })).status, 401);

  await eventually(() => records().filter((r) => r.type === 'decision').length === 24, 15000, '24 decision records');
  assert.equal(await p.stop('SIGTERM', 20000), 0, p.output);

  const recs = records();
  const decisions = recs.filter((r) => r.type === 'decision');
  assert.deepEqual(new Set(decisions.map((r) => r.worker_pid)), new Set(workerPids), 'both workers forwarded records');
  assert.equal(decisions.filter((r) => r.decision === 'authenticated' && r.actor.consumer === 'bob').length, 20);
  assert.equal(decisions.filter((r) => r.decision === 'deny' && r.status === 401).length, 4);
  const changes = recs.filter((r) => r.type === 'config');
  assert.deepEqual(
    changes.map((r) => [r.actor.admin, r.subject.action, r.decision]),
    [['signal', 'reload', 'applied'], ['admin', 'reload', 'rejected']],
  );
  assert.match(changes[1].reason, /1 error: /);
  const admin = recs.filter((r) => r.type === 'admin');
  assert.deepEqual(
    admin.map((r) => [r.subject.method, r.subject.path, r.decision, r.status]),
    [['POST', '/config/reload', 'allow', 400], ['GET', '/config', 'deny', 401]],
  );
  assert.equal(admin[1].reason, 'an invalid admin token');
  assert.equal(admin[1].actor.ip, '127.0.0.1');
  assert.deepEqual(recs.map((r) => r.seq), recs.map((_, i) => i + 1), 'one sequence');

  const v = await runPalisade(['audit', 'verify', auditFile, '--key', pubFile, '--require-final-checkpoint']);
  assert.equal(v.code, 0, v.stdout + v.stderr);
  assert.match(v.stdout, /^OK: 1 file, /);
});
