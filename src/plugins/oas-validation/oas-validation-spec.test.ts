import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { Agent, request as undiciRequest } from 'undici';
import { fileURLToPath } from 'node:url';
import { startGateway, startUpstream, type TestGateway, type TestUpstream } from '../../../test/helpers/gateway.ts';
import { request } from '../../../test/helpers/http.ts';
import { TempDir } from '../../../test/helpers/process.ts';

const GITHUB_SPEC = fileURLToPath(new URL('../../../test/fixtures/openapi/github/api.github.com.json.gz', import.meta.url));

/**
 * An HTTP server in another process: the document is fetched while the
 * gateway's thread waits at config load, so a server on that same thread
 * could never answer. Documents get an ETag (304 to a matching
 * If-None-Match) and may be served late (`delays`, ms by path);
 * `POST /__set?path=P` replaces a document; `GET /__log` lists the requests
 * received (path and If-None-Match).
 */
async function serveInChild(files: Record<string, string>, delays: Record<string, number> = {}): Promise<{ url: string; log(): Promise<{ url: string; inm: string | null }[]>; set(path: string, text: string): Promise<void>; close(): Promise<void> }> {
  const script = `
    const files = JSON.parse(process.env.FILES);
    const delays = JSON.parse(process.env.DELAYS);
    const log = [];
    const etag = (text) => '"' + require('node:crypto').createHash('sha1').update(text).digest('hex') + '"';
    const server = require('node:http').createServer((req, res) => {
      const path = req.url.split('?')[0];
      if (path === '/__log') return res.end(JSON.stringify(log));
      if (path === '/__set') {
        let body = '';
        req.on('data', (c) => (body += c));
        return req.on('end', () => { files[new URL(req.url, 'http://x').searchParams.get('path')] = body; res.end(); });
      }
      log.push({ url: req.url, inm: req.headers['if-none-match'] ?? null });
      setTimeout(() => {
        const text = files[path];
        if (text === undefined) { res.writeHead(404); return res.end('not found'); }
        if (req.headers['if-none-match'] === etag(text)) { res.writeHead(304); return res.end(); }
        res.writeHead(200, { 'content-type': 'application/yaml', etag: etag(text) });
        res.end(text);
      }, delays[path] ?? 0);
    });
    server.listen(0, '127.0.0.1', () => console.log(server.address().port));`;
  const child = spawn(process.execPath, ['-e', script], { env: { FILES: JSON.stringify(files), DELAYS: JSON.stringify(delays) }, stdio: ['ignore', 'pipe', 'inherit'] });
  const [chunk] = (await once(child.stdout!, 'data')) as [Buffer];
  const url = `http://127.0.0.1:${Number(chunk.toString().trim())}`;
  return {
    url,
    log: async () => (await (await fetch(`${url}/__log`)).json()) as { url: string; inm: string | null }[],
    set: async (path, text) => void (await fetch(`${url}/__set?path=${encodeURIComponent(path)}`, { method: 'POST', body: text })).text(),
    close: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill();
      await once(child, 'exit');
    },
  };
}

/** A document whose request body schema is in a sibling file. */
const MAIN_SPEC = `openapi: 3.0.3
info: { title: split, version: '1' }
paths:
  /remote:
    post:
      requestBody:
        content:
          application/json:
            schema: { $ref: './schemas.yaml#/Thing' }
      responses: { '200': { description: ok } }
`;

const SPEC_31 = `
openapi: 3.1.0
info: { title: t31, version: '1' }
paths:
  /items/{id}:
    put:
      parameters:
        - { name: id, in: path, required: true, schema: { type: string, format: uuid } }
      requestBody:
        required: true
        content:
          application/json:
            schema:
              $schema: https://spec.openapis.org/oas/3.1/dialect/base
              type: object
              required: [kind, size]
              unevaluatedProperties: false
              properties:
                kind: { const: item }
                size: { type: [integer, 'null'], exclusiveMinimum: 0 }
                pair: { type: array, prefixItems: [{ type: string }, { type: number }], items: false }
      responses: { '204': { description: done } }
`;

describe('oas-validation: documents and config', () => {
  let upstream: TestUpstream;
  let specServer: Awaited<ReturnType<typeof serveInChild>>;
  const tmp = new TempDir();
  const gateways: TestGateway[] = [];

  before(async () => {
    upstream = await startUpstream();
    const files: Record<string, string> = {
      '/spec/main.yaml': MAIN_SPEC,
      '/spec/schemas.yaml': 'Thing: { type: object, required: [n], properties: { n: { type: integer } } }\n',
    };
    specServer = await serveInChild(files);
  });

  after(async () => {
    for (const g of gateways) await g.close();
    await upstream?.close();
    await specServer?.close();
    tmp.remove();
  });

  const config = (plugin: object, paths = ['/']) => ({ services: [{ name: 's', url: upstream.url, routes: [{ name: 'r', paths, plugins: [{ name: 'oas-validation', config: plugin }] }] }] });
  async function gateway(plugin: object): Promise<TestGateway> {
    const gw = await startGateway(config(plugin));
    gateways.push(gw);
    return gw;
  }
  const put = (gw: TestGateway, path: string, body: unknown) =>
    request(gw.port, path, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

  test('OpenAPI 3.1: JSON Schema 2020-12 (type arrays, const, prefixItems, unevaluatedProperties, numeric exclusiveMinimum)', async () => {
    const gw = await gateway({ api_spec: SPEC_31, api_spec_encoded: false });
    const id = '/items/4b1c7f3e-8a4f-4a53-9e6f-2a1e0c9f4d11';
    assert.equal((await put(gw, id, { kind: 'item', size: null, pair: ['a', 1] })).status, 200);
    const r = await put(gw, '/items/not-a-uuid', { kind: 'other', size: 0, pair: ['a', 'b', 3], more: 1 });
    assert.equal(r.status, 400);
    const where = r.json().errors.map((e: { in: string; name?: string; pointer: string }) => `${e.in}:${e.name ?? ''}:${e.pointer}`).sort();
    assert.deepEqual(where, ['body::/kind', 'body::/more', 'body::/pair', 'body::/pair/1', 'body::/size', 'path:id:'].sort());
  });

  test("api_spec URI-encoded (Kong's default api_spec_encoded: true)", async () => {
    const gw = await gateway({ api_spec: encodeURIComponent(SPEC_31) });
    assert.equal((await put(gw, '/items/4b1c7f3e-8a4f-4a53-9e6f-2a1e0c9f4d11', { kind: 'item', size: 2 })).status, 200);
    assert.equal((await put(gw, '/items/4b1c7f3e-8a4f-4a53-9e6f-2a1e0c9f4d11', { kind: 'item' })).status, 400);
  });

  test('api_spec_file with a relative-file $ref', async () => {
    tmp.write('schemas.yaml', 'Thing: { type: object, required: [n], properties: { n: { type: integer } } }\n');
    const main = tmp.write('main.yaml', MAIN_SPEC);
    const gw = await gateway({ api_spec_file: main });
    const post = (body: unknown) => request(gw.port, '/remote', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    assert.equal((await post({ n: 1 })).status, 200);
    assert.equal((await post({ n: 'x' })).status, 400);
  });

  test('api_spec_url is fetched at config load, its relative $refs too', async () => {
    const gw = await gateway({ api_spec_url: `${specServer.url}/spec/main.yaml` });
    const post = (body: unknown) => request(gw.port, '/remote', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    assert.equal((await post({ n: 1 })).status, 200);
    const bad = await post({});
    assert.equal(bad.status, 400);
    assert.equal(bad.json().errors[0].pointer, '/n');
  });

  /** Starting must fail with a config error whose text matches every pattern. */
  async function refused(plugin: object, ...patterns: RegExp[]) {
    const started = startGateway(config(plugin)).then(async (gw) => {
      await gw.close(); // started after all: stop it, the assertion fails
      return gw;
    });
    await assert.rejects(started, (err: Error & { errors?: { path: string; message: string }[] }) => {
      const text = `${err.message}\n${JSON.stringify(err.errors ?? [])}`;
      for (const p of patterns) assert.match(text, p);
      return true;
    });
  }

  test('document errors at config load name the file, pointer, line and what to do', async () => {
    const bad = tmp.write('bad.yaml', 'openapi: 3.0.3\ninfo: { title: t }\npaths:\n  /x:\n    get:\n      parameters:\n        - { name: q, in: qury, schema: { type: string } }\n      responses: { "200": { description: ok } }\n');
    await refused({ api_spec_file: bad }, /bad\.yaml:2/, /\/info: missing required field 'version'/, /\/paths\/~1x\/get\/parameters\/0\/in \(line 7\): must be one of "path", "query", "header", "cookie"/, /plugins\/0\/config/);
    await refused({ api_spec: 'openapi: 3.0.0\ninfo: [', api_spec_encoded: false }, /api_spec:2/, /Fix the syntax/);
    await refused({ api_spec_file: tmp.file('missing.yaml') }, /missing\.yaml/, /cannot read the file \(ENOENT\)/);
    await refused({ api_spec: 'swagger: "2.0"\ninfo: { title: t, version: "1" }\npaths: {}\n', api_spec_encoded: false }, /Swagger 2\.0 is not supported/, /convert/);
    await refused({ api_spec_url: 'http://127.0.0.1:1/spec.yaml' }, /cannot fetch the document/);
    await refused({ api_spec_url: `${specServer.url}/spec/none.yaml` }, /HTTP 404/);
    const undeclared = 'openapi: 3.1.0\ninfo: { title: t, version: "1" }\npaths:\n  /a/{id}:\n    get:\n      responses: { "200": { description: ok } }\n';
    await refused({ api_spec: undeclared, api_spec_encoded: false }, /path parameter 'id' of '\/a\/\{id\}' is not declared/, /\/paths\/~1a~1\{id\}\/get/);
    const dangling = 'openapi: 3.1.0\ninfo: { title: t, version: "1" }\npaths:\n  /a:\n    post:\n      requestBody: { $ref: "#/components/requestBodies/Nope" }\n      responses: { "200": { description: ok } }\n';
    await refused({ api_spec: dangling, api_spec_encoded: false }, /\$ref '#\/components\/requestBodies\/Nope' points to nothing/);
    const badRegex = 'openapi: 3.1.0\ninfo: { title: t, version: "1" }\npaths:\n  /a:\n    get:\n      parameters: [{ name: q, in: query, schema: { type: string, pattern: "([a-z" } }]\n      responses: { "200": { description: ok } }\n';
    await refused({ api_spec: badRegex, api_spec_encoded: false }, /\/paths\/~1a\/get\/parameters\/0\/schema/, /cannot be compiled/);
    const noScheme = 'openapi: 3.1.0\ninfo: { title: t, version: "1" }\nsecurity: [{ nope: [] }]\npaths: {}\n';
    await refused({ api_spec: noScheme, api_spec_encoded: false }, /security scheme 'nope' is not defined/);
  });

  test('a reload that keeps the document text reuses its compiled validators; a changed text is compiled again', async () => {
    const doc = (title: string) =>
      `openapi: 3.1.0\ninfo: { title: ${title}, version: '1' }\npaths:\n  /a:\n    get: { operationId: dup, responses: { '200': { description: ok } } }\n  /b:\n    get: { operationId: dup, responses: { '200': { description: ok } } }\n`;
    const file = tmp.write('reload.yaml', doc('first'));
    const gw = await gateway({ api_spec_file: file });
    const compiled = () => gw.logs.filter((l) => String(l.msg).includes("operationId 'dup'")).length;
    assert.equal(compiled(), 1, 'compiling logs the duplicate operationId once');
    await gw.reload({ services: [{ name: 's', url: upstream.url, routes: [{ name: 'r', paths: ['/'], plugins: [{ name: 'oas-validation', config: { api_spec_file: file } }] }, { name: 'other', paths: ['/other'] }] }] });
    assert.equal(compiled(), 1, 'same text: not compiled again');
    assert.equal((await request(gw.port, '/a')).status, 200);
    assert.equal((await request(gw.port, '/c')).status, 400);
    tmp.replace('reload.yaml', doc('second'));
    await gw.reload(config({ api_spec_file: file }));
    assert.equal(compiled(), 2, 'changed text: compiled again');
  });

  test('errors never repeat the userinfo or query string of api_spec_url (tokens)', async () => {
    const port = new URL(specServer.url).port;
    await assert.rejects(startGateway(config({ api_spec_url: `http://robot:S3cretPass@127.0.0.1:${port}/spec/none.yaml?token=S3cretToken&v=2` })), (err: Error & { errors?: unknown }) => {
      const text = `${err.message}\n${JSON.stringify(err.errors ?? [])}`;
      assert.match(text, /HTTP 404/);
      assert.match(text, /REDACTED@127\.0\.0\.1:\d+\/spec\/none\.yaml\?token=REDACTED&v=REDACTED/);
      assert.doesNotMatch(text, /S3cret/);
      return true;
    });
  });

  test('api_spec_url: reloads reuse the fetched copy (no request, nothing compiled); after api_spec_url_ttl it is revalidated (304 keeps the validators); a server gone keeps the copy', async () => {
    const doc = (title: string) =>
      `openapi: 3.1.0\ninfo: { title: ${title}, version: '1' }\npaths:\n  /a:\n    get: { operationId: dup, responses: { '200': { description: ok } } }\n  /b:\n    get: { operationId: dup, responses: { '200': { description: ok } } }\n`;
    const server = await serveInChild({ '/cached.yaml': doc('first') });
    try {
      const url = `${server.url}/cached.yaml`
      const gw = await gateway({ api_spec_url: url });
      const compiled = () => gw.logs.filter((l) => String(l.msg).includes("operationId 'dup'")).length;
      const withRoute = (plugin: object) => ({ services: [{ name: 's', url: upstream.url, routes: [{ name: 'r', paths: ['/'], plugins: [{ name: 'oas-validation', config: plugin }] }, { name: 'other', paths: ['/other'] }] }] });
      assert.equal((await server.log()).length, 1);
      assert.equal(compiled(), 1);

      await gw.reload(withRoute({ api_spec_url: url }));
      assert.equal((await server.log()).length, 1, 'an unrelated reload asks nothing (within api_spec_url_ttl)');
      assert.equal(compiled(), 1, 'and compiles nothing');

      await gw.reload(withRoute({ api_spec_url: url, api_spec_url_ttl: 0 }));
      const log = await server.log();
      assert.equal(log.length, 2, 'ttl 0: revalidated');
      assert.match(String(log[1]!.inm), /^"[0-9a-f]{40}"$/, 'conditionally (If-None-Match)');
      assert.equal(compiled(), 1, 'not modified: the compiled validators are reused');

      await server.set('/cached.yaml', doc('second').replace('/b:', '/c:'));
      await gw.reload(withRoute({ api_spec_url: url, api_spec_url_ttl: 0 }));
      assert.equal(compiled(), 2, 'changed: compiled again');
      assert.equal((await request(gw.port, '/c')).status, 200);
      assert.equal((await request(gw.port, '/b')).status, 400);

      await server.close();
      await gw.reload(withRoute({ api_spec_url: url, api_spec_url_ttl: 0 }));
      assert.equal((await request(gw.port, '/c')).status, 200, 'the server is gone: the copy fetched before is used');
      assert.ok(gw.logs.some((l) => /cannot revalidate http:\/\/127\.0\.0\.1:\d+\/cached\.yaml .*using the copy fetched at/.test(String(l.msg))));
    } finally {
      await server.close();
    }
  });

  test('the config load waits at most api_spec_url_timeout for the document and its references together', async () => {
    const slow = await serveInChild(
      { '/slow/main.yaml': MAIN_SPEC, '/slow/schemas.yaml': 'Thing: { type: object }\n' },
      { '/slow/main.yaml': 700, '/slow/schemas.yaml': 700 },
    );
    try {
      // Each fetch alone is within the timeout; both together are not.
      await refused({ api_spec_url: `${slow.url}/slow/main.yaml`, api_spec_url_timeout: 1000 }, /took longer than 1000 ms/);
    } finally {
      await slow.close();
    }
  });

  test('a mutualTLS security scheme needs a client certificate on the connection', async () => {
    const pem = (name: string) => readFileSync(new URL(`../../../test/fixtures/tls/${name}`, import.meta.url), 'utf8');
    const spec = 'openapi: 3.1.0\ninfo: { title: t, version: "1" }\nsecurity: [{ mtls: [] }]\npaths:\n  /m: { get: { responses: { "200": { description: ok } } } }\ncomponents:\n  securitySchemes:\n    mtls: { type: mutualTLS }\n';
    const gw = await startGateway({
      ...config({ api_spec: spec, api_spec_encoded: false }),
      certificates: [{ cert: pem('localhost.crt'), key: pem('localhost.key'), snis: ['localhost'], client_ca: pem('client-ca.crt'), client_verify: 'optional' }],
    });
    gateways.push(gw);
    const withCert = new Agent({ connect: { ca: pem('ca.crt'), cert: pem('client.crt'), key: pem('client.key') } });
    const without = new Agent({ connect: { ca: pem('ca.crt') } });
    try {
      const ok = await undiciRequest(`${gw.tlsUrl}/m`, { dispatcher: withCert });
      await ok.body.text();
      assert.equal(ok.statusCode, 200);
      const no = await undiciRequest(`${gw.tlsUrl}/m`, { dispatcher: without });
      const p = (await no.body.json()) as { errors: { in: string; message: string }[] };
      assert.equal(no.statusCode, 400);
      assert.match(p.errors[0]!.message, /mtls \(a client certificate\)/);
    } finally {
      await withCert.close();
      await without.close();
    }
  });

  test('exactly one of api_spec, api_spec_file, api_spec_url', async () => {
    await refused({}, /exactly one of api_spec, api_spec_file, api_spec_url/);
    await refused({ api_spec: SPEC_31, api_spec_url: 'http://x/y' }, /exactly one of/);
    await refused({ api_spec: SPEC_31, bogus: 1 }, /bogus/);
  });

  test("GitHub's REST API description (6.9 MB, 1,100+ operations) compiles at config load and validates", async (t) => {
    const file = tmp.write('api.github.com.json', gunzipSync(readFileSync(GITHUB_SPEC)).toString('utf8'));
    const started = process.cpuUsage();
    const t0 = performance.now();
    const gw = await gateway({ api_spec_file: file, api_spec_encoded: false });
    const used = process.cpuUsage(started);
    const cpu = (used.user + used.system) / 1000;
    const wall = performance.now() - t0;
    // CPU time, not wall time: the machine running the tests may be busy. About 2.5 s on an idle machine, up to ~4 s
    // on a loaded one; the bound (3.5× the 2 MB document, so "a few seconds" scaled) catches a regression
    // to per-operation recompilation, not a few percent.
    assert.ok(cpu < 9_000, `compiling the GitHub description took ${Math.round(cpu)} ms of CPU (${Math.round(wall)} ms wall)`);
    t.diagnostic(`GitHub description compiled in ${Math.round(cpu)} ms CPU, ${Math.round(wall)} ms wall`);

    const json = { 'content-type': 'application/json' };
    const ok = await request(gw.port, '/repos/octo/hello/issues', { method: 'POST', headers: json, body: JSON.stringify({ title: 'Bug', labels: ['bug'] }) });
    assert.equal(ok.status, 200, ok.body);
    const noTitle = await request(gw.port, '/repos/octo/hello/issues', { method: 'POST', headers: json, body: JSON.stringify({ labels: 'bug', milestone: {} }) });
    assert.equal(noTitle.status, 400);
    const pointers = noTitle.json().errors.map((e: { pointer: string }) => e.pointer);
    assert.ok(pointers.includes('/title'), JSON.stringify(noTitle.json().errors));
    assert.ok(pointers.includes('/labels'), JSON.stringify(noTitle.json().errors));

    assert.equal((await request(gw.port, '/repos/octo/hello/issues?state=open&per_page=50')).status, 200);
    const list = await request(gw.port, '/repos/octo/hello/issues?state=bogus&per_page=x');
    assert.equal(list.status, 400);
    assert.deepEqual(list.json().errors.map((e: { name: string }) => e.name).sort(), ['per_page', 'state']);
    assert.equal((await request(gw.port, '/nope/nothing')).status, 400);
  });
});
