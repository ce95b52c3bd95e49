import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent } from 'node:http';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { startGateway, startUpstream, type TestGateway, type TestUpstream } from '../../../test/helpers/gateway.ts';
import { request, type Response } from '../../../test/helpers/http.ts';

const ALL_TYPES = ['sql', 'xss', 'path_traversal', 'command', 'ldap', 'nosql', 'ssti', 'ssi', 'java_exception', 'xpath_abbreviated', 'xpath_extended'];
const ALL_LOCATIONS = ['path_and_query', 'headers', 'cookies', 'body'];

const corpus = (file: string) =>
  readFileSync(new URL(`./corpus/${file}`, import.meta.url), 'utf8')
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('@@ '))
    .map((l) => l.replace(/\\n/g, '\n').replace(/\\t/g, '\t'));

/** One payload per family, each a value an application would pass to its interpreter. */
const FAMILIES: Record<string, string> = {
  sql: "1' OR '1'='1' --",
  xss: '<img src=x onerror=alert(1)>',
  path_traversal: '../../../../etc/passwd',
  command: '127.0.0.1; cat /etc/passwd',
  ldap: '*)(uid=*))(|(uid=*',
  nosql: '{"$ne": null}',
  ssti: '{{7*7}}',
};

describe('injection-protection', () => {
  let upstream: TestUpstream;
  let gw: TestGateway;
  const agent = new Agent({ keepAlive: true, maxSockets: 8 });

  before(async () => {
    upstream = await startUpstream();
    const route = (name: string, paths: string[], config: object) => ({ name, paths, plugins: [{ name: 'injection-protection', config }] });
    gw = await startGateway({
      _format_version: '3.0',
      services: [
        {
          name: 'svc',
          url: upstream.url,
          routes: [
            route('all', ['/'], { injection_types: ALL_TYPES, locations: ALL_LOCATIONS }),
            route('default', ['/default'], {}),
            route('log', ['/log-only'], { injection_types: ALL_TYPES, locations: ALL_LOCATIONS, enforcement_mode: 'log_only' }),
            route('custom', ['/custom'], {
              injection_types: [],
              locations: ['query', 'headers'],
              custom_injections: [{ name: 'internal_ids', regex: '^INT-[0-9]{4}$' }],
              error_status_code: 422,
              error_message: 'Unprocessable request',
            }),
            route('no-query', ['/no-query'], { injection_types: ALL_TYPES, locations: ['path', 'headers'] }),
            route('small-body', ['/small-body'], { injection_types: ['sql'], locations: ['body'], max_body_size: 64 }),
            route('small-body-allow', ['/small-body-allow'], { injection_types: ['sql'], locations: ['body'], max_body_size: 64, oversized_body: 'allow' }),
          ],
        },
      ],
    });
  });

  after(async () => {
    agent.destroy();
    await gw?.close();
    await upstream?.close();
  });

  async function send(path: string, o: { method?: string; headers?: Record<string, string>; body?: string } = {}) {
    const before = upstream.requests.length;
    const res = await request(gw.port, path, { agent, ...o });
    return Object.assign(res, { reached: upstream.requests.length > before });
  }

  const json = (body: unknown) => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const form = (fields: Record<string, string>) => ({
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields).toString(),
  });
  const q = (v: string) => encodeURIComponent(v);
  const text = (body: string, type = 'text/plain') => ({ method: 'POST', headers: { 'content-type': type }, body });
  /** A multipart/form-data body of one part (a field, or a file when `filename` is given). */
  const multipart = (name: string, value: string, filename?: string, type = 'text/plain') => {
    const disposition = `form-data; name="${name}"${filename === undefined ? '' : `; filename="${filename}"\r\nContent-Type: ${type}`}`;
    return text(`--B0undary\r\nContent-Disposition: ${disposition}\r\n\r\n${value}\r\n--B0undary--\r\n`, 'multipart/form-data; boundary=B0undary');
  };
  const xmlEscape = (v: string) => v.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  const xml = (v: string) => text(`<?xml version="1.0"?><request><item id="1">${xmlEscape(v)}</item></request>`, 'application/xml');

  function assertBlocked(res: Response & { reached: boolean }, location: string, type: string, payload: string) {
    assert.equal(res.status, 400, `${type} in ${location} should be refused: ${res.body}`);
    assert.equal(res.reached, false, 'the upstream must not see a refused request');
    assert.match(String(res.headers['content-type']), /application\/problem\+json/);
    const doc = res.json();
    assert.equal(doc.message, 'Bad Request');
    assert.equal(doc.status, 400);
    assert.equal(doc.detail, `Request refused: ${type} injection in ${location}.`);
    assert.ok(!res.body.includes(payload) && !res.body.includes(q(payload)), 'the answer never echoes the payload');
  }

  for (const [type, payload] of Object.entries(FAMILIES)) {
    test(`${type}: found in the query, the path, a header, a cookie, a JSON, form, multipart, text and XML body`, async () => {
      assertBlocked(await send(`/search?q=${q(payload)}`), 'query', type, payload);
      assertBlocked(await send(`/items/${q(payload)}/view`), 'path', type, payload);
      assertBlocked(await send('/profile', { headers: { 'x-note': payload } }), 'headers', type, payload);
      assertBlocked(await send('/profile', { headers: { cookie: `theme=dark; pref=${q(payload)}` } }), 'cookies', type, payload);
      assertBlocked(await send('/profile', json({ user: { bio: 'hello', tags: ['a', payload] } })), 'body', type, payload);
      assertBlocked(await send('/profile', form({ name: 'Jane', comment: payload })), 'body', type, payload);
      assertBlocked(await send('/profile', multipart('comment', payload)), 'body', type, payload);
      assertBlocked(await send('/profile', text(payload)), 'body', type, payload);
      assertBlocked(await send('/profile', xml(payload)), 'body', type, payload);
    });
  }

  test('a POST without Content-Length or Transfer-Encoding has no body: the plugin lets it through and it is proxied at once, bodiless', async () => {
    // The listeners skip node's stream life cycle for such requests (optimizeEmptyRequests): nothing may wait for a body.
    const before = upstream.requests.length;
    const answer = await new Promise<string>((resolve, reject) => {
      const s = connect(gw.port, '127.0.0.1', () => s.write('POST /?q=1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n'));
      let out = '';
      s.setEncoding('utf8');
      s.on('data', (d: string) => (out += d));
      s.on('end', () => resolve(out));
      s.on('error', reject);
    });
    assert.match(answer, /^HTTP\/1\.1 200 /);
    assert.equal(upstream.requests.length, before + 1);
    assert.equal(upstream.requests.at(-1)!.body, '');
  });

  test('a NoSQL operator as a JSON key or a bracketed query name is found', async () => {
    assertBlocked(await send('/signin', json({ username: 'admin', password: { $ne: null } })), 'body', 'nosql', '$ne');
    assertBlocked(await send('/signin?username=admin&password[$ne]=x'), 'query', 'nosql', '[$ne]');
    assertBlocked(await send('/signin', json({ $where: 'this.a == 1' })), 'body', 'nosql', '$where');
  });

  test('path traversal in the raw request path, plain or encoded, is found (the core normalises it away afterwards)', async () => {
    // (A path that climbs above the root is refused by the core itself, before any plugin.)
    const paths = ['/static/css/a/../../../etc/passwd', '/static/..%2f..%2f..%2fetc%2fpasswd', '/a/b/c/%2e%2e/%2e%2e/secret', '/static/..%252f..%252fetc%252fpasswd', '/files/..%5c..%5cwindows%5cwin.ini'];
    for (const path of paths) {
      assertBlocked(await send(path), 'path', 'path_traversal', '../');
    }
  });

  test('encoded payloads are decoded first: URL, double URL, %u, HTML entities, \\u escapes', async () => {
    const script = '<script>alert(1)</script>';
    const cases: [string, string][] = [
      [`/s?q=${q(q(script))}`, 'query'],
      [`/s?q=${q(q(q("' OR 1=1--")))}`, 'query'],
      [`/s?q=${'%u003cscript%u003ealert(1)%u003c/script%u003e'}`, 'query'],
      [`/s?q=${q('&#60;script&#62;alert(1)&#60;/script&#62;')}`, 'query'],
      [`/s?q=${q('&lt;svg onload=alert(1)&gt;')}`, 'query'],
      [`/s?q=${q('\\u003cscript\\u003ealert(1)\\u003c/script\\u003e')}`, 'query'],
    ];
    for (const [path, location] of cases) {
      const res = await send(path);
      assert.equal(res.status, 400, `${path} should be refused`);
      assert.match(res.json().detail, new RegExp(`injection in ${location}`));
    }
    // A JSON string with \u escapes that JSON.parse leaves as text (double-escaped) is decoded as well.
    const res = await send('/p', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"c":"\\\\u003cscript\\\\u003ealert(1)\\\\u003c/script\\\\u003e"}' });
    assert.equal(res.status, 400);
    assert.match(res.json().detail, /xss injection in body/);
  });

  test("Kong's defaults: sql in the path and query only, 400 Bad Request", async () => {
    const blocked = await send(`/default?id=${q("1 UNION SELECT password FROM users--")}`);
    assert.equal(blocked.status, 400);
    assert.equal(blocked.json().message, 'Bad Request');
    assert.equal(blocked.json().detail, 'Request refused: sql injection in query.');
    // Not enabled by default: other types, headers, cookies, body.
    assert.equal((await send(`/default?q=${q('<script>alert(1)</script>')}`)).status, 200);
    assert.equal((await send('/default', { headers: { 'x-id': "1' OR '1'='1" } })).status, 200);
    assert.equal((await send('/default', json({ id: "1' OR '1'='1" }))).status, 200);
  });

  test('log_only lets the request through and logs the location and type, never the value', async () => {
    const payload = "1' UNION SELECT secret_column FROM vault--";
    const res = await send(`/log-only?id=${q(payload)}`);
    assert.equal(res.status, 200);
    assert.equal(res.reached, true);
    assert.ok(JSON.parse(res.body).url.endsWith(`?id=${q(payload)}`), 'the upstream gets the request unchanged');
    const line = gw.logs.find((l) => l.plugin === 'injection-protection' && l.mode === 'log_only');
    assert.ok(line, 'a warning is logged');
    assert.equal(line.level, 40);
    assert.equal(line.injection, 'sql');
    assert.equal(line.mode, 'log_only');
    assert.equal(typeof line.request_id, 'string');
    assert.ok(!JSON.stringify(gw.logs).includes('secret_column'), 'the payload is never logged');
  });

  test('custom injections: matched on decoded values, reported by name, with the configured status and message', async () => {
    const res = await send('/custom?ref=INT-1234');
    assert.equal(res.status, 422);
    assert.equal(res.json().message, 'Unprocessable request');
    assert.equal(res.json().detail, 'Request refused: internal_ids injection in query.');
    assert.equal((await send('/custom', { headers: { 'x-ref': 'INT-9876' } })).status, 422);
    assert.equal((await send('/custom?ref=INT-12345')).status, 200);
    // Built-in types are off on this route.
    assert.equal((await send(`/custom?q=${q("' OR 1=1--")}`)).status, 200);
  });

  test('a location that is not enabled is not inspected', async () => {
    const sql = "' OR 1=1--";
    const body = json({ a: sql });
    const off = await send(`/no-query?q=${q(sql)}`, { ...body, headers: { ...body.headers, cookie: `c=${q(sql)}` } });
    assert.equal(off.status, 200);
    assert.equal(off.reached, true);
    assert.equal((await send('/no-query', { headers: { 'x-q': sql } })).status, 400);
    assert.equal((await send(`/no-query/${q(sql)}`)).status, 400);
  });

  test('credentials headers are not inspected by default; other headers are', async () => {
    assert.equal((await send('/h', { headers: { authorization: "Basic ' OR 1=1--" } })).status, 200);
    assert.equal((await send('/h', { headers: { 'user-agent': "' OR 1=1--" } })).status, 400);
  });

  test('a JSON or form body larger than max_body_size: 413 by default, passed uninspected with oversized_body: allow', async () => {
    const big = json({ a: 'x'.repeat(100), b: "' OR 1=1--" });
    const refused = await send('/small-body', big);
    assert.equal(refused.status, 413);
    assert.equal(refused.json().message, 'Request body too large to inspect');
    const allowed = await send('/small-body-allow', big);
    assert.equal(allowed.status, 200);
    assert.equal(JSON.parse(JSON.parse(allowed.body).body).b, "' OR 1=1--", 'the body reaches the upstream intact');
    assert.equal((await send('/small-body', json({ b: "' OR 1=1--" }))).status, 400);
    assert.equal((await send('/small-body', json({ b: 'fine' }))).status, 200);
  });

  test('a binary body is not read; a text body is', async () => {
    const res = await send('/upload', { method: 'POST', headers: { 'content-type': 'image/png' }, body: "' OR 1=1--" });
    assert.equal(res.status, 200);
    assert.equal(JSON.parse(res.body).body, "' OR 1=1--");
    assertBlocked(await send('/upload', text("' OR 1=1--")), 'body', 'sql', "' OR 1=1--");
  });

  test('benign corpus: ordinary names, prose, queries, dates, e-mails, URLs, markdown and code are never refused', async () => {
    const values = corpus('benign.txt');
    assert.ok(values.length > 300);
    const refused: string[] = [];
    for (const v of values) {
      if ((await send(`/search?q=${q(v)}`)).status !== 200) refused.push(`query: ${v}`);
      if ((await send('/notes', json({ title: 'note', text: v, meta: { [v.slice(0, 20)]: true } }))).status !== 200) refused.push(`json: ${v}`);
      if ((await send('/notes', form({ text: v }))).status !== 200) refused.push(`form: ${v}`);
      if ((await send('/notes', multipart('text', v))).status !== 200) refused.push(`multipart: ${v}`);
      if ((await send('/notes', text(v))).status !== 200) refused.push(`text/plain: ${v}`);
      if ((await send('/notes', xml(v))).status !== 200) refused.push(`xml: ${v}`);
      const header = /^[\x20-\x7e]+$/.test(v) ? v : q(v);
      if ((await send('/notes', { headers: { 'x-note': header, cookie: `note=${q(v)}` } })).status !== 200) {
        refused.push(`header/cookie: ${v}`);
      }
    }
    for (const doc of corpus('benign-json.txt')) {
      const res = await send('/api/items', { method: 'POST', headers: { 'content-type': 'application/json' }, body: doc });
      if (res.status !== 200) refused.push(`json document: ${doc}`);
      if ((await send('/api/items', multipart('doc', doc, 'items.json', 'application/json'))).status !== 200) refused.push(`json file: ${doc}`);
    }
    const xmlTypes = ['application/xml', 'text/xml', 'application/soap+xml'];
    for (const [i, doc] of corpus('benign-xml.txt').entries()) {
      const type = doc.startsWith('<svg') ? 'image/svg+xml' : xmlTypes[i % xmlTypes.length]!;
      if ((await send('/api/items', text(doc, type))).status !== 200) refused.push(`xml document (${type}): ${doc}`);
      if ((await send('/api/items', multipart('doc', doc, 'doc.xml', type))).status !== 200) refused.push(`xml file: ${doc}`);
    }
    assert.deepEqual(refused, [], 'false positives');
  });

  test('malicious corpus: detection rate in the query (reported), the same in a JSON, multipart, text and XML body', async (t) => {
    const rows = corpus('malicious.txt').map((l) => [l.slice(0, l.indexOf(' ')), l.slice(l.indexOf(' ') + 1)] as const);
    assert.ok(rows.length > 300);
    const byFamily = new Map<string, [number, number]>();
    let found = 0;
    for (const [family, payload] of rows) {
      const res = await send(`/search?q=${q(payload)}`);
      const hit = res.status === 400 ? 1 : 0;
      const bodies = { json: json({ q: payload }), multipart: multipart('q', payload), 'text/plain': text(payload), xml: xml(payload) };
      for (const [kind, body] of Object.entries(bodies)) {
        const inBody = (await send('/search', body)).status === 400 ? 1 : 0;
        assert.equal(inBody, hit, `same verdict in the query and in a ${kind} body: ${payload}`);
      }
      found += hit;
      const f = byFamily.get(family) ?? [0, 0];
      byFamily.set(family, [f[0] + hit, f[1] + 1]);
    }
    const rate = found / rows.length;
    t.diagnostic(`detected ${found}/${rows.length} (${(rate * 100).toFixed(1)}%): ${[...byFamily].map(([f, [h, n]]) => `${f} ${h}/${n}`).join(', ')}`);
    assert.ok(rate >= 0.95, `detection rate ${rate}`);
  });
});

describe('injection-protection config', () => {
  const config = (c: object) => ({ _format_version: '3.0', services: [{ name: 's', url: 'http://127.0.0.1:9', routes: [{ name: 'r', paths: ['/'], plugins: [{ name: 'injection-protection', config: c }] }] }] });

  test('an invalid custom regex, an unknown type or nothing to detect is a config error', async () => {
    await assert.rejects(startGateway(config({ custom_injections: [{ name: 'x', regex: '(' }] })), /custom_injections\[0\]\.regex/);
    await assert.rejects(startGateway(config({ injection_types: ['sqli'] })));
    await assert.rejects(startGateway(config({ injection_types: [] })), /nothing to detect/);
    await assert.rejects(startGateway(config({ error_status_code: 500 })));
  });
});
