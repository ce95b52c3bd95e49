import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { startGateway, startUpstream, type TestGateway, type TestUpstream } from '../../../test/helpers/gateway.ts';
import { request } from '../../../test/helpers/http.ts';

const SPEC_FILE = fileURLToPath(new URL('../../../test/fixtures/openapi/pets.yaml', import.meta.url));

interface Problem {
  status: number;
  message: string;
  detail: string;
  request_id: string;
  errors: { in: string; name?: string; pointer: string; message: string }[];
}

describe('oas-validation: requests', () => {
  let upstream: TestUpstream;
  let gw: TestGateway;

  before(async () => {
    upstream = await startUpstream();
    gw = await startGateway({
      services: [
        {
          name: 'pets',
          url: upstream.url,
          routes: [
            { name: 'file', paths: ['/'], plugins: [{ name: 'oas-validation', config: { api_spec_file: SPEC_FILE } }] },
            {
              name: 'strict',
              paths: ['/strict'],
              strip_path: true,
              plugins: [{ name: 'oas-validation', config: { api_spec: readFileSync(SPEC_FILE, 'utf8'), include_base_path: true, custom_base_path: '/strict', query_parameter_check: true, header_parameter_check: true, verbose_response: true } }],
            },
            { name: 'notify', paths: ['/notify'], strip_path: true, plugins: [{ name: 'oas-validation', config: { api_spec_file: SPEC_FILE, include_base_path: true, custom_base_path: '/notify', notify_only_request_validation_failure: true } }] },
            { name: 'v1', paths: ['/v1'], plugins: [{ name: 'oas-validation', config: { api_spec_file: SPEC_FILE, include_base_path: true, max_structured_errors: 2 } }] },
            { name: 'loose', paths: ['/loose'], strip_path: true, plugins: [{ name: 'oas-validation', config: { api_spec_file: SPEC_FILE, include_base_path: true, custom_base_path: '/loose', allow_undeclared_request_body: true } }] },
          ],
        },
      ],
    });
  });

  after(async () => {
    await gw?.close();
    await upstream?.close();
  });

  /** A request; `reached` tells whether the upstream saw it. */
  async function call(path: string, o: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {}) {
    const before = upstream.requests.length;
    const chunked = o.headers?.['transfer-encoding'] !== undefined;
    const headers = { ...(o.body !== undefined && !chunked ? { 'content-length': String(Buffer.byteLength(o.body)) } : {}), ...o.headers };
    const res = await request(gw.port, path, { ...o, headers });
    return { status: res.status, headers: res.headers, text: res.body, reached: upstream.requests.length > before };
  }

  async function refused(path: string, o: Parameters<typeof call>[1] = {}): Promise<Problem> {
    const r = await call(path, o);
    assert.equal(r.status, 400, r.text);
    assert.equal(r.reached, false, 'the upstream must not see a refused request');
    assert.match(String(r.headers['content-type']), /^application\/problem\+json/);
    return JSON.parse(r.text) as Problem;
  }

  const has = (p: Problem, where: string, name: string | undefined, pointer: string, message: RegExp) =>
    assert.ok(
      p.errors.some((e) => e.in === where && e.name === name && e.pointer === pointer && message.test(e.message)),
      `expected ${where} ${name ?? ''} ${pointer} ${message} in ${JSON.stringify(p.errors)}`,
    );

  test('a valid request passes unchanged', async () => {
    const r = await call('/pets?limit=10&tags=cat&tags=dog&sort=name');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.reached, true);
    assert.equal(JSON.parse(r.text).url, '/pets?limit=10&tags=cat&tags=dog&sort=name');
  });

  test('query parameters: every violation listed with its location, Kong message, no values echoed', async () => {
    const p = await refused('/pets?limit=1000&tags=cat&tags=snake&sort=SECRETVALUE');
    assert.equal(p.status, 400);
    assert.equal(p.message, "request param doesn't conform to schema");
    assert.equal(p.errors.length, 3, JSON.stringify(p.errors));
    has(p, 'query', 'limit', '', /must be <= 100/);
    has(p, 'query', 'tags', '/1', /must be one of "cat", "dog", "bird"/);
    has(p, 'query', 'sort', '', /must be one of "name", "age"/);
    assert.ok(!JSON.stringify(p).includes('SECRETVALUE'));
    assert.ok(!JSON.stringify(p).includes('snake'));
    assert.match(p.request_id, /.+/);
  });

  test('a primitive query parameter given twice is refused (parameter pollution)', async () => {
    has(await refused('/pets?limit=1&limit=2'), 'query', 'limit', '', /only once/);
  });

  test('path parameters: integer coercion, format int32, minimum', async () => {
    assert.equal((await call('/pets/7', { headers: { 'x-request-tag': 'abc' } })).status, 200);
    has(await refused('/pets/abc', { headers: { 'x-request-tag': 'abc' } }), 'path', 'petId', '', /must be integer/);
    has(await refused('/pets/0', { headers: { 'x-request-tag': 'abc' } }), 'path', 'petId', '', /must be >= 1/);
    has(await refused('/pets/3000000000', { headers: { 'x-request-tag': 'abc' } }), 'path', 'petId', '', /must match format "int32"/);
  });

  test('a literal path wins over a template: /pets/mine is its own operation', async () => {
    const p = await refused('/pets/mine');
    has(p, 'security', undefined, '', /no credential/);
    assert.ok(!p.errors.some((e) => e.name === 'petId'));
  });

  test('header parameters: required and pattern; the value is never echoed', async () => {
    has(await refused('/pets/1'), 'header', 'X-Request-Tag', '', /is required/);
    const p = await refused('/pets/1', { headers: { 'x-request-tag': 'Bad-Token-123' } });
    has(p, 'header', 'X-Request-Tag', '', /must match pattern/);
    assert.ok(!JSON.stringify(p).includes('Bad-Token-123'));
  });

  test('path styles: simple arrays, label, matrix objects, mixed segments', async () => {
    assert.equal((await call('/styles/simple/1,2,3')).status, 200);
    has(await refused('/styles/simple/1,x'), 'path', 'ids', '/1', /must be integer/);
    has(await refused('/styles/simple/1,2,3,4'), 'path', 'ids', '', /must NOT have more than 3 items/);
    assert.equal((await call('/styles/label/.3,4,5')).status, 200);
    has(await refused('/styles/label/3,4'), 'path', 'ids', '', /label style/);
    assert.equal((await call('/styles/matrix/;x=1;y=2')).status, 200);
    const m = await refused('/styles/matrix/;x=1;z=2');
    has(m, 'path', 'point', '/y', /is required/);
    has(m, 'path', 'point', '/z', /additionalProperties/);
    assert.equal((await call('/files/report.csv')).status, 200);
    has(await refused('/files/report.pdf'), 'path', 'ext', '', /must be one of/);
    has(await refused('/files/averyveryverylongname.json'), 'path', 'name', '', /must NOT have more than 8 characters/);
  });

  test('query styles: deepObject, form without explode, pipe and space delimited, exploded object, JSON content, allowEmptyValue, nullable', async () => {
    const ok = await call('/search?filter[age]=3&filter[kind]=cat&ids=1,2&pipes=a|bc&spaces=1.5%202&r=10&g=20&q=%7B%22term%22%3A%22x%22%7D&flag=&nullable=4');
    assert.equal(ok.status, 200, ok.text);
    const p = await refused('/search?filter[age]=-1&filter[owner]=me&ids=1,two&pipes=abcd|x&spaces=1&r=300&q=%7B%7D&nullable=x');
    has(p, 'query', 'filter', '/age', /must be >= 0/);
    has(p, 'query', 'filter', '/owner', /additionalProperties/);
    has(p, 'query', 'ids', '/1', /must be integer/);
    has(p, 'query', 'pipes', '/0', /must NOT have more than 3 characters/);
    has(p, 'query', 'spaces', '', /must NOT have fewer than 2 items/);
    has(p, 'query', 'color', '/r', /must be <= 255/);
    has(p, 'query', 'q', '/term', /is required/);
    has(p, 'query', 'nullable', '', /must be integer,null/);
    has(await refused('/search?ids='), 'query', 'ids', '', /must not be empty/);
    has(await refused('/search?q=notjson'), 'query', 'q', '', /not valid JSON/);
  });

  test('names from the client cannot pollute prototypes (deepObject, form bodies)', async () => {
    const q = await refused('/search?filter[__proto__][polluted]=yes&filter[constructor][prototype][polluted]=yes');
    has(q, 'query', 'filter', '/__proto__', /additionalProperties/);
    has(q, 'query', 'filter', '/constructor', /additionalProperties/);
    const f = await refused('/forms', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '__proto__=a&__proto__=b&name=Rex' });
    has(f, 'body', undefined, '/__proto__', /additionalProperties/);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  test('header arrays and cookie parameters', async () => {
    assert.equal((await call('/search', { headers: { 'x-ids': '1, 2', cookie: 'theme=dark; other=1' } })).status, 200);
    const p = await refused('/search', { headers: { 'x-ids': '1,b', cookie: 'theme=pink' } });
    has(p, 'header', 'X-Ids', '/1', /must be integer/);
    has(p, 'cookie', 'theme', '', /must be one of "dark", "light"/);
    assert.ok(!JSON.stringify(p).includes('pink'));
  });

  test('JSON body: additionalProperties false, required, nullable, exclusiveMinimum (3.0), readOnly not required', async () => {
    const headers = { 'content-type': 'application/json', 'x-api-key': 'k' };
    const ok = await call('/pets', { method: 'POST', headers, body: JSON.stringify({ name: 'Rex', tag: null, age: 1 }) });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(JSON.parse(ok.text).body, JSON.stringify({ name: 'Rex', tag: null, age: 1 }), 'the upstream gets the body unchanged');
    const p = await refused('/pets', { method: 'POST', headers, body: JSON.stringify({ tag: 5, age: 0, owner: 'x' }) });
    assert.equal(p.message, "request param doesn't conform to schema");
    has(p, 'body', undefined, '/name', /is required/);
    has(p, 'body', undefined, '/owner', /additionalProperties/);
    has(p, 'body', undefined, '/tag', /must be string,null/);
    has(p, 'body', undefined, '/age', /must be > 0/);
    has(await refused('/pets', { method: 'POST', headers, body: '{"name":' }), 'body', undefined, '', /not valid JSON/);
  });

  test('missing required body, wrong or missing content type', async () => {
    const p = await refused('/pets', { method: 'POST', headers: { 'x-api-key': 'k' } });
    assert.equal(p.message, "request doesn't conform to schema");
    has(p, 'body', undefined, '', /request body is required/);
    const ct = await refused('/pets', { method: 'POST', headers: { 'x-api-key': 'k', 'content-type': 'text/xml' }, body: '<pet/>' });
    has(ct, 'content-type', undefined, '', /not a documented media type.*application\/json/);
    assert.equal(ct.message, "request doesn't conform to schema");
    has(await refused('/pets', { method: 'POST', headers: { 'x-api-key': 'k' }, body: '{}' }), 'content-type', undefined, '', /missing/);
    const charset = await call('/pets', { method: 'POST', headers: { 'x-api-key': 'k', 'content-type': 'Application/JSON; charset=utf-8' }, body: '{"name":"a"}' });
    assert.equal(charset.status, 200, 'media type parameters and case are ignored');
  });

  test('form-urlencoded, multipart/form-data and text bodies', async () => {
    const form = { 'content-type': 'application/x-www-form-urlencoded' };
    assert.equal((await call('/forms', { method: 'POST', headers: form, body: 'name=Rex&age=3&tags=a&tags=b' })).status, 200);
    const f = await refused('/forms', { method: 'POST', headers: form, body: 'name=R&age=x&extra=1' });
    has(f, 'body', undefined, '/name', /fewer than 2/);
    has(f, 'body', undefined, '/age', /must be integer/);
    has(f, 'body', undefined, '/extra', /additionalProperties/);

    const multipart = (parts: [string, string, string?][]) => {
      const boundary = 'XyZ123';
      const body = parts
        .map(([name, value, filename]) => `--${boundary}\r\nContent-Disposition: form-data; name="${name}"${filename ? `; filename="${filename}"\r\nContent-Type: application/octet-stream` : ''}\r\n\r\n${value}\r\n`)
        .join('') + `--${boundary}--\r\n`;
      return { headers: { 'content-type': `multipart/form-data; boundary=${boundary}` }, body };
    };
    const good = multipart([['title', 'hello'], ['count', '3'], ['meta', '{"owner":"me"}'], ['file', 'small', 'a.bin']]);
    assert.equal((await call('/forms', { method: 'POST', ...good })).status, 200);
    const bad = multipart([['count', '9'], ['meta', '{}'], ['file', 'x'.repeat(40), 'a.bin']]);
    const m = await refused('/forms', { method: 'POST', ...bad });
    has(m, 'body', undefined, '/title', /is required/);
    has(m, 'body', undefined, '/count', /must be <= 5/);
    has(m, 'body', undefined, '/meta/owner', /is required/);
    has(m, 'body', undefined, '/file', /more than 16 characters/);

    assert.equal((await call('/forms', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hey' })).status, 200);
    has(await refused('/forms', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'too long' }), 'body', undefined, '', /more than 5 characters/);
  });

  test('security schemes: a credential must be presented where the scheme says, values never echoed', async () => {
    const body = '{"name":"a"}';
    const json = { 'content-type': 'application/json' };
    const p = await refused('/pets', { method: 'POST', headers: json, body });
    has(p, 'security', undefined, '', /apiKey \(header X-API-Key\)/);
    assert.equal((await call('/pets', { method: 'POST', headers: { ...json, 'x-api-key': 'anything' }, body })).status, 200);

    const del = await refused('/pets/1', { method: 'DELETE', headers: { authorization: 'Token abc' } });
    has(del, 'security', undefined, '', /bearer \(Authorization: Bearer\) \| basic \(Authorization: Basic\)/);
    assert.ok(!JSON.stringify(del).includes('abc'));
    assert.equal((await call('/pets/1', { method: 'DELETE', headers: { authorization: 'Bearer t0k3n' } })).status, 200);
    assert.equal((await call('/pets/1', { method: 'DELETE', headers: { authorization: 'basic dXNlcjpwdw==' } })).status, 200);

    // [{ apiKey, session }] | [{ oauth }] | [{ queryKey }]
    has(await refused('/pets/mine', { headers: { 'x-api-key': 'k' } }), 'security', undefined, '', /apiKey .* and session \(cookie SESSION\)/);
    assert.equal((await call('/pets/mine', { headers: { 'x-api-key': 'k', cookie: 'SESSION=s' } })).status, 200);
    assert.equal((await call('/pets/mine', { headers: { authorization: 'Bearer x' } })).status, 200);
    assert.equal((await call('/pets/mine?api_key=x')).status, 200);
    assert.equal((await call('/pets/mine?access_token=x')).status, 200, 'RFC 6750 query token for oauth2');
    // security: [{}] = anonymous allowed; security: [] = none
    assert.equal((await call('/pets/2', { headers: { 'x-request-tag': 'a' } })).status, 200);
  });

  test('unknown path and unknown method: 400 with Kong\'s message', async () => {
    const p = await refused('/nowhere');
    assert.equal(p.message, "request doesn't conform to schema");
    has(p, 'operation', undefined, '', /path not found in api specification/);
    has(await refused('/pets', { method: 'PUT' }), 'operation', undefined, '', /method PUT not allowed.*GET, POST/);
    assert.equal((await call('/pets?limit=5', { method: 'HEAD' })).status, 200, 'an undocumented HEAD is checked as the GET');
    const head = await call('/pets?limit=500', { method: 'HEAD' });
    assert.equal(head.status, 400);
    assert.equal(head.reached, false);
  });

  test('query_parameter_check and header_parameter_check refuse undeclared names; verbose_response details the message; base path', async () => {
    const ok = await call('/strict/pets?limit=5', { headers: { accept: 'application/json', 'user-agent': 'x' } });
    assert.equal(ok.status, 200, ok.text);
    const p = await refused('/strict/pets?limit=5&debug=1', { headers: { 'x-debug': 'on' } });
    has(p, 'query', 'debug', '', /not a parameter/);
    has(p, 'header', 'x-debug', '', /not a header/);
    assert.match(p.message, /^validation failed: query debug: is not a parameter of this operation; header x-debug/);
    // API keys in the query and the Authorization header of the schemes are not "unknown".
    assert.equal((await call('/strict/pets/mine?api_key=1')).status, 200);
    assert.equal((await call('/strict/pets/1', { method: 'DELETE', headers: { authorization: 'Bearer x' } })).status, 200);
    // Without the base path the operation is not found.
    has(await refused('/strict-nothing'), 'operation', undefined, '', /path not found/);
  });

  test('include_base_path uses the servers\' path (variables by default); max_structured_errors caps the list', async () => {
    assert.equal((await call('/v1/pets?limit=2')).status, 200);
    const p = await refused('/v1/pets?limit=0&sort=x&tags=y');
    assert.equal(p.errors.length, 2);
    assert.equal((p as unknown as { errors_omitted: number }).errors_omitted, 1);
  });

  test('notify only: violations are logged and the request goes through', async () => {
    const r = await call('/notify/pets?limit=1000');
    assert.equal(r.status, 200);
    assert.equal(r.reached, true);
    const line = gw.logs.find((l) => String(l.msg).includes('request does not conform') && l.request_id === r.headers['x-request-id']);
    assert.ok(line, 'a log line for this request');
    assert.ok(JSON.stringify(line.violations).includes('limit'), 'with its violations');
    const decisions = gw.accessLog.find((l) => l.request_id === r.headers['x-request-id'])?.decisions as { plugin: string; outcome: string }[] | undefined;
    assert.ok(decisions?.some((d) => d.plugin === 'oas-validation' && d.outcome === 'detect'), `a detect decision: ${JSON.stringify(decisions)}`);
  });

  test('numbers and booleans are checked as written, before coercion: 0x10, 0b11, 5e1, " 50" are not integers', async () => {
    for (const limit of ['0x10', '0b11', '0o7', '5e1', '%2050', '50%20', '5.0', '%2B5', '050', 'Infinity']) {
      has(await refused(`/pets?limit=${limit}`), 'query', 'limit', '', /must be written as a decimal integer|must be integer/);
    }
    assert.equal((await call('/pets?limit=50')).status, 200);
    assert.equal((await call('/pets?limit=-0')).status, 400, 'minimum 1 still applies');
    has(await refused('/pets/0x7', { headers: { 'x-request-tag': 'abc' } }), 'path', 'petId', '', /decimal integer/);
    has(await refused('/search?ids=1,0x2'), 'query', 'ids', '/1', /decimal integer/);
    assert.equal((await call('/search?spaces=1.5e1%202')).status, 200, 'numbers: the JSON number grammar');
    has(await refused('/search?spaces=0x1%202'), 'query', 'spaces', '/0', /JSON number/);
    const form = { 'content-type': 'application/x-www-form-urlencoded' };
    has(await refused('/forms', { method: 'POST', headers: form, body: 'name=Rex&age=0x3' }), 'body', undefined, '/age', /decimal integer/);
  });

  test('a body where the operation declares none is refused (400), unless allow_undeclared_request_body', async () => {
    const json = { 'content-type': 'application/json' };
    const p = await refused('/pets', { headers: json, body: '{"limit":1}' });
    assert.equal(p.message, "request doesn't conform to schema");
    has(p, 'body', undefined, '', /does not accept a request body/);
    const chunked = await refused('/pets', { method: 'GET', headers: { ...json, 'transfer-encoding': 'chunked'}, body: '{"limit":1}' });
    has(chunked, 'body', undefined, '', /does not accept a request body/);
    assert.equal((await call('/pets', { headers: { 'transfer-encoding': 'chunked'}, body: '' })).status, 200, 'an empty chunked body is no body');
    assert.equal((await call('/pets', { headers: { 'content-length': '0' } })).status, 200);
    const loose = await call('/loose/pets', { headers: json, body: '{"limit":1}' });
    assert.equal(loose.status, 200, loose.text);
    assert.equal(loose.reached, true);
  });

  test('a declared cookie sent twice is refused; so is a repeated Content-Type', async () => {
    has(await refused('/search', { headers: { cookie: 'theme=dark; theme=light' } }), 'cookie', 'theme', '', /only once/);
    assert.equal((await call('/search', { headers: { cookie: 'theme=dark; other=1; other=2' } })).status, 200, 'undeclared cookies may repeat');
    const before = upstream.requests.length;
    const body = '{"name":"Rex"}';
    // Raw headers: Content-Type twice (node would keep the first for the plugin; an upstream may read the last).
    const headers = ['host', '127.0.0.1', 'content-type', 'application/json', 'Content-Type', 'text/plain', 'content-length', String(body.length), 'x-api-key', 'k'];
    const r = await request(gw.port, '/pets', { method: 'POST', headers, body });
    assert.equal(r.status, 400, r.body);
    assert.equal(upstream.requests.length, before, 'not forwarded');
    has(r.json() as Problem, 'content-type', undefined, '', /only once/);
  });

  test('compressed request bodies (Content-Encoding) are decoded for validation and forwarded as sent; unknown codings 415, bombs 413', async () => {
    const headers = { 'content-type': 'application/json', 'x-api-key': 'k', 'content-encoding': 'gzip' };
    const ok = await call('/pets', { method: 'POST', headers, body: gzipSync('{"name":"Rex"}') });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(upstream.requests.at(-1)!.headers['content-encoding'], 'gzip', 'forwarded compressed');
    has(await refused('/pets', { method: 'POST', headers, body: gzipSync('{"name":""}') }), 'body', undefined, '/name', /fewer than 1/);
    has(await refused('/pets', { method: 'POST', headers, body: Buffer.from('{"name":"Rex"}') }), 'body', undefined, '', /not valid gzip data/);
    const unknown = await call('/pets', { method: 'POST', headers: { ...headers, 'content-encoding': 'compress' }, body: 'x' });
    assert.equal(unknown.status, 415, unknown.text);
    assert.equal(unknown.reached, false);
    assert.match(JSON.parse(unknown.text).message, /Content-Encoding 'compress' cannot be validated/);
    const bomb = gzipSync(Buffer.alloc(9 * 1024 * 1024, 0x20)); // 9 MiB of spaces: a few KiB compressed, above the 8 MiB limit once decoded
    const big = await call('/pets', { method: 'POST', headers, body: bomb });
    assert.equal(big.status, 413, big.text);
    assert.equal(big.reached, false);
  });

  test('notify only: bodies too large to validate, or in an unknown coding, are logged and let through', async () => {
    const big = await call('/notify/pets', { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': 'k' }, body: JSON.stringify({ name: 'x'.repeat(9 * 1024 * 1024) }) });
    assert.equal(big.status, 200);
    assert.equal(big.reached, true);
    assert.equal(upstream.requests.at(-1)!.body.length, 9 * 1024 * 1024 + 11, 'the whole body went upstream');
    const line = gw.logs.find((l) => String(l.msg).includes('not validated, let through') && l.request_id === big.headers['x-request-id']);
    assert.ok(line, 'logged');
    const chunked = await call('/notify/pets', { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': 'k', 'transfer-encoding': 'chunked'}, body: JSON.stringify({ name: 'y'.repeat(9 * 1024 * 1024) }) });
    assert.equal(chunked.status, 200, 'a chunked body found too large while reading');
    assert.equal(chunked.reached, true);
    const coded = await call('/notify/pets', { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': 'k', 'content-encoding': 'compress' }, body: 'x' });
    assert.equal(coded.status, 200);
    assert.equal(coded.reached, true);
  });

  test('a body larger than request_body_max_size is refused with 413 before validation', async () => {
    const big = JSON.stringify({ name: 'x'.repeat(9 * 1024 * 1024) });
    const r = await call('/pets', { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': 'k' }, body: big });
    assert.equal(r.status, 413);
    assert.equal(r.reached, false);
  });
});
