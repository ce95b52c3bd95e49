/**
 * The audit writer when the disk fails. A real `palisade start` whose file
 * size limit (RLIMIT_FSIZE, set with prlimit) stops its writes mid-record: a
 * short write is retried whole (a multi-byte character cut in two stays
 * intact), records past queue_max_bytes are dropped and told by one chained
 * gap record, and `palisade audit verify` reports the gap. A writer on a file
 * that cannot be fsynced (/dev/null) with fsync: always keeps its records
 * queued instead of taking them as written.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync, statSync, symlinkSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import { AuditWriter } from '../../src/audit/writer.ts';
import { parseConfig } from '../../src/config/load.ts';
import { GatewayMetrics } from '../../src/telemetry/metrics.ts';
import { eventually, freePort, request, runPalisade, spawnPalisade, startUpstream, TempDir, type PalisadeProcess, type Upstream } from '../helpers/process.ts';

const dir = new TempDir();
const KEY = 'disk-key-0123456789';
/** Two bytes each in UTF-8: a write cut at an odd offset into the name splits a character. */
const NAME = 'å'.repeat(100);
let upstream: Upstream;
let keyFile: string;
let pubFile: string;

const records = (file: string) => readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
const prlimit = (pid: number, soft: number | 'unlimited') => execFileSync('prlimit', ['--pid', String(pid), `--fsize=${soft}:unlimited`]);

before(async () => {
  upstream = await startUpstream();
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  keyFile = dir.write('audit.key', privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
  pubFile = dir.write('audit.pub', publicKey.export({ type: 'spki', format: 'pem' }) as string);
});

after(async () => {
  await upstream?.close();
  dir.remove();
});

test('a full disk: the cut record is written again whole, records past queue_max_bytes become a gap record, verify reports it', async () => {
  const file = dir.file('disk/audit.log');
  const port = await freePort();
  const cfg = dir.write(
    'disk.json',
    JSON.stringify({
      _format_version: '3.0',
      server: { access_log: 'off', watch: false },
      audit: { enabled: true, path: file, signing_key: keyFile, fsync: 'always', checkpoint_records: 1000, checkpoint_interval: 3600, queue_max_bytes: 4096 },
      services: [{ name: 'svc', url: upstream.url, routes: [{ name: 'keyed', paths: ['/keyed'], plugins: [{ name: 'key-auth' }] }] }],
      consumers: [{ username: NAME, keyauth_credentials: [{ key: KEY }] }],
    }),
  );
  const p: PalisadeProcess = spawnPalisade(['start', '--config', cfg, '--listen', `127.0.0.1:${port}`, '--tls-listen', 'off', '--admin-listen', 'off', '--workers', '1']);
  try {
    await p.waitForLog((l) => l.msg === 'palisade started', 20000, "'palisade started'");
    const get = async () => assert.equal((await request(port, '/keyed', { headers: { apikey: KEY } })).status, 200);
    await get();
    await eventually(() => records(file).some((r) => r.type === 'decision'), 10000, 'the first decision written');
    // The next record starts at `size`: `{"actor":{"consumer":"` is 22 bytes, so a limit 23 bytes further cuts the first "å" in two.
    const size = statSync(file).size;
    prlimit(p.pid, size + 23);
    await get();
    await p.waitForLog((l) => l.msg === 'audit log write failed; retrying', 15000, 'the write failure');
    // Requests are still answered; their records wait (up to queue_max_bytes), then are dropped and counted.
    for (let i = 0; i < 30; i++) await get();
    await p.waitForLog((l) => String(l.msg).startsWith('audit queue full'), 15000, 'the queue full');
    // Nothing of the cut batch is left in the file (each retry cuts its short write off again).
    await eventually(() => statSync(file).size === size, 5000, 'the file cut back to where the batch began');
    prlimit(p.pid, 'unlimited');
    await eventually(() => records(file).some((r) => r.type === 'gap'), 15000, 'the gap record');
    assert.equal(await p.stop('SIGTERM', 20000), 0, p.output);

    const recs = records(file);
    const decisions = recs.filter((r) => r.type === 'decision');
    assert.ok(decisions.every((r) => r.actor.consumer === NAME), 'no record is corrupted');
    const gaps = recs.filter((r) => r.type === 'gap');
    assert.equal(gaps.length, 1);
    const lost = gaps[0].subject.records as number;
    assert.ok(lost > 0);
    assert.equal(decisions.length + lost, 32, 'every request is either recorded or counted in the gap');
    assert.ok(gaps[0].subject.from <= gaps[0].subject.to);
    assert.match(gaps[0].reason, new RegExp(`^${lost} records were dropped`));
    const warn = p.logs().find((l) => l.msg === 'audit records lost: the log is written again; a gap record says how many');
    assert.equal(warn?.audit_dropped, lost);

    let v = await runPalisade(['audit', 'verify', file, '--key', pubFile, '--require-final-checkpoint']);
    assert.equal(v.code, 1, v.stdout + v.stderr);
    assert.match(v.stdout, new RegExp(`FAILED: ${file}:\\d+: seq ${gaps[0].seq}: ${lost} records were dropped by the gateway .*the chain is intact, the log is incomplete \\(--allow-gaps accepts it\\)`));
    v = await runPalisade(['audit', 'verify', file, '--key', pubFile, '--require-final-checkpoint', '--allow-gaps']);
    assert.equal(v.code, 0, v.stdout + v.stderr);
    assert.match(v.stdout, new RegExp(`note: ${lost} records were dropped by the gateway`));
  } finally {
    await p.kill();
  }
});

test('fsync: always — a batch whose fsync fails is not taken as written: it stays queued, the queue fills, drops are counted', async () => {
  const file = dir.file('null.log');
  symlinkSync('/dev/null', file); // writes succeed, fdatasync fails (EINVAL), and it cannot be cut back
  const cfg = parseConfig(JSON.stringify({ _format_version: '3.0', audit: { enabled: true, path: file, signing_key: keyFile, fsync: 'always', queue_max_bytes: 2048 } }));
  const logs: Record<string, unknown>[] = [];
  const metrics = new GatewayMetrics({ processMetrics: false });
  const writer = AuditWriter.open(cfg.audit, pino({}, { write: (line: string) => void logs.push(JSON.parse(line)) }), metrics);
  const entry = (i: number) => ({ type: 'config' as const, time: new Date().toISOString(), id: String(i), actor: { admin: 'test' }, subject: { action: 'reload' }, decision: 'applied', reason: 'x'.repeat(200) });
  for (let i = 0; i < 30; i++) {
    writer.record(entry(i));
    await new Promise((r) => setTimeout(r, 10)); // time enough to write each record, were its fsync to succeed
  }
  await eventually(() => logs.some((l) => l.msg === 'audit log fsync failed; retrying'), 10000, 'the fsync failure logged');
  assert.ok(logs.some((l) => String(l.msg).startsWith('audit queue full')), 'records were kept (not taken as written), so the queue filled up');
  assert.ok(writer.stats.dropped > 0);
  const text = await metrics.registry.metrics();
  assert.match(text, new RegExp(`palisade_audit_records_dropped_total ${writer.stats.dropped}\\b`));
  assert.match(text, /palisade_audit_write_errors_total\{op="fsync"\} [1-9]/);
  await writer.close();
  assert.ok(logs.some((l) => l.msg === 'audit log: records could not be written before shutdown and are lost'));
});
