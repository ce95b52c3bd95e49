/**
 * The tamper-evident audit trail, in process: security decisions of real
 * requests become hash-chained records with signed checkpoints; `palisade
 * audit verify` proves an intact log and points at the first bad record of a
 * changed, removed, reordered, forged or cut one; rotation and restarts keep
 * one chain.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { appendFileSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { loadPublicKey } from '../../src/audit/keys.ts';
import { verifyAuditLog, type VerifyOptions } from '../../src/audit/verify.ts';
import { startGateway, startUpstream, type TestUpstream } from '../helpers/gateway.ts';
import { runPalisade, TempDir } from '../helpers/process.ts';

const dir = new TempDir();
let upstream: TestUpstream;
let keyFile: string;
let pubFile: string;
let opts: VerifyOptions;

const KEY = 'alice-key-0123456789';

function config(path: string, audit: object = {}) {
  return {
    audit: { enabled: true, path, signing_key: keyFile, fsync: 'always', checkpoint_records: 4, ...audit },
    services: [
      {
        name: 'svc',
        url: upstream.url,
        routes: [
          { name: 'keyed', paths: ['/keyed'], plugins: [{ name: 'key-auth' }] },
          { name: 'open', paths: ['/open'] },
        ],
      },
    ],
    consumers: [{ username: 'alice', keyauth_credentials: [{ key: KEY }] }],
  };
}

const lines = (file: string) => readFileSync(file, 'utf8').split('\n').filter((l) => l !== '');
const records = (file: string) => lines(file).map((l) => JSON.parse(l));
const verify = (files: string[], o: Partial<VerifyOptions> = {}) => verifyAuditLog(files, { ...opts, ...o });

/** A copy of `file` with its lines changed by `edit`. */
function tampered(file: string, name: string, edit: (lines: string[]) => string[]): string {
  return dir.write(name, `${edit(lines(file)).join('\n')}\n`);
}

async function traffic(url: string): Promise<{ okIds: string[]; deniedIds: string[] }> {
  const okIds: string[] = [];
  const deniedIds: string[] = [];
  for (let i = 0; i < 3; i++) {
    const r = await request(`${url}/keyed/ok?apikey=${KEY}`);
    await r.body.dump();
    assert.equal(r.statusCode, 200);
    okIds.push(r.headers['x-request-id'] as string);
  }
  for (const headers of [{ apikey: 'wrong-key-value' }, {}]) {
    const r = await request(`${url}/keyed/no`, { headers });
    await r.body.dump();
    assert.equal(r.statusCode, 401);
    deniedIds.push(r.headers['x-request-id'] as string);
  }
  await (await request(`${url}/open`)).body.dump(); // no decision: no record
  return { okIds, deniedIds };
}

before(async () => {
  upstream = await startUpstream();
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  keyFile = dir.write('audit.key', privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
  pubFile = dir.write('audit.pub', publicKey.export({ type: 'spki', format: 'pem' }) as string);
  opts = { keys: [loadPublicKey(readFileSync(pubFile, 'utf8'))] };
});

after(async () => {
  await upstream?.close();
  dir.remove();
});

/** The chain heads the gateway log witnessed ('audit checkpoint' lines): seq → hash. */
function witnessed(logs: Record<string, unknown>[]): Map<number, string> {
  return new Map(logs.filter((l) => l.msg === 'audit checkpoint').map((l) => [l.audit_seq as number, l.audit_head as string]));
}

describe('audit trail', () => {
  let file: string;
  let ids: { okIds: string[]; deniedIds: string[] };
  let witness: Map<number, string>;

  before(async () => {
    file = dir.file('audit.log');
    const gw = await startGateway(config(file));
    ids = await traffic(gw.url);
    await gw.close();
    witness = witnessed(gw.logs);
  });

  test('security decisions are records with the request id the upstream got, actor, subject, decision and reason', () => {
    const recs = records(file);
    assert.equal(recs[0].type, 'start');
    const decisions = recs.filter((r) => r.type === 'decision');
    assert.equal(decisions.length, 5);
    const ok = decisions.filter((r) => r.decision === 'authenticated');
    assert.deepEqual(ok.map((r) => r.id), ids.okIds);
    // The transaction id is the X-Request-Id the upstream received.
    const upstreamIds = upstream.requests.map((q) => q.headers['x-request-id']);
    for (const id of ids.okIds) assert.ok(upstreamIds.includes(id), `${id} reached the upstream`);
    assert.deepEqual(ok[0].actor, { ip: '127.0.0.1', consumer: 'alice' });
    assert.deepEqual(ok[0].subject, { service: 'svc', route: 'keyed', method: 'GET', host: '127.0.0.1', path: '/keyed/ok' });
    assert.equal(ok[0].plugin, 'key-auth');
    const denied = decisions.filter((r) => r.decision === 'deny');
    assert.deepEqual(denied.map((r) => r.id), ids.deniedIds);
    assert.deepEqual(denied.map((r) => r.status), [401, 401]);
    assert.equal(denied[0].actor.consumer, null);
    assert.ok(denied.every((r) => typeof r.reason === 'string' && r.reason.length > 0));
    assert.ok(!readFileSync(file, 'utf8').includes(KEY), 'no secret (the query is not recorded)');
    // Chained: seq 1, 2, …; signed checkpoints every 4 records and a final one at shutdown.
    assert.deepEqual(recs.map((r) => r.seq), recs.map((_, i) => i + 1));
    const checkpoints = recs.filter((r) => r.type === 'checkpoint');
    assert.ok(checkpoints.length >= 2);
    assert.equal(recs.at(-1).type, 'checkpoint');
    assert.equal(recs.at(-1).final, true);
  });

  test('palisade audit verify: an intact log is OK (exit 0)', async () => {
    const r = await runPalisade(['audit', 'verify', file, '--key', pubFile, '--require-final-checkpoint']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^OK: 1 file, \d+ records \(seq 1–\d+\), \d+ checkpoints; last checkpoint seq \d+ at .* \(final\), key [0-9a-f]{16}/);
  });

  test('an edited record: exit 1, the record is named by file:line and seq', async () => {
    const bad = tampered(file, 'edited.log', (l) => {
      l[2] = l[2]!.replace('"decision":"authenticated"', '"decision":"deny"');
      return l;
    });
    const r = await runPalisade(['audit', 'verify', bad, '--key', pubFile]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, new RegExp(`FAILED: ${bad}:3: seq 3: record changed`));
  });

  test('an edited record with the chain recomputed after it: the next checkpoint signature fails', async () => {
    const { canonicalJson, sha256Hex } = await import('../../src/audit/canonical.ts');
    const recs = records(file);
    recs[2].reason = 'nothing to see';
    for (let i = 3; i < recs.length; i++) recs[i].prev = sha256Hex(canonicalJson(recs[i - 1]));
    const bad = dir.write('rechained.log', recs.map((r) => canonicalJson(r)).join('\n') + '\n');
    const res = verify([bad]);
    assert.equal(res.ok, false);
    const cp = recs.findIndex((r, i) => i > 2 && r.type === 'checkpoint');
    assert.equal(res.problem!.line, cp + 1);
    assert.match(res.problem!.message, /checkpoint signature does not verify/);
  });

  test('a removed, a reordered, an inserted record; a torn line', () => {
    let res = verify([tampered(file, 'removed.log', (l) => l.filter((_, i) => i !== 3))]);
    assert.deepEqual([res.ok, res.problem!.line, res.problem!.seq], [false, 4, 5]);
    assert.match(res.problem!.message, /records removed: seq 4 is missing/);

    res = verify([tampered(file, 'reordered.log', (l) => [...l.slice(0, 2), l[3]!, l[2]!, ...l.slice(4)])]);
    assert.deepEqual([res.ok, res.problem!.line], [false, 3]);
    assert.match(res.problem!.message, /out of order: seq 4 comes before seq 3/);

    res = verify([tampered(file, 'inserted.log', (l) => [...l.slice(0, 3), l[2]!, ...l.slice(3)])]);
    assert.equal(res.ok, false);
    assert.match(res.problem!.message, /seq 3 after seq 3|out of order|duplicated/);

    const torn = tampered(file, 'torn.log', (l) => l);
    writeFileSync(torn, readFileSync(torn, 'utf8').slice(0, -20));
    res = verify([torn]);
    assert.match(res.problem!.message, /incomplete/);
  });

  test('a log cut at its start fails, unless anchored at a checkpoint the gateway log witnessed (--from-seq/--from-hash)', async () => {
    const recs = records(file);
    // The reviewer's case: the first 7 lines deleted.
    const cut7 = tampered(file, 'cut-start7.log', (l) => l.slice(7));
    let res = verify([cut7]);
    assert.deepEqual([res.ok, res.problem?.line, res.problem?.seq], [false, 1, 8]);
    assert.match(res.problem!.message, /does not start the chain: its first record is seq 8, not seq 1/);
    let r = await runPalisade(['audit', 'verify', cut7, '--key', pubFile]);
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stdout, new RegExp(`FAILED: ${cut7}:1: seq 8: the log does not start the chain`));

    // Anchored right before the first record given: the chain from a witnessed checkpoint (its audit_seq and audit_head).
    const cp = recs.findIndex((x) => x.type === 'checkpoint');
    const anchor = { seq: recs[cp].seq as number, hash: witness.get(recs[cp].seq)! };
    assert.ok(anchor.hash, 'the first checkpoint is in the gateway log');
    const afterCp = tampered(file, 'after-checkpoint.log', (l) => l.slice(cp + 1));
    res = verify([afterCp], { from: anchor, requireFinalCheckpoint: true });
    assert.equal(res.ok, true, JSON.stringify(res.problem));
    assert.match(res.notes.join('\n'), new RegExp(`checked from seq ${anchor.seq + 1}, anchored at seq ${anchor.seq}`));
    r = await runPalisade(['audit', 'verify', afterCp, '--key', pubFile, '--from-seq', String(anchor.seq), '--from-hash', anchor.hash]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    // The same anchor does not excuse more records cut, and a wrong hash is caught.
    res = verify([tampered(file, 'after-checkpoint-cut.log', (l) => l.slice(cp + 2))], { from: anchor });
    assert.deepEqual([res.ok, res.problem?.seq], [false, anchor.seq + 2]);
    assert.match(res.problem!.message, new RegExp(`records removed: seq ${anchor.seq + 1} is missing`));
    res = verify([afterCp], { from: { seq: anchor.seq, hash: 'f'.repeat(64) } });
    assert.match(res.problem!.message, /the anchor is wrong/);
    // An anchor inside the records given vouches for those before it: a change before it is found there.
    const last = recs.at(-1);
    const changed = tampered(file, 'changed-before-anchor.log', (l) => {
      l[1] = l[1]!.replace('"decision":"authenticated"', '"decision":"anonymous"');
      return l.slice(1);
    });
    res = verify([changed], { from: { seq: last.seq, hash: witness.get(last.seq)! } });
    assert.equal(res.ok, false);
    assert.match(res.problem!.message, /record changed/);
    // A witnessed seq past the end of the log: its end was cut.
    res = verify([tampered(file, 'cut-before-anchor.log', (l) => l.slice(0, cp + 1))], { from: { seq: last.seq, hash: witness.get(last.seq)! } });
    assert.match(res.problem!.message, new RegExp(`the log ends at seq ${anchor.seq}, before the anchor \\(seq ${last.seq}\\)`));
    // Usage errors.
    r = await runPalisade(['audit', 'verify', afterCp, '--key', pubFile, '--from-seq', String(anchor.seq)]);
    assert.equal(r.code, 2);
    r = await runPalisade(['audit', 'verify', afterCp, '--key', pubFile, '--from-seq', 'x', '--from-hash', anchor.hash]);
    assert.equal(r.code, 2);
  });

  test('a line rewritten as another spelling of the same record (escapes, a duplicated key) is refused: lines must be canonical', () => {
    const at = records(file).findIndex((x) => x.decision === 'authenticated');
    const escaped = tampered(file, 'escaped.log', (l) => {
      l[at] = l[at]!.replace('"ip":"127.0.0.1"', '"ip":"\\u0031\\u0032\\u0037.0.0.1"');
      return l;
    });
    assert.deepEqual(JSON.parse(lines(escaped)[at]!), records(file)[at], 'the same record once parsed');
    let res = verify([escaped]);
    assert.deepEqual([res.ok, res.problem?.line, res.problem?.seq], [false, at + 1, at + 1]);
    assert.match(res.problem!.message, /not in canonical form/);
    // A leading duplicate: JSON.parse keeps the last "decision", a reader taking the first sees "deny".
    const duplicated = tampered(file, 'duplicated.log', (l) => {
      l[at] = `{"decision":"deny",${l[at]!.slice(1)}`;
      return l;
    });
    res = verify([duplicated]);
    assert.deepEqual([res.ok, res.problem?.line], [false, at + 1]);
    assert.match(res.problem!.message, /not in canonical form/);
  });

  test('a cut tail: unsigned records are refused; a cut at a checkpoint fails --require-final-checkpoint', () => {
    const recs = records(file);
    const lastCp = recs.findLastIndex((r, i) => r.type === 'checkpoint' && i < recs.length - 1);
    // Cut between checkpoints: the records after the last checkpoint are not signed.
    let res = verify([tampered(file, 'cut.log', (l) => l.slice(0, lastCp + 2))]);
    assert.equal(res.ok, false);
    assert.match(res.problem!.message, /1 record is not covered by a signed checkpoint/);
    assert.equal(verify([tampered(file, 'cut2.log', (l) => l.slice(0, lastCp + 2))], { allowUnsignedTail: true }).ok, true);
    // Cut right after an earlier checkpoint: still a signed prefix, but not the final checkpoint.
    const atCheckpoint = tampered(file, 'cut3.log', (l) => l.slice(0, lastCp + 1));
    assert.equal(verify([atCheckpoint]).ok, true);
    res = verify([atCheckpoint], { requireFinalCheckpoint: true });
    assert.equal(res.ok, false);
    assert.match(res.problem!.message, /does not end with the final checkpoint/);
  });

  test('a forged checkpoint (another key) and a wrong verification key: exit 1; an unreadable key: exit 2', async () => {
    const other = generateKeyPairSync('ed25519');
    const otherPub = dir.write('other.pub', other.publicKey.export({ type: 'spki', format: 'pem' }) as string);
    let r = await runPalisade(['audit', 'verify', file, '--key', otherPub]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /checkpoint signed with key [0-9a-f]{16}, which is not one of the keys given/);
    const res = verify([tampered(file, 'forged.log', (l) => l.map((x) => x.replace(/"sig":"[^"]+"/, `"sig":"${Buffer.alloc(64, 1).toString('base64')}"`)))]);
    assert.match(res.problem!.message, /checkpoint signature does not verify/);
    r = await runPalisade(['audit', 'verify', file, '--key', dir.file('missing.pub')]);
    assert.equal(r.code, 2);
    r = await runPalisade(['audit', 'verify', dir.file('missing.log'), '--key', pubFile]);
    assert.equal(r.code, 2);
  });

  test('a restart continues the chain; a torn last line from a crash is cut off first', async () => {
    appendFileSync(file, '{"type":"decision","seq":'); // what a crash in the middle of a write leaves
    const gw = await startGateway(config(file));
    try {
      await traffic(gw.url);
    } finally {
      await gw.close();
    }
    assert.ok(gw.logs.some((l) => l.msg === 'audit log: an incomplete last line (a write cut short by a crash) was removed'));
    const recs = records(file);
    const starts = recs.filter((r) => r.type === 'start');
    assert.equal(starts.length, 2);
    assert.match(starts[1].reason, /the chain continues from audit\.log/);
    const res = verify([file], { requireFinalCheckpoint: true });
    assert.equal(res.ok, true, JSON.stringify(res.problem));
    assert.equal(res.records, recs.length);
  });

  test('rotation: files PATH.NNNNNN, one chain across them, verified in any order; a missing file is found', async () => {
    const path = dir.file('rot/audit.log');
    const gw = await startGateway(config(path, { rotate_size: 2500, checkpoint_records: 1000 }));
    try {
      for (let i = 0; i < 4; i++) await traffic(gw.url);
    } finally {
      await gw.close();
    }
    const rotated = readdirSync(dir.file('rot')).filter((f) => /^audit\.log\.\d{6}$/.test(f)).sort();
    assert.ok(rotated.length >= 2, `rotated files: ${rotated}`);
    const files = [...rotated.map((f) => dir.file(`rot/${f}`)), path];
    for (const f of files.slice(0, -1)) assert.equal(records(f).at(-1).type, 'checkpoint', `${f} ends with its rotation checkpoint`);
    const second = records(files[1]!);
    assert.equal(second[0].type, 'rotate');
    assert.equal(second[0].subject.previous_file, rotated[0]);
    const res = verify([...files].reverse(), { requireFinalCheckpoint: true });
    assert.equal(res.ok, true, JSON.stringify(res.problem));
    assert.equal(res.files.length, files.length);
    const gap = verify([files[0]!, ...files.slice(2)]);
    assert.equal(gap.ok, false);
    assert.match(gap.problem!.message, /records removed/);
    // The oldest file left out (or deleted for retention): refused, unless anchored at its rotation checkpoint, which the gateway log witnessed.
    const oldest = verify(files.slice(1), { requireFinalCheckpoint: true });
    assert.equal(oldest.ok, false);
    assert.match(oldest.problem!.message, /does not start the chain/);
    const end = records(files[0]!).at(-1);
    const from = { seq: end.seq as number, hash: witnessed(gw.logs).get(end.seq)! };
    assert.ok(from.hash, 'the rotation checkpoint is in the gateway log');
    const anchored = verify(files.slice(1), { requireFinalCheckpoint: true, from });
    assert.equal(anchored.ok, true, JSON.stringify(anchored.problem));
    const r = await runPalisade(['audit', 'verify', ...files, '--key', pubFile]);
    assert.equal(r.code, 0, r.stdout);
    assert.match(r.stdout, new RegExp(`^OK: ${files.length} files`));
  });

  test('the signing key: from the environment ({vault://env/NAME}); a missing or wrong key stops the start', async () => {
    await assert.rejects(startGateway(config(dir.file('x.log'), { signing_key: undefined })), /the audit trail needs signing_key/);
    await assert.rejects(startGateway(config(dir.file('x.log'), { signing_key: '{vault://env/PALISADE_TEST_NO_SUCH_KEY}' })), /environment variable PALISADE_TEST_NO_SUCH_KEY is not set/);
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    await assert.rejects(startGateway(config(dir.file('x.log'), { signing_key: rsa })), /an Ed25519 key is needed, this is rsa/);
    process.env.PALISADE_TEST_AUDIT_KEY = readFileSync(keyFile, 'utf8');
    try {
      const path = dir.file('env.log');
      const gw = await startGateway(config(path, { signing_key: '{vault://env/palisade-test-audit-key}', fsync: 'never' }));
      await traffic(gw.url);
      await gw.close();
      assert.equal(verify([path], { requireFinalCheckpoint: true }).ok, true);
    } finally {
      delete process.env.PALISADE_TEST_AUDIT_KEY;
    }
  });

  test('checkpoints every checkpoint_interval seconds while records come in', async () => {
    const path = dir.file('interval.log');
    const gw = await startGateway(config(path, { checkpoint_records: 1000, checkpoint_interval: 1, fsync: 'interval', fsync_interval: 50 }));
    try {
      await traffic(gw.url);
      const deadline = Date.now() + 10000;
      while (!records(path).some((r) => r.type === 'checkpoint' && r.reason === 'interval') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      const recs = records(path);
      assert.equal(recs.at(-1).type, 'checkpoint');
      assert.equal(recs.at(-1).reason, 'interval');
      assert.equal(verify([path]).ok, true);
      assert.ok(gw.logs.some((l) => l.msg === 'audit checkpoint' && l.audit_seq === recs.at(-1).seq), 'the checkpoint is witnessed in the gateway log');
    } finally {
      await gw.close();
    }
  });
});
