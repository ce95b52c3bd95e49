/**
 * openapi2config: the mapping (servers, path templates, names, tags, security
 * schemes, x-palisade-* extensions), the generated YAML passing the config
 * loader and `palisade config validate`, and the generated routes and auth
 * plugins doing what the document says on a real gateway with a real upstream.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { parseConfig } from '../../src/config/load.ts';
import { loadOpenApi } from '../../src/openapi/document.ts';
import { ConversionError, openapiToConfig, type ToConfigOptions } from '../../src/openapi/to-config.ts';
import { render } from '../../src/cli/openapi2config.ts';
import { startGateway, startUpstream, type TestGateway, type TestUpstream } from '../helpers/gateway.ts';
import { request } from '../helpers/http.ts';
import { runPalisade, TempDir } from '../helpers/process.ts';

type Obj = Record<string, any>;

const SPEC = `openapi: 3.0.3
info: { title: "Pet Store API", version: "1.0" }
servers:
  - url: "https://{env}.pets.example.com:{port}/v1"
    variables:
      env: { default: api, enum: [api, sandbox] }
      port: { default: "8443" }
  - url: http://localhost:4010/v1
tags: [{ name: pets }]
security: [{ apiKey: [] }]
x-palisade-plugins:
  - name: rate-limiting
    config: { minute: 1000 }
x-palisade-service: { retries: 1, read_timeout: 5000 }
paths:
  /pets:
    get:
      operationId: listPets
      tags: [pets, public]
      responses: { "200": { description: ok } }
    post:
      operationId: createPet
      x-palisade-plugins:
        - name: rate-limiting
          config: { minute: 10 }
        - name: request-size-limiting
          config: { allowed_payload_size: 1 }
      responses: { "201": { description: created } }
  /pets/mine:
    get:
      operationId: listPets
      responses: { "200": { description: ok } }
  /pets/{pet-id}:
    parameters: [{ name: pet-id, in: path, required: true, schema: { type: string } }]
    x-palisade-route: { preserve_host: true }
    get:
      operationId: "show pet/by id"
      responses: { "200": { description: ok } }
    delete:
      x-palisade-route: { name: remove-pet }
      responses: { "204": { description: gone } }
  /files/{name}.json:
    get:
      parameters: [{ name: name, in: path, required: true, schema: { type: string } }]
      responses: { "200": { description: ok } }
  /internal/metrics:
    x-palisade-ignore: true
    get: { responses: { "200": { description: ok } } }
  /health:
    get:
      security: []
      x-palisade-ignore: false
      responses: { "200": { description: ok } }
  /orders:
    servers: [{ url: "https://orders.example.com/api" }]
    get:
      operationId: listOrders
      responses: { "200": { description: ok } }
components:
  securitySchemes:
    apiKey: { type: apiKey, in: header, name: X-API-Key }
`;

async function convert(text: string, opts: Partial<ToConfigOptions> = {}) {
  const doc = await loadOpenApi({ text, name: 'spec.yaml' });
  return openapiToConfig(doc, { specRef: './spec.yaml', validation: false, ...opts });
}

const routes = (cfg: Obj) => (cfg.services as Obj[]).flatMap((s) => s.routes as Obj[]);
const route = (cfg: Obj, name: string) => routes(cfg).find((r) => r.name === name)!;

test('servers: a service per server URL, variables replaced by their defaults, x-palisade-service merged', async () => {
  const { config } = await convert(SPEC);
  const [main, orders] = config.services as Obj[];
  assert.equal(config._format_version, '3.0');
  assert.equal(main!.name, 'pet-store-api');
  assert.equal(main!.url, 'https://api.pets.example.com:8443/v1');
  assert.equal(main!.retries, 1);
  assert.equal(main!.read_timeout, 5000);
  assert.equal(orders!.name, 'pet-store-api-orders-example-com-api', 'path-level servers: a service of their own');
  assert.equal(orders!.url, 'https://orders.example.com/api');
  assert.deepEqual(orders!.routes.map((r: Obj) => r.name), ['listOrders']);

  const second = await convert(SPEC, { server: '1' });
  assert.equal((second.config.services as Obj[])[0]!.url, 'http://localhost:4010/v1', '--server 1 picks the second server');
  const override = await convert(SPEC, { server: 'http://127.0.0.1:9999/base' });
  assert.equal((override.config.services as Obj[]).length, 1, '--server URL: every operation goes to that upstream');
  assert.equal((override.config.services as Obj[])[0]!.url, 'http://127.0.0.1:9999/base');

  await assert.rejects(convert(SPEC.replace(/^servers:[\s\S]*?(?=^tags:)/m, 'servers: [{ url: /v1 }]\n')), (e: Error) => e instanceof ConversionError && /not absolute .*pass --server URL/.test(e.message));
  await assert.rejects(convert(SPEC, { server: '5' }), /--server 5: .* has 2 servers \(0–1\)/);
});

test('routes: one per path and method, regex paths with named captures, names from operationId (sanitised, unique), tags', async () => {
  const { config } = await convert(SPEC);
  assert.deepEqual(
    routes(config).map((r) => [r.name, r.methods.join(), r.paths.join(), r.regex_priority]),
    [
      ['listPets', 'GET', '~/pets$', 1],
      ['createPet', 'POST', '~/pets$', 1],
      ['listPets-2', 'GET', '~/pets/mine$', 2],
      ['show-pet-by-id', 'GET', '~/pets/(?<pet_id>[^/]+)$', 1],
      ['remove-pet', 'DELETE', '~/pets/(?<pet_id>[^/]+)$', 1],
      ['get-files-name.json', 'GET', '~/files/(?<name>[^/]+)\\.json$', 1],
      ['get-health', 'GET', '~/health$', 1],
      ['listOrders', 'GET', '~/orders$', 1],
    ],
  );
  assert.ok(routes(config).every((r) => r.strip_path === false), 'the upstream gets the whole path after the server path');
  assert.deepEqual(route(config, 'listPets').tags, ['pets', 'public']);
  assert.equal(route(config, 'createPet').tags, undefined);
  assert.equal(route(config, 'show-pet-by-id').preserve_host, true, 'x-palisade-route of the path item');
  assert.ok(!routes(config).some((r) => r.paths[0].includes('internal')), 'x-palisade-ignore: true leaves the path out');
});

test('x-palisade-plugins: document → service, operation → route (merged over the service instance by name)', async () => {
  const { config } = await convert(SPEC);
  const main = (config.services as Obj[])[0]!;
  assert.deepEqual(main.plugins.find((p: Obj) => p.name === 'rate-limiting'), { name: 'rate-limiting', config: { minute: 1000 } });
  const create = route(config, 'createPet');
  assert.deepEqual(create.plugins.map((p: Obj) => [p.name, p.config]), [
    ['key-auth', { key_names: ['X-API-Key'], key_in_header: true, key_in_query: false, hide_credentials: true }], // /health differs: auth per route
    ['rate-limiting', { minute: 10 }],
    ['request-size-limiting', { allowed_payload_size: 1 }],
  ]);
  const v = await convert(SPEC, { validation: true });
  assert.deepEqual((v.config.services as Obj[])[0]!.plugins[0], { name: 'oas-validation', config: { api_spec_file: './spec.yaml', validate_request_security: false } }, 'oas-validation on every service, naming the document');
});

const SECURED = (security: string, schemes: string, opSecurity = '') => `openapi: 3.1.0
info: { title: secured, version: "1" }
servers: [{ url: "http://127.0.0.1:1" }]
security: ${security}
paths:
  /a:
    get:
      ${opSecurity}
      responses: { "200": { description: ok } }
  /b:
    get: { responses: { "200": { description: ok } } }
components:
  securitySchemes:
${schemes}
`;
const SCHEMES = `    header: { type: apiKey, in: header, name: X-API-Key }
    query: { type: apiKey, in: query, name: api_key }
    cookie: { type: apiKey, in: cookie, name: session }
    basic: { type: http, scheme: basic }
    bearer: { type: http, scheme: bearer, bearerFormat: JWT }
    oauth: { type: oauth2, flows: { clientCredentials: { tokenUrl: "https://idp.example.com/token", scopes: {} } } }
    oidc: { type: openIdConnect, openIdConnectUrl: "https://idp.example.com/.well-known/openid-configuration" }
    mtls: { type: mutualTLS }
    digest: { type: http, scheme: digest }
    header2: { type: apiKey, in: header, name: X-Other-Key }`;

test('security schemes → auth plugins; the same on every route → on the service', async () => {
  const cases: [string, Obj[]][] = [
    ['[{ header: [] }]', [{ name: 'key-auth', config: { key_names: ['X-API-Key'], key_in_header: true, key_in_query: false, hide_credentials: true } }]],
    ['[{ query: [] }]', [{ name: 'key-auth', config: { key_names: ['api_key'], key_in_header: false, key_in_query: true, hide_credentials: true } }]],
    ['[{ basic: [] }]', [{ name: 'basic-auth', config: { hide_credentials: true } }]],
    ['[{ bearer: [] }]', [{ name: 'jwt', config: { header_names: ['authorization'], uri_param_names: [], cookie_names: [] } }]],
    ['[{ basic: [], bearer: [] }]', [{ name: 'basic-auth', config: { hide_credentials: true } }, { name: 'jwt', config: { header_names: ['authorization'], uri_param_names: [], cookie_names: [] } }]],
  ];
  for (const [security, plugins] of cases) {
    const { config, warnings } = await convert(SECURED(security, SCHEMES));
    const svc = (config.services as Obj[])[0]!;
    assert.deepEqual(svc.plugins, plugins, security);
    assert.ok(routes(config).every((r) => r.plugins === undefined), `${security}: nothing per route`);
    assert.equal(config.consumers, undefined);
    assert.deepEqual(warnings, []);
  }
});

test('security alternatives: "any of them" with the anonymous consumer and a 401 for it; {} makes authentication optional', async () => {
  const { config } = await convert(SECURED('[{ header: [] }, { query: [] }, { bearer: [] }]', SCHEMES));
  const svc = (config.services as Obj[])[0]!;
  assert.deepEqual(svc.plugins, [
    { name: 'key-auth', config: { key_names: ['X-API-Key', 'api_key'], key_in_header: true, key_in_query: true, hide_credentials: true, anonymous: 'anonymous' } },
    { name: 'jwt', config: { header_names: ['authorization'], uri_param_names: [], cookie_names: [], anonymous: 'anonymous' } },
  ]);
  assert.deepEqual(config.consumers, [{ username: 'anonymous' }]);
  assert.deepEqual(config.plugins, [
    { name: 'request-termination', service: 'secured', consumer: 'anonymous', config: { status_code: 401, message: 'Unauthorized: valid credentials required (key-auth, jwt)' } },
  ], 'the 401 for the anonymous consumer, scoped to service + consumer');

  const optional = await convert(SECURED('[{ basic: [] }, {}]', SCHEMES));
  assert.deepEqual((optional.config.services as Obj[])[0]!.plugins, [{ name: 'basic-auth', config: { hide_credentials: true, anonymous: 'anonymous' } }]);
});

test('operation security differs → per route; security: [] → none', async () => {
  const { config, warnings } = await convert(SECURED('[{ basic: [] }]', SCHEMES, 'security: []'));
  assert.equal(route(config, 'get-a').plugins, undefined, 'security: [] — no authentication');
  assert.deepEqual(route(config, 'get-b').plugins, [{ name: 'basic-auth', config: { hide_credentials: true } }]);
  assert.deepEqual((config.services as Obj[])[0]!.plugins, []);
  assert.deepEqual(warnings, []);
});

const UNSUPPORTED: [string, RegExp, string][] = [
  ['oauth', /no OpenID Connect \/ OAuth 2\.0 plugin exists yet/, "'oauth' (oauth2)"],
  ['oidc', /no OpenID Connect \/ OAuth 2\.0 plugin exists yet/, "'oidc' (openIdConnect)"],
  ['cookie', /API key in a cookie is not supported by key-auth/, "'cookie' (API key in a cookie)"],
  ['mtls', /mtls-auth needs the CA certificates/, "'mtls' (mutualTLS)"],
  ['digest', /http 'digest' authentication has no Palisade plugin/, "'digest' (http digest)"],
];

test('authentication fails closed: a scheme no plugin enforces → a route-scoped request-termination 401 naming it, warnings and comments', async () => {
  for (const [scheme, reason, label] of UNSUPPORTED) {
    const r = await convert(SECURED(`[{ ${scheme}: [] }]`, SCHEMES));
    for (const name of ['get-a', 'get-b']) {
      assert.deepEqual(route(r.config, name).plugins, [
        { name: 'request-termination', config: { status_code: 401, message: `Unauthorized: this operation requires authentication Palisade cannot enforce yet: ${label}` } },
      ], `${scheme}: ${name} answers 401`);
    }
    assert.deepEqual((r.config.services as Obj[])[0]!.plugins, [], 'not on the service: each route has its own');
    assert.equal(r.warnings.length, 4, `${scheme}: 2 routes × (unsupported scheme, the route answers 401)`);
    assert.match(r.warnings[0]!.message, reason);
    assert.match(r.warnings[1]!.message, /nothing enforces this security requirement, so the route answers 401 \(request-termination\).*--allow-unenforced-security/);
    const yaml = render(r, 'palisade openapi2config spec.yaml', false);
    assert.match(yaml, /^ {6}# WARNING: get-a: security scheme '\w+'/m, 'a comment above the route');
    assert.deepEqual(parseYaml(yaml), r.config, 'comments do not change the data');
  }
  // Required together with a supported scheme: the supported one alone must not be enough.
  const both = await convert(SECURED('[{ header: [], oauth: [] }]', SCHEMES));
  assert.deepEqual(route(both.config, 'get-a').plugins.map((p: Obj) => p.name), ['request-termination']);
  assert.deepEqual((both.config.services as Obj[])[0]!.plugins.map((p: Obj) => p.name), ['key-auth']);
  // Two API keys required together would become one key-auth accepting either: not enforced either.
  const twoKeys = await convert(SECURED('[{ header: [], header2: [] }]', SCHEMES));
  assert.match(route(twoKeys.config, 'get-a').plugins[0].config.message, /'header2' together with another key-auth scheme/);
  // An alternative Palisade enforces: the others are refused by the anonymous 401, nothing more needed.
  const either = await convert(SECURED('[{ header: [] }, { oauth: [] }]', SCHEMES));
  assert.equal(route(either.config, 'get-a').plugins, undefined);
  assert.deepEqual((either.config.services as Obj[])[0]!.plugins.map((p: Obj) => p.name), ['key-auth']);
  assert.ok(either.warnings.some((w) => /clients presenting only 'oauth' \(oauth2\) are refused \(401\)/.test(w.message)));
  // Optional authentication ({}): nothing to enforce.
  const optional = await convert(SECURED('[{ oauth: [] }, {}]', SCHEMES));
  assert.equal(route(optional.config, 'get-a').plugins, undefined);
});

test('--allow-unenforced-security: no 401, loud warnings', async () => {
  const r = await convert(SECURED('[{ oauth: [] }]', SCHEMES), { allowUnenforcedSecurity: true });
  assert.ok(routes(r.config).every((x) => x.plugins === undefined), 'served unauthenticated');
  assert.equal(r.warnings.length, 4);
  assert.match(r.warnings[1]!.message, /UNENFORCED: no plugin enforces this security requirement, requests pass UNAUTHENTICATED \(--allow-unenforced-security\)/);
});

test('the rendered YAML (and JSON) passes the config loader', async () => {
  for (const doc of [SPEC, SECURED('[{ header: [] }, { bearer: [] }]', SCHEMES), SECURED('[{ oauth: [] }]', SCHEMES), SECURED('[{ header: [], mtls: [] }]', SCHEMES)]) {
    const r = await convert(doc, { validation: true });
    assert.doesNotThrow(() => parseConfig(render(r, 'palisade openapi2config spec.yaml', false), 'generated.yaml'));
    assert.doesNotThrow(() => parseConfig(render(r, 'palisade openapi2config spec.yaml', true), 'generated.json'));
  }
});

test('palisade openapi2config -o FILE; palisade config validate FILE', async () => {
  const dir = new TempDir();
  try {
    const spec = dir.write('spec.yaml', SPEC);
    const out = dir.file('palisade.yaml');
    const gen = await runPalisade(['openapi2config', 'spec.yaml', '-o', out], { cwd: dir.path });
    assert.equal(gen.code, 0, gen.stderr);
    assert.equal(gen.stdout, '');
    assert.match(gen.stderr, /wrote .*palisade\.yaml \(2 services, 8 routes\); check it with: palisade config validate/);
    assert.match(readFileSync(out, 'utf8'), /- name: oas-validation\n {8}config:\n {10}api_spec_file: spec\.yaml\n/);
    const check = await runPalisade(['config', 'validate', out], { cwd: dir.path }); // the plugin reads spec.yaml (relative to the working directory)
    assert.equal(check.code, 0, check.stdout + check.stderr);
    assert.match(check.stdout, /valid \(2 services, 8 routes, 0 consumers\)/);

    const stdout = await runPalisade(['openapi2config', 'spec.yaml', '--no-validation'], { cwd: dir.path });
    assert.equal(stdout.code, 0);
    assert.match(stdout.stdout, /^# Generated by `palisade openapi2config spec\.yaml --no-validation`: Palisade declarative config/);
    assert.match(stdout.stdout, /^ {8}methods: \[GET\]$/m);

    dir.write('oauth.yaml', SECURED('[{ oauth: [] }]', SCHEMES));
    const closed = await runPalisade(['openapi2config', 'oauth.yaml', '-o', 'oauth-palisade.yaml'], { cwd: dir.path });
    assert.equal(closed.code, 0, closed.stderr);
    assert.match(closed.stderr, /2 routes answer 401 to every request: their security schemes cannot be enforced by Palisade yet/);
    assert.match(readFileSync(dir.file('oauth-palisade.yaml'), 'utf8'), /- name: request-termination\n +config:\n +status_code: 401\n +message: "Unauthorized: this operation requires authentication Palisade cannot enforce yet: 'oauth' \(oauth2\)"/);
    const closedCheck = await runPalisade(['config', 'validate', 'oauth-palisade.yaml'], { cwd: dir.path });
    assert.equal(closedCheck.code, 0, closedCheck.stdout + closedCheck.stderr);
    const open = await runPalisade(['openapi2config', 'oauth.yaml', '--allow-unenforced-security'], { cwd: dir.path });
    assert.equal(open.code, 0, open.stderr);
    assert.match(open.stderr, /WARNING: 2 routes are served WITHOUT the authentication the document requires/);
    assert.doesNotMatch(open.stdout, /request-termination/);

    const missing = await runPalisade(['openapi2config', dir.file('nope.yaml')]);
    assert.equal(missing.code, 2, 'unreadable: usage error');
    const unreachable = await runPalisade(['openapi2config', 'http://127.0.0.1:1/openapi.yaml']);
    assert.equal(unreachable.code, 2, `a URL that cannot be fetched (loaded in a worker) is unreadable too\n${unreachable.stderr}`);
    assert.match(unreachable.stderr, /cannot read http:\/\/127\.0\.0\.1:1\/openapi\.yaml: cannot fetch the document/);
    const swagger = await runPalisade(['openapi2config', dir.write('swagger.yaml', 'swagger: "2.0"\ninfo: { title: x, version: "1" }\npaths: {}\n')]);
    assert.equal(swagger.code, 1);
    assert.match(swagger.stderr, /Swagger 2\.0 is not supported/);
    const relative = await runPalisade(['openapi2config', dir.write('rel.yaml', 'openapi: 3.0.3\ninfo: { title: x, version: "1" }\npaths: {}\n')]);
    assert.equal(relative.code, 1);
    assert.match(relative.stderr, /pass --server URL/);
  } finally {
    dir.remove();
  }
});

let upstream: TestUpstream;
let gw: TestGateway;
before(async () => {
  upstream = await startUpstream();
  const { config } = await convert(SECURED('[{ header: [] }, { query: [] }]', SCHEMES, 'security: []'), { server: `${upstream.url}/v1` });
  config.consumers = [...((config.consumers as Obj[] | undefined) ?? []), { username: 'alice', keyauth_credentials: [{ key: 'alice-key' }] }];
  gw = await startGateway(config);
});
after(async () => {
  await gw?.close();
  await upstream?.close();
});

test('on a gateway: routes proxy to the server URL with its base path; the generated key-auth works as the document says', async () => {
  const open = await request(gw.port, '/a?x=1');
  assert.equal(open.status, 200, open.body);
  assert.equal(upstream.requests.at(-1)!.url, '/v1/a?x=1', 'service path + request path, nothing stripped');

  const anonymous = await request(gw.port, '/b');
  assert.equal(anonymous.status, 401);
  assert.match(anonymous.json().message, /Unauthorized: valid credentials required \(key-auth\)/);
  assert.equal((await request(gw.port, '/b', { headers: { 'x-api-key': 'wrong' } })).status, 401);

  const byHeader = await request(gw.port, '/b', { headers: { 'x-api-key': 'alice-key' } });
  assert.equal(byHeader.status, 200, byHeader.body);
  const seen = upstream.requests.at(-1)!;
  assert.equal(seen.headers['x-consumer-username'], 'alice');
  assert.equal(seen.headers['x-api-key'], undefined, 'hide_credentials');
  assert.equal((await request(gw.port, '/b?api_key=alice-key')).status, 200, 'or in the query, the other alternative');
  assert.equal((await request(gw.port, '/b/more')).status, 404, 'regex paths are anchored at the end');
  assert.equal((await request(gw.port, '/b', { method: 'POST' })).status, 404, 'only the declared methods');
});

test('on a gateway: a route whose security Palisade cannot enforce answers 401 and never reaches the upstream', async () => {
  const { config } = await convert(SECURED('[{ oidc: [] }]', SCHEMES, 'security: []'), { server: `${upstream.url}/v1`, validation: true, specRef: 'unused.yaml' });
  for (const s of config.services as Obj[]) s.plugins = (s.plugins as Obj[]).filter((p) => p.name !== 'oas-validation');
  const g = await startGateway(config);
  try {
    const before = upstream.requests.length;
    const r = await request(g.port, '/b', { headers: { authorization: 'Bearer anything' } });
    assert.equal(r.status, 401);
    assert.equal(r.json().message, "Unauthorized: this operation requires authentication Palisade cannot enforce yet: 'oidc' (openIdConnect)");
    assert.equal(upstream.requests.length, before);
    assert.equal((await request(g.port, '/a')).status, 200, 'security: [] stays open');
  } finally {
    await g.close();
  }
});
