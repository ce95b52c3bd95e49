/**
 * Admin API requests in the audit trail of a real `palisade start`: paths are
 * clipped (never the query string), refused requests are aggregated per
 * client address (one record at once, the rest counted in the next), and
 * GET /config?secrets=include is recorded as a read of the secrets.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { AdminAuditor } from '../../src/audit/admin.ts';
import type { AdminAuditEvent } from '../../src/audit/entries.ts';
import { eventually, freePorts, request, runPalisade, spawnPalisade, TempDir, type PalisadeProcess } from '../helpers/process.ts';

const dir = new TempDir();
const TOKEN = 'audit-admin-token-0123456789';
let p: PalisadeProcess;
let adminPort: number;
let auditFile: string;
let pubFile: string;

before(async () => {
  const [port, admin] = (await freePorts(2)) as [number, number];
  adminPort = admin;
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const keyFile = dir.write('audit.key', privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
  pubFile = dir.write('audit.pub', publicKey.export({ type: 'spki', format: 'pem' }) as string);
  auditFile = dir.file('audit.log');
  const cfg = dir.write(
    'palisade.json',
    JSON.stringify({
      _format_version: '3.0',
      server: { access_log: 'off', watch: false },
      admin: { token: TOKEN },
      audit: { enabled: true, path: auditFile, signing_key: keyFile },
      services: [{ name: 'svc', url: 'http://127.0.0.1:9', routes: [{ name: 'r', paths: ['/r'] }] }],
    }),
  );
  p = spawnPalisade(['start', '--config', cfg, '--listen', `127.0.0.1:${port}`, '--tls-listen', 'off', '--admin-listen', `127.0.0.1:${admin}`, '--workers', '1']);
  await p.waitForLog((l) => l.msg === 'palisade started', 20000, "'palisade started'");
});

after(async () => {
  await p?.kill();
  dir.remove();
});

test('admin requests: clipped paths, refusals aggregated per address, secrets=include recorded as a read of the secrets', async () => {
  const auth = { authorization: `Bearer ${TOKEN}` };
  assert.equal((await request(adminPort, '/config?secrets=include', { headers: auth })).status, 200);
  assert.equal((await request(adminPort, '/config', { headers: auth })).status, 200);
  const long = `/${'x'.repeat(500)}`;
  assert.equal((await request(adminPort, `${long}?token=do-not-record-me`)).status, 401);
  for (let i = 0; i < 20; i++) assert.equal((await request(adminPort, '/config', { headers: { authorization: 'Bearer wrong-token-wrong-token' } })).status, 401);
  // Stopping closes the admin listener, which records what it still counts.
  assert.equal(await p.stop('SIGTERM', 20000), 0, p.output);

  const text = readFileSync(auditFile, 'utf8');
  assert.ok(!text.includes('do-not-record-me'), 'no query string');
  const admin = text.split('\n').filter(Boolean).map((l) => JSON.parse(l)).filter((r) => r.type === 'admin');
  const [secrets, plain, ...denied] = admin;
  assert.deepEqual(secrets.subject, { method: 'GET', path: '/config', secrets: 'include' });
  assert.equal(secrets.decision, 'allow');
  assert.equal(secrets.reason, 'GET /config?secrets=include answered 200: the config was read with its secrets');
  assert.deepEqual(plain.subject, { method: 'GET', path: '/config' });
  assert.equal(plain.reason, 'GET /config answered 200');
  // 21 refusals from one address within 10 s: two records, the first at once, the other counting the rest.
  assert.equal(denied.length, 2, JSON.stringify(denied));
  assert.deepEqual(denied.map((r) => [r.decision, r.status, r.actor.ip, r.count]), [['deny', 401, '127.0.0.1', 1], ['deny', 401, '127.0.0.1', 20]]);
  assert.equal(denied[0].subject.path, `${long.slice(0, 200)}…`);
  assert.equal(denied[0].reason, 'no admin token');
  assert.deepEqual(denied[1].subject, { method: 'GET', path: '/config' });
  assert.match(denied[1].reason, /^20 more admin requests refused since \S+ \(the last: an invalid admin token\)$/);

  const v = await runPalisade(['audit', 'verify', auditFile, '--key', pubFile, '--require-final-checkpoint']);
  assert.equal(v.code, 0, v.stdout + v.stderr);
});

test('the refusal window: at most one record per address per window; what came meanwhile is recorded when it ends', async () => {
  const WINDOW = 400;
  const SLACK = 5; // the sink takes its timestamps a moment after the auditor's own
  const events: (AdminAuditEvent & { at: number })[] = [];
  const auditor = new AdminAuditor((e) => events.push({ ...e, at: Date.now() }), WINDOW);
  const srv = createServer((req, res) => {
    const [pathname, query = ''] = (req.url ?? '/').split('?');
    auditor.track(req, res, { pathname: pathname!, searchParams: new URLSearchParams(query) });
    res.statusCode = 401;
    res.end();
  });
  await new Promise<void>((ok) => srv.listen(0, '127.0.0.1', ok));
  const port = (srv.address() as AddressInfo).port;
  try {
    for (let i = 0; i < 5; i++) assert.equal((await request(port, `/x${i}`)).status, 401);
    await eventually(() => events.length === 2, 10000, 'the count recorded once the window is over');
    assert.deepEqual(events.map((e) => [e.count, e.path]), [[1, '/x0'], [4, '/x4']]);
    assert.ok(events[1]!.at - events[0]!.at >= WINDOW - SLACK);
    // Quiet for a window: the next refusal is recorded at once again.
    await eventually(() => Date.now() - events[1]!.at >= WINDOW, 10000, 'a quiet window');
    assert.equal((await request(port, '/again')).status, 401);
    await eventually(() => events.length === 3, 10000, 'the next refusal');
    assert.deepEqual([events[2]!.count, events[2]!.path], [1, '/again']);
    assert.ok(events[2]!.at - events[1]!.at >= WINDOW - SLACK);
  } finally {
    auditor.flush();
    await new Promise((ok) => srv.close(ok));
  }
});
