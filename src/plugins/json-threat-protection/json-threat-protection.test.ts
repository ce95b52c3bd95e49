import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { request } from 'undici';
import { startGateway, startUpstream, type TestGateway, type TestUpstream } from '../../../test/helpers/gateway.ts';
import { streamPost } from '../../../test/helpers/http.ts';

const JSON_CT = { 'content-type': 'application/json' };


describe('json-threat-protection', () => {
  let upstream: TestUpstream;
  let gw: TestGateway;

  const limits = {
    max_body_size: 1024,
    max_container_depth: 2,
    max_array_element_count: 2,
    max_object_entry_count: 2,
    max_object_entry_name_length: 3,
    max_string_value_length: 3,
    max_number_length: 5,
    error_message: 'Custom Error Message',
  };

  before(async () => {
    upstream = await startUpstream();
    const route = (name: string, config: object) => ({ name, paths: [`/${name}`], plugins: [{ name: 'json-threat-protection', config }] });
    gw = await startGateway({
      services: [
        {
          name: 'svc',
          url: upstream.url,
          routes: [
            route('default', {}),
            route('body', { max_body_size: 1024 }),
            route('limits', limits),
            route('log', { ...limits, enforcement_mode: 'log_only' }),
            route('custom', { error_status_code: 422, error_message: 'Incorrect request format', max_string_value_length: 6 }),
            route('dups', { allow_duplicate_object_entry_name: false }),
            route('deep', { max_body_size: -1, max_container_depth: 100 }),
            route('nonjson', { allow_non_json_requests: true, max_container_depth: 1 }),
          ],
        },
      ],
    });
  });

  after(async () => {
    await gw?.close();
    await upstream?.close();
  });

  async function send(path: string, body: string | Buffer, headers: Record<string, string> = JSON_CT, method = 'POST') {
    const before = upstream.requests.length;
    const r = await request(gw.url + path, { method, body, headers });
    const text = await r.body.text();
    const reached = upstream.requests.length > before;
    return { status: r.statusCode, headers: r.headers, text, reached, seen: reached ? upstream.requests.at(-1)! : null };
  }

  const message = (text: string) => JSON.parse(text).message as string;

  async function passes(path: string, body: string) {
    const r = await send(path, body);
    assert.equal(r.status, 200, `${body}: ${r.text}`);
    assert.equal(r.seen!.body, body, 'the upstream got the body unchanged');
  }

  async function refused(path: string, body: string, status = 400, msg = 'Custom Error Message') {
    const r = await send(path, body);
    assert.equal(r.status, status, `${body}: ${r.text}`);
    assert.equal(message(r.text), msg);
    assert.equal(r.reached, false, 'the upstream never saw it');
  }

  test('a valid document passes to the upstream byte for byte, with its headers', async () => {
    const body = '{ "a" : [1, -2.5e3],\n  "bé": "x\\u00e9😀" }';
    const r = await send('/default', body);
    assert.equal(r.status, 200);
    assert.equal(r.seen!.body, body);
    assert.equal(r.seen!.headers['content-length'], String(Buffer.byteLength(body)));
  });

  test('a chunked valid document streams through unchanged (still chunked)', async () => {
    const parts = ['{"a":', '[1,', '2]}'];
    const r = await streamPost(`${gw.url}/limits`, JSON_CT, (i) => Buffer.from(parts[i]!), 11);
    assert.equal(r.status, 200, r.text);
    const seen = upstream.requests.at(-1)!;
    assert.equal(seen.body, '{"a":[1,2]}');
    assert.equal(seen.headers['content-length'], undefined);
  });

  test('max_container_depth: at the limit passes, one level more is refused', async () => {
    await passes('/limits', '{"a":[1]}');
    await refused('/limits', '{"a":[[1]]}');
  });

  test('max_array_element_count: at the limit passes, one more is refused', async () => {
    await passes('/limits', '[1,"a"]');
    await refused('/limits', '[1,"a",null]');
  });

  test('max_object_entry_count: at the limit passes, one more is refused', async () => {
    await passes('/limits', '{"a":1,"b":2}');
    await refused('/limits', '{"a":1,"b":2,"c":3}');
  });

  test('max_object_entry_name_length counts characters: at the limit passes, one more is refused', async () => {
    await passes('/limits', '{"abc":1}');
    await passes('/limits', '{"😀😀😀":0}');
    await passes('/limits', '{"\\u0031\\u0031\\u0031":0}');
    await refused('/limits', '{"abcd":1}');
  });

  test('max_string_value_length counts characters: at the limit passes, one more is refused', async () => {
    await passes('/limits', '"abc"');
    await passes('/limits', '"😀😀😀"');
    await passes('/limits', '"\\ud83d\\ude00ab"');
    await refused('/limits', '"abcd"');
    await refused('/limits', '["é😀ab"]');
  });

  test('max_number_length (Palisade): at the limit passes, one more character is refused', async () => {
    await passes('/limits', '[-1e10]');
    await refused('/limits', '[-1e100]');
    await refused('/limits', '123456');
  });

  test('allow_duplicate_object_entry_name false: a repeated name (also as an escape) is refused, the same name in another object is not', async () => {
    await passes('/dups', '{"a":1,"b":{"a":2}}');
    await refused('/dups', '{"a":1,"a":2}', 400, 'Bad Request');
    await refused('/dups', '{"a":1,"\\u0061":2}', 400, 'Bad Request');
    await passes('/default', '{"a":1,"a":2}');
  });

  test('error_status_code and error_message are what a blocked client gets', async () => {
    await passes('/custom', '{"s":"abcdef"}');
    const r = await send('/custom', '{"s":"abcdefg"}');
    assert.equal(r.status, 422);
    assert.equal(r.headers['content-type'], 'application/problem+json');
    assert.equal(message(r.text), 'Incorrect request format');
  });

  test('max_body_size: a declared Content-Length at the limit passes, one byte more gets 400 "Invalid Content-Length"', async () => {
    await passes('/body', `"${'x'.repeat(1022)}"`);
    const over = await send('/body', `"${'x'.repeat(1023)}"`);
    assert.equal(over.status, 400);
    assert.equal(message(over.text), 'Invalid Content-Length');
    assert.equal(over.reached, false);
  });

  test('max_body_size: a chunked body at the limit passes, one byte more is refused', async () => {
    const body = (n: number) => (i: number) => Buffer.from(i === 0 ? '"' : i === 1 ? 'x'.repeat(n) : '"');
    const ok = await streamPost(`${gw.url}/body`, JSON_CT, body(1022), 1024);
    assert.equal(ok.status, 200, ok.text);
    assert.equal(upstream.requests.at(-1)!.body.length, 1024);
    const over = await streamPost(`${gw.url}/body`, JSON_CT, body(1023), 1025);
    assert.equal(over.status, 400);
    assert.equal(message(over.text), 'Invalid Content-Length');
  });

  test('invalid JSON and non-UTF-8 bodies get 400 in block and in log_only mode', async () => {
    for (const path of ['/limits', '/log']) {
      await refused(path, '{"a":1,}', 400, 'Invalid JSON.');
      await refused(path, '{"a" 1}', 400, 'Invalid JSON.');
      const r = await send(path, Buffer.from([0x93, 0x93, 0x93, 0x93]));
      assert.equal(r.status, 400);
      assert.equal(message(r.text), 'Non-UTF8 input.');
      assert.equal(r.reached, false);
    }
    await refused('/limits', '{"a":1} {}', 400, 'Custom Error Message');
  });

  test('log_only: a violating body passes unchanged and a warning is logged', async () => {
    const body = '{"a":[[1,2,3]],"bbbb":"too long","c":1}';
    const r = await send('/log', body);
    assert.equal(r.status, 200);
    assert.equal(r.seen!.body, body);
    const line = gw.logs.find((l) => typeof l.msg === 'string' && l.msg.includes('The maximum allowed nested depth is exceeded'));
    assert.ok(line, 'the violation is logged');
    assert.equal(line.level, 40);
    assert.equal(line.plugin, 'json-threat-protection');
  });

  test('log_only: the scan stops at the first violation and the whole chunked body still reaches the upstream', async () => {
    const parts = ['{"a":[[[1]]],', '"b":"', 'y'.repeat(5000), '"}'];
    const r = await streamPost(`${gw.url}/log`, JSON_CT, (i) => Buffer.from(parts[i]!), 5019);
    assert.equal(r.status, 200, r.text);
    assert.equal(upstream.requests.at(-1)!.body, parts.join(''));
  });

  test('log_only: a body over max_body_size is logged and streamed upstream unvalidated', async () => {
    const chunk = Buffer.alloc(16 * 1024, ' ');
    const r = await streamPost(`${gw.url}/log`, JSON_CT, (i) => (i === 0 ? Buffer.from('[[[[') : chunk), 4 + 8 * chunk.length);
    assert.equal(r.status, 200, r.text);
    const seen = upstream.requests.at(-1)!;
    assert.equal(seen.body.length, 4 + 8 * chunk.length);
    assert.ok(seen.body.startsWith('[[[[  '));
    assert.ok(gw.logs.some((l) => typeof l.msg === 'string' && l.msg.startsWith('Invalid Content-Length')));
  });

  test('only POST, PUT and PATCH are checked', async () => {
    assert.equal((await send('/limits', '[[[[1]]]]', JSON_CT, 'PUT')).status, 400);
    assert.equal((await send('/limits', '[[[[1]]]]', JSON_CT, 'PATCH')).status, 400);
    const del = await send('/limits', '[[[[1]]]]', JSON_CT, 'DELETE');
    assert.equal(del.status, 200);
    assert.equal(del.seen!.body, '[[[[1]]]]');
  });

  test('requests without a body pass', async () => {
    const r = await request(gw.url + '/limits', { method: 'POST' });
    await r.body.text();
    assert.equal(r.statusCode, 200);
  });

  test('Content-Type: checked whatever it says by default (Kong); allow_non_json_requests lets non-JSON types through', async () => {
    await refused('/limits', 'hello', 400, 'Invalid JSON.');
    const text = await send('/nonjson', 'hello', { 'content-type': 'text/plain' });
    assert.equal(text.status, 200);
    assert.equal(text.seen!.body, 'hello');
    const xml = await send('/nonjson', '<a>[[1]]</a>', { 'content-type': 'application/xml; charset=utf-8' });
    assert.equal(xml.status, 200);
    const none = await send('/nonjson', '[[1]]', {});
    assert.equal(none.status, 200);
    for (const ct of ['application/json', 'Application/JSON; charset=utf-8', 'application/vnd.api+json']) {
      const r = await send('/nonjson', '[[1]]', { 'content-type': ct });
      assert.equal(r.status, 400, ct);
      assert.equal(r.reached, false);
    }
  });

  test('a 100 000-deep body is refused at the limit, before the client has sent it all', async () => {
    const started = performance.now();
    // 1 GiB of '[' offered: socket buffers hold a few MB at most, so finishing it would take a gateway that reads on.
    const r = await streamPost(`${gw.url}/deep`, JSON_CT, () => Buffer.alloc(64 * 1024, '['), 1024 ** 3);
    assert.equal(r.status, 400, r.text);
    assert.equal(message(r.text), 'Bad Request');
    assert.equal(r.finished, false, 'the answer came before the client finished sending');
    assert.ok(r.produced < 64 * 1024 * 1024, `the client had produced only ${r.produced} bytes`);
    assert.ok(performance.now() - started < 10_000, 'refused quickly');
    assert.ok(!upstream.requests.some((q) => q.body.startsWith('['.repeat(200))), 'the upstream never got it');
    // With a declared length too: the whole 100 000 bytes fit in one read, the scan stops at byte 100.
    const declared = await send('/deep', '['.repeat(100_000));
    assert.equal(declared.status, 400);
    assert.equal(declared.reached, false);
  });

  test('a huge chunked body is refused once past max_body_size, without the gateway reading it all', async () => {
    const GiB = 1024 ** 3;
    const chunk = Buffer.alloc(64 * 1024, ' ');
    const r = await streamPost(`${gw.url}/default`, JSON_CT, (i) => (i === 0 ? Buffer.from('[') : chunk), GiB);
    assert.equal(r.status, 400, r.text);
    assert.equal(message(r.text), 'Invalid Content-Length');
    assert.equal(r.finished, false, 'the answer came before the client finished sending');
    assert.ok(r.produced < 64 * 1024 * 1024, `the client had produced only ${r.produced} bytes`);
    assert.ok(!upstream.requests.some((q) => q.body.startsWith('[   ')), 'the upstream never got it');
  });

  test('a huge declared Content-Length is refused at once, before the body is sent', async () => {
    const r = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = http.request(`${gw.url}/limits`, { method: 'POST', headers: { ...JSON_CT, 'content-length': String(1024 ** 3) }, agent: false }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => {
          resolve({ status: res.statusCode!, text });
          req.destroy();
        });
      });
      req.on('error', reject);
      req.flushHeaders();
    });
    assert.equal(r.status, 400);
    assert.equal(message(r.text), 'Invalid Content-Length');
  });

  test('invalid configs are refused, naming the field', async () => {
    const withConfig = (config: object) => ({
      services: [{ name: 's', url: upstream.url, routes: [{ name: 'r', paths: ['/'], plugins: [{ name: 'json-threat-protection', config }] }] }],
    });
    const names = (field: string) => (err: unknown) => {
      const e = err as { message?: string; errors?: unknown };
      const text = `${e.message ?? ''} ${JSON.stringify(e.errors ?? '')}`;
      assert.match(text, new RegExp(field), text);
      return true;
    };
    await assert.rejects(startGateway(withConfig({ max_container_depth: 0 })), names("max_container_depth shouldn't be 0"));
    await assert.rejects(startGateway(withConfig({ max_body_size: -2 })), names('max_body_size'));
    await assert.rejects(startGateway(withConfig({ error_status_code: 500 })), names('error_status_code'));
    await assert.rejects(startGateway(withConfig({ enforcement_mode: 'tap' })), names('enforcement_mode'));
    await assert.rejects(startGateway(withConfig({ json_content_types: ['json'] })), names('json_content_types'));
  });
});
