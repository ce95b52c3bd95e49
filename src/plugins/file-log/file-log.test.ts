import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, renameSync, unlinkSync } from 'node:fs';
import { request } from 'undici';
import { startGateway, startUpstream, type TestUpstream } from '../../../test/helpers/gateway.ts';
import { startHttpCollector } from '../../../test/helpers/collectors.ts';
import { eventually, TempDir } from '../../../test/helpers/process.ts';

const lines = (file: string): any[] =>
  existsSync(file)
    ? readFileSync(file, 'utf8')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l))
    : [];

describe('file-log', () => {
  let upstream: TestUpstream;
  let dir: TempDir;
  before(async () => {
    upstream = await startUpstream();
    dir = new TempDir();
  });
  after(async () => {
    await upstream?.close();
    dir?.remove();
  });

  const config = (pluginConfig: object) => ({
    services: [{ name: 'svc', url: upstream.url, routes: [{ name: 'r', paths: ['/'] }] }],
    plugins: [{ name: 'file-log', config: pluginConfig }],
  });
  const get = async (url: string, headers: Record<string, string> = {}) => {
    const r = await request(url, { headers });
    await r.body.dump();
    return r;
  };

  test('appends one JSON line per request, redacted', async () => {
    const file = dir.file('access.log');
    const gw = await startGateway(config({ path: file }));
    try {
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push((await get(`${gw.url}/p${i}?access_token=tok-${i}`, { cookie: 'sid=abc', 'x-honeycomb-team': 'team-tok' })).headers['x-request-id'] as string);
      await eventually(() => lines(file).length === 5, 10000, 'five lines');
      const recs = lines(file);
      assert.deepEqual(recs.map((r) => r.request_id), ids);
      assert.equal(recs[2].request.uri, '/p2?access_token=REDACTED');
      assert.equal(recs[2].request.headers.cookie, 'REDACTED');
      assert.equal(recs[2].request.headers['x-honeycomb-team'], 'REDACTED', 'a header the config redactor masks is masked in logs too');
      assert.equal(recs[2].response.status, 200);
      assert.ok(!readFileSync(file, 'utf8').includes('tok-'));
    } finally {
      await gw.close();
    }
  });

  test('log rotation: a renamed or removed file is replaced by a new one, no signal needed', async () => {
    const file = dir.file('rotating.log');
    const gw = await startGateway(config({ path: file }));
    try {
      await get(`${gw.url}/before`);
      await eventually(() => lines(file).length === 1, 10000, 'first line');
      renameSync(file, `${file}.1`);
      // Within a second the plugin notices the path no longer names its file.
      await eventually(async () => {
        await get(`${gw.url}/after`);
        return lines(file).length > 0;
      }, 10000, 'a new file');
      assert.equal(lines(`${file}.1`)[0].request.uri, '/before');
      assert.ok(lines(file).every((r) => r.request.uri === '/after'));
      unlinkSync(file);
      await eventually(async () => {
        await get(`${gw.url}/after-unlink`);
        return lines(file).some((r) => r.request.uri === '/after-unlink');
      }, 10000, 'a file again after unlink');
    } finally {
      await gw.close();
    }
  });

  test('reopen: true writes every batch to whatever file the path names now', async () => {
    const file = dir.file('reopen.log');
    const gw = await startGateway(config({ path: file, reopen: true }));
    try {
      await get(`${gw.url}/one`);
      await eventually(() => lines(file).length === 1, 10000, 'first line');
      renameSync(file, `${file}.old`);
      await get(`${gw.url}/two`);
      await eventually(() => lines(file).length === 1, 10000, 'the next line in a new file at once');
      assert.equal(lines(file)[0].request.uri, '/two');
    } finally {
      await gw.close();
    }
  });

  test('lines still buffered are written when the gateway shuts down', async () => {
    const file = dir.file('shutdown.log');
    const gw = await startGateway(config({ path: file }));
    await Promise.all(Array.from({ length: 20 }, (_, i) => get(`${gw.url}/s${i}`)));
    await gw.close();
    assert.equal(lines(file).length, 20);
  });

  test('config errors: a missing directory, custom_fields_by_lua', async () => {
    await assert.rejects(startGateway(config({ path: dir.file('no/such/dir/x.log') })), /cannot create a file in .*no\/such\/dir/);
    await assert.rejects(startGateway(config({ path: dir.file('x.log'), custom_fields_by_lua: { a: 'return 1' } })), /custom_fields_by_lua is not supported/);
    await assert.rejects(startGateway(config({})), /path/);
  });

  test('the JSON written directly (no redact paths) is the record the object serializer gives (http-log with a redact path)', async () => {
    const file = dir.file('same.log');
    const collector = await startHttpCollector();
    const gw = await startGateway({
      services: [{ name: 'svc', url: upstream.url, routes: [{ name: 'r', paths: ['/'] }] }],
      plugins: [
        { name: 'file-log', config: { path: file } },
        // A redact path of a header never sent: the object serializer runs, and changes nothing.
        { name: 'http-log', config: { http_endpoint: collector.url, redact: ['request.headers.x-never-sent'] } },
      ],
    });
    try {
      await get(`${gw.url}/same/path?apikey=k1&page=2&a=1&a=2`, { authorization: 'Bearer t', 'x-partner-key': 'p', 'user-agent': 'ua "quoted"\\', cookie: 'c=1' });
      await eventually(() => lines(file).length === 1 && collector.records().length === 1, 10000, 'one record each');
      const direct = lines(file)[0];
      assert.deepEqual(direct, collector.records()[0]);
      assert.equal(direct.request.headers.authorization, 'REDACTED');
      assert.equal(direct.request.uri, '/same/path?apikey=REDACTED&page=2&a=1&a=2');
    } finally {
      await gw.close();
      await collector.close();
    }
  });
});
