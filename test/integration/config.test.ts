/**
 * The declarative config: parse → schema → plugin schemas → cross-entity rules,
 * every error with its JSON pointer and line:column; defaults; Kong decK files
 * load unchanged; reloads through a real gateway (invalid changes nothing, valid
 * swaps, requests in flight finish on the version they started with).
 *
 * Expected positions are found in the fixture text by the tests themselves, so
 * they do not depend on the YAML library that produced them.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import v8 from 'node:v8';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { request } from 'undici';
import { ConfigInvalidError, loadConfigFile, parseConfig, type ConfigError } from '../../src/config/load.ts';
import type { PalisadeConfig } from '../../src/config/schema.ts';
import { Gateway } from '../../src/core/gateway.ts';
import { startGateway, startUpstream, type TestUpstream } from '../helpers/gateway.ts';

const fixture = (name: string) => new URL(`../fixtures/configs/${name}`, import.meta.url).pathname;
const tlsFixture = (name: string) => readFile(new URL(`../fixtures/tls/${name}`, import.meta.url), 'utf8');

/** 1-based line:column of the `occurrence`-th `needle` in `text`, plus `shift` characters. */
function positionOf(text: string, needle: string, occurrence = 1, shift = 0): { line: number; column: number } {
  let at = -1;
  for (let n = 0; n < occurrence; n++) {
    at = text.indexOf(needle, at + 1);
    assert.ok(at >= 0, `fixture has no occurrence ${occurrence} of ${JSON.stringify(needle)}`);
  }
  at += shift;
  const before = text.slice(0, at);
  return { line: before.split('\n').length, column: at - before.lastIndexOf('\n') };
}

/** Position of the value of `key: value` (the occurrence-th such text). */
const valueOf = (text: string, keyValue: string, occurrence = 1) => positionOf(text, keyValue, occurrence, keyValue.indexOf(':') + 2);

function errorsOf(fn: () => unknown): ConfigError[] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigInvalidError, `expected ConfigInvalidError, got ${String(err)}`);
    return err.errors;
  }
  assert.fail('the config was accepted');
}

async function errorsOfFile(file: string): Promise<{ errors: ConfigError[]; message: string }> {
  try {
    await loadConfigFile(file);
  } catch (err) {
    assert.ok(err instanceof ConfigInvalidError, `expected ConfigInvalidError, got ${String(err)}`);
    return { errors: err.errors, message: err.message };
  }
  assert.fail(`${file} was accepted`);
}

/** The one error at this JSON pointer, checked for position and message. */
function expectError(errors: ConfigError[], path: string, pos: { line: number; column: number }, message: RegExp): void {
  const hits = errors.filter((e) => e.path === path);
  assert.equal(hits.length, 1, `expected one error at ${path}; got:\n${errors.map((e) => `${e.path} ${e.line}:${e.column} ${e.message}`).join('\n')}`);
  const e = hits[0]!;
  assert.deepEqual({ line: e.line, column: e.column }, pos, `position of ${path} (${e.message})`);
  assert.match(e.message, message);
}

const yaml = (lines: string[]) => lines.join('\n') + '\n';

describe('config errors: JSON pointer and line:column', () => {
  test('schema errors in YAML: unknown field, wrong types, enums, patterns — all reported, in file order', async () => {
    const file = fixture('invalid-schema.yaml');
    const text = await readFile(file, 'utf8');
    const { errors, message } = await errorsOfFile(file);
    assert.equal(errors.length, 8, message);
    expectError(errors, '/services/0/routes/0/stirp_path', positionOf(text, 'stirp_path'), /unknown field 'stirp_path'/);
    expectError(errors, '/services/0/retries', valueOf(text, 'retries: five'), /must be integer/);
    expectError(errors, '/services/0/protocol', valueOf(text, 'protocol: ftp'), /must be one of: "http", "https"$/);
    expectError(errors, '/services/1/connect_timeout', valueOf(text, 'connect_timeout: -1'), /must be >= 1/);
    expectError(errors, '/services/1/routes/0/paths/0', positionOf(text, '- billing\n', 1, 2), /must match pattern/);
    expectError(errors, '/services/1/routes/0/methods/0', positionOf(text, 'get]'), /must match pattern/);
    expectError(errors, '/upstreams/0/algorithm', valueOf(text, 'algorithm: random'), /must be one of: "round-robin", "least-connections", "consistent-hashing"/);
    expectError(errors, '/upstreams/0/targets/0/weight', valueOf(text, 'weight: heavy'), /must be integer/);
    const order = errors.map((e) => e.line * 1000 + e.column);
    assert.deepEqual(order, [...order].sort((a, b) => a - b), 'errors are listed in file order');
    // The formatted message names file:line:column and the pointer for each error.
    const typo = positionOf(text, 'stirp_path');
    assert.ok(message.includes(`${file}:${typo.line}:${typo.column}: /services/0/routes/0/stirp_path: unknown field 'stirp_path'`), message);
    assert.match(message, /^.*: 8 errors\n/);
  });

  test('schema errors in a JSON file carry the JSON line:column', async () => {
    const file = fixture('invalid.json');
    const text = await readFile(file, 'utf8');
    const { errors, message } = await errorsOfFile(file);
    assert.equal(errors.length, 3, message);
    expectError(errors, '/services/0/read_timeout', valueOf(text, '"read_timeout": "slow"'), /must be integer/);
    expectError(errors, '/services/0/routes/0/stirp_path', positionOf(text, '"stirp_path"'), /unknown field 'stirp_path'/);
    expectError(errors, '/services/0/routes/0/protocols/1', positionOf(text, '"gopher"'), /must be one of: "http", "https"/);
  });

  test('cross-entity and plugin errors: every one reported with its position', async () => {
    const file = fixture('invalid-semantics.yaml');
    const text = await readFile(file, 'utf8');
    const { errors, message } = await errorsOfFile(file);
    // Kong plugins Palisade does not implement, and unknown plugins.
    expectError(errors, '/plugins/0/name', valueOf(text, 'name: rate-limiting-advanced'), /^plugin 'rate-limiting-advanced' is a Kong plugin that Palisade does not implement; available: .*cors/);
    expectError(errors, '/plugins/1/name', valueOf(text, 'name: oauth2'), /^plugin 'oauth2' is a Kong plugin that Palisade does not implement/);
    expectError(errors, '/plugins/2/name', valueOf(text, 'name: request-sizing'), /^unknown plugin 'request-sizing'; available: .*correlation-id, cors, .*request-size-limiting, request-termination/);
    // Plugin config fields: at /…/config/<field>.
    expectError(errors, '/services/0/plugins/0/config/origin', positionOf(text, 'origin:'), /unknown field 'origin'/);
    expectError(errors, '/services/0/plugins/0/config/credentials', valueOf(text, 'credentials: "yes"'), /must be boolean/);
    expectError(errors, '/plugins/6/config/max_age', valueOf(text, 'max_age: soon'), /must be number/);
    // Regex paths must compile.
    expectError(errors, '/services/0/routes/1/paths/0', positionOf(text, '~/orders/(?<id>'), /invalid regex/);
    // Duplicate names.
    expectError(errors, '/services/1/name', valueOf(text, 'name: orders\n', 2), /duplicate service name 'orders' \(first at \/services\/0\/name\)/);
    expectError(errors, '/services/1/routes/0/name', valueOf(text, 'name: orders-route', 2), /duplicate route name 'orders-route'/);
    expectError(errors, '/upstreams/1/name', valueOf(text, 'name: pool', 2), /duplicate upstream name 'pool'/);
    expectError(errors, '/consumers/1/username', valueOf(text, 'username: alice', 2), /duplicate consumer username 'alice'/);
    // url and host both (points at url), neither (points at the service).
    expectError(errors, '/services/1', positionOf(text, 'url: http://orders2.internal'), /either 'url' or 'host', not both/);
    expectError(errors, '/services/2', positionOf(text, 'name: nowhere'), /needs 'url' or 'host'/);
    // Dangling references.
    expectError(errors, '/routes/0/service', valueOf(text, 'service: missing-service'), /service 'missing-service' does not exist/);
    expectError(errors, '/plugins/3/service', valueOf(text, 'service: ghost-service'), /service 'ghost-service' does not exist/);
    expectError(errors, '/plugins/4/route', valueOf(text, 'route: ghost-route'), /route 'ghost-route' does not exist/);
    expectError(errors, '/plugins/5/consumer', valueOf(text, 'consumer: ghost-consumer'), /consumer 'ghost-consumer' does not exist/);
    // A certificate whose key belongs to another certificate.
    expectError(errors, '/certificates/0/key', valueOf(text, 'key: |'), /the key does not match the certificate/);
    assert.equal(errors.length, 18, message);
  });

  test('cross-entity errors in a JSON file', async () => {
    const file = fixture('semantic-invalid.json');
    const text = await readFile(file, 'utf8');
    const { errors } = await errorsOfFile(file);
    expectError(errors, '/services/1/name', valueOf(text, '"name": "orders"', 2), /duplicate service name 'orders'/);
    expectError(errors, '/plugins/0/name', valueOf(text, '"name": "oauth2"'), /Kong plugin that Palisade does not implement/);
    assert.equal(errors.length, 2);
  });

  test('YAML syntax error: line and column of the offending token', async () => {
    const file = fixture('syntax-error.yaml');
    const text = await readFile(file, 'utf8');
    const { errors } = await errorsOfFile(file);
    assert.deepEqual({ line: errors[0]!.line, column: errors[0]!.column }, positionOf(text, ']]', 1, 1));
    assert.match(errors[0]!.message, /flow-seq-end/);
  });

  test('duplicate YAML keys are an error at the second key, naming it', async () => {
    const file = fixture('duplicate-keys.yaml');
    const text = await readFile(file, 'utf8');
    const { errors } = await errorsOfFile(file);
    assert.equal(errors.length, 1);
    assert.deepEqual({ line: errors[0]!.line, column: errors[0]!.column }, positionOf(text, 'strip_path', 2));
    assert.match(errors[0]!.message, /duplicate key 'strip_path'/);
  });

  test('duplicate keys in JSON are an error too', () => {
    const text = '{\n  "_format_version": "3.0",\n  "services": [],\n  "services": []\n}\n';
    const errors = errorsOf(() => parseConfig(text, 'dup.json'));
    assert.deepEqual({ line: errors[0]!.line, column: errors[0]!.column }, positionOf(text, '"services"', 2));
    assert.match(errors[0]!.message, /duplicate key "services"/);
  });

  test('an alias to a missing anchor, and alias bombs, are config errors with a position (not crashes)', () => {
    const text = yaml(['_format_version: "3.0"', 'services:', '  - name: a', '    url: *nothing']);
    const errors = errorsOf(() => parseConfig(text));
    assert.deepEqual({ line: errors[0]!.line, column: errors[0]!.column }, positionOf(text, '*nothing'));
    assert.match(errors[0]!.message, /Unresolved alias/);

    let bomb = '_format_version: "3.0"\n_info:\n  a: &a [x, x, x, x, x, x, x, x, x, x]\n';
    for (let i = 1; i < 9; i++) bomb += `  ${'abcdefghij'[i]}: &${'abcdefghij'[i]} [${Array(10).fill('*' + 'abcdefghij'[i - 1]).join(', ')}]\n`;
    assert.match(errorsOf(() => parseConfig(bomb))[0]!.message, /resource exhaustion/);
  });

  test('a document that is not a mapping, and a missing _format_version', () => {
    assert.match(errorsOf(() => parseConfig(''))[0]!.message, /must be a mapping/);
    assert.match(errorsOf(() => parseConfig('- services\n'))[0]!.message, /must be a mapping/);
    const errors = errorsOf(() => parseConfig('services: []\n'));
    assert.equal(errors[0]!.path, '');
    assert.match(errors[0]!.message, /required field '_format_version' is missing/);
    const text = '_format_version: "4.0"\n';
    expectError(errorsOf(() => parseConfig(text)), '/_format_version', valueOf(text, '_format_version: "4.0"'), /must be one of: "3.0", "2.1", "1.1"/);
  });

  test('a missing file is reported as such', async () => {
    const { errors } = await errorsOfFile(fixture('does-not-exist.yaml'));
    assert.equal(errors[0]!.message, 'file not found');
  });

  test('server settings the listener cannot use are config errors, not crashes at start', () => {
    const text = yaml([
      '_format_version: "3.0"',
      'server:',
      '  headers_timeout: 20000',
      '  request_timeout: 5000',
      '  trusted_ips:',
      '    - 10.0.0.0/8',
      '    - 10.0.0.0/33',
      '    - proxy.internal',
      '    - 192.168.0.0/',
      '    - 172.16.0.0/1e1',
    ]);
    const errors = errorsOf(() => parseConfig(text));
    expectError(errors, '/server/headers_timeout', valueOf(text, 'headers_timeout: 20000'), /must not exceed request_timeout/);
    expectError(errors, '/server/trusted_ips/1', positionOf(text, '10.0.0.0/33'), /invalid prefix length/);
    expectError(errors, '/server/trusted_ips/2', positionOf(text, 'proxy.internal'), /not an IP address or CIDR/);
    // An empty or exponent prefix is no prefix (it once read as /0 and trusted every IPv4 peer).
    expectError(errors, '/server/trusted_ips/3', positionOf(text, '192.168.0.0/'), /invalid prefix length/);
    expectError(errors, '/server/trusted_ips/4', positionOf(text, '172.16.0.0/1e1'), /invalid prefix length/);
    assert.equal(errors.length, 5);
  });

  test('certificates: client_verify needs a parseable client_ca', async () => {
    const cert = await tlsFixture('api.crt');
    const key = await tlsFixture('api.key');
    const errors = errorsOf(() =>
      parseConfig(JSON.stringify({
        _format_version: '3.0',
        certificates: [
          { cert, key, snis: ['a.example.test'], client_verify: 'required' },
          { cert, key, snis: ['b.example.test'], client_verify: 'optional', client_ca: 'not a certificate' },
        ],
      })),
    );
    assert.deepEqual(errors.map((e) => [e.path, e.message]), [
      ['/certificates/0', 'client_verify needs client_ca'],
      ['/certificates/1/client_ca', 'client_ca must hold PEM CA certificates'],
    ]);
  });

  test("service ca_certificates must be PEM (Kong's ca_certificate ids are refused at load, not at the first request)", async () => {
    const ca = await tlsFixture('ca.crt');
    const text = yaml([
      '_format_version: "3.0"',
      'services:',
      '  - name: s',
      '    url: https://s.internal',
      '    ca_certificates:',
      '      - 4e3ad2e4-0bc4-4638-8e34-c84a417ba39b',
      `      - ${JSON.stringify(ca)}`,
    ]);
    const errors = errorsOf(() => parseConfig(text));
    expectError(errors, '/services/0/ca_certificates/0', positionOf(text, '4e3ad2e4'), /must be PEM certificates \(Kong ca_certificate ids are not supported\)/);
    assert.equal(errors.length, 1);
  });

  test('Kong upstream fields Palisade accepts only with their default value', () => {
    const text = yaml([
      '_format_version: "3.0"',
      'upstreams:',
      '  - name: pool',
      '    hash_fallback: header',
      '    use_srv_name: true',
      '    healthchecks:',
      '      active:',
      '        https_verify_certificate: false',
    ]);
    const errors = errorsOf(() => parseConfig(text));
    expectError(errors, '/upstreams/0/hash_fallback', valueOf(text, 'hash_fallback: header'), /does not implement hash_fallback/);
    expectError(errors, '/upstreams/0/use_srv_name', valueOf(text, 'use_srv_name: true'), /does not implement use_srv_name/);
    expectError(errors, '/upstreams/0/healthchecks/active/https_verify_certificate', valueOf(text, 'https_verify_certificate: false'), /always verifies/);
  });
});

describe('config defaults and Kong compatibility', () => {
  test("defaults are filled like Kong's", () => {
    const cfg = parseConfig(yaml([
      '_format_version: "3.0"',
      'services:',
      '  - name: orders',
      '    host: pool',
      '    routes:',
      '      - name: r',
      '        paths: [/orders]',
      '    plugins:',
      '      - name: cors',
      'upstreams:',
      '  - name: pool',
      '    targets:',
      '      - target: 10.0.0.1:8080',
    ]));
    const svc = cfg.services[0]!;
    assert.equal(svc.retries, 5);
    assert.equal(svc.connect_timeout, 60000);
    assert.equal(svc.read_timeout, 60000);
    assert.equal(svc.write_timeout, 60000);
    assert.equal(svc.protocol, 'http');
    assert.equal(svc.port, 80);
    assert.equal(svc.enabled, true);
    const route = svc.routes[0]!;
    assert.equal(route.strip_path, true);
    assert.equal(route.preserve_host, false);
    assert.deepEqual(route.protocols, ['http', 'https']);
    assert.equal(route.https_redirect_status_code, 426);
    assert.equal(route.path_handling, 'v0');
    assert.equal(route.regex_priority, 0);
    const plugin = svc.plugins[0]!;
    assert.equal(plugin.enabled, true);
    assert.deepEqual(plugin.protocols, ['http', 'https']);
    assert.deepEqual(plugin.config, {
      methods: ['GET', 'HEAD', 'PUT', 'PATCH', 'POST', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT'],
      credentials: false,
      private_network: false,
      preflight_continue: false,
      allow_origin_absent: true,
    });
    const up = cfg.upstreams[0]!;
    assert.equal(up.algorithm, 'round-robin');
    assert.equal(up.slots, 10000);
    assert.equal(up.targets[0]!.weight, 100);
    assert.deepEqual(up.healthchecks, {
      threshold: 0,
      active: {
        type: 'http',
        http_path: '/',
        https_verify_certificate: true,
        timeout: 1,
        concurrency: 10,
        healthy: { interval: 0, http_statuses: [200, 302], successes: 0 },
        unhealthy: { interval: 0, http_statuses: [429, 404, 500, 501, 502, 503, 504, 505], tcp_failures: 0, timeouts: 0, http_failures: 0 },
      },
      passive: {
        type: 'http',
        healthy: { http_statuses: [200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304, 305, 306, 307, 308], successes: 0 },
        unhealthy: { http_statuses: [429, 500, 503], tcp_failures: 0, timeouts: 0, http_failures: 0 },
      },
    });
    assert.equal(cfg.server.max_header_size, 16384);
    assert.equal(cfg.server.headers_timeout, 10000);
    assert.equal(cfg.server.keepalive_requests, 1000);
  });

  test('null means unset (decK dumps write nulls): the default applies', () => {
    const cfg = parseConfig(yaml([
      '_format_version: "3.0"',
      'services:',
      '  - name: s',
      '    url: http://s.internal',
      '    tags: ~',
      '    retries: null',
      '    plugins:',
      '      - name: request-termination',
      '        config:',
      '          status_code: 403',
      '          message: null',
      '          body: null',
      '          content_type: null',
    ]));
    assert.equal(cfg.services[0]!.retries, 5);
    assert.deepEqual(cfg.services[0]!.tags, []);
    assert.deepEqual(cfg.services[0]!.plugins[0]!.config, { status_code: 403, echo: false });
  });


  test('strings are kept exactly, and one-byte, with characters outside Latin-1 in the file (they are copied out of its text)', () => {
    const cfg = parseConfig(yaml([
      '# a dash outside Latin-1 — in a comment',
      '_format_version: "3.0"',
      'services:',
      '  - name: bench-upstream-service',
      '    url: http://s.internal',
      '    tags: [caf\u00e9-caf\u00e9-caf\u00e9-caf\u00e9, "smile \u{1f600} and more text", short]',
      '    routes:',
      '      - name: a-route-with-a-long-name',
      '        paths: [/a-rather-long-path-prefix]',
    ]));
    const svc = cfg.services[0]!;
    assert.equal(svc.name, 'bench-upstream-service');
    assert.deepEqual(svc.tags, ['caf\u00e9-caf\u00e9-caf\u00e9-caf\u00e9', 'smile \u{1f600} and more text', 'short']);
    assert.equal(svc.routes[0]!.name, 'a-route-with-a-long-name');
    assert.deepEqual(svc.routes[0]!.paths, ['/a-rather-long-path-prefix']);
    // V8's serializer tags a one-byte string '"', a two-byte one 'c' (a two-byte string costs every string built from it per request).
    const oneByte = (s: string) => v8.serialize(s)[2] === 0x22;
    assert.ok(oneByte('ascii-only-and-long-enough'), 'the check tells one-byte strings');
    assert.ok(!oneByte('\u2014 two-byte, long enough'), 'and two-byte ones');
    for (const s of [svc.name!, svc.tags[0]!, svc.tags[2]!, svc.routes[0]!.name!, svc.routes[0]!.paths![0]!]) assert.ok(oneByte(s), `one-byte: ${s}`);
    assert.ok(!oneByte(svc.tags[1]!), 'a string outside Latin-1 stays as it is');
  });
  test('the realistic Kong decK file loads unchanged, with no errors', async () => {
    const cfg = await loadConfigFile(fixture('kong-deck.yaml'));
    assert.deepEqual(cfg.services.map((s) => s.name), ['orders', 'legacy']);
    assert.deepEqual(cfg.services.flatMap((s) => s.routes.map((r) => r.name)), ['orders-api', 'orders-secure', 'legacy-api']);
    assert.deepEqual(cfg.routes.map((r) => r.name), ['orders-v2']);
    assert.deepEqual(cfg.consumers.map((c) => c.username), ['partner-app', 'mobile-app']);
    assert.equal(cfg.upstreams[0]!.targets.length, 2);
    assert.equal(cfg.certificates[0]!.snis.length, 1);
    const cors = cfg.services[0]!.plugins[0]!;
    assert.deepEqual(cors.protocols, ['grpc', 'grpcs', 'http', 'https']);
    assert.equal((cors.config as Record<string, unknown>).headers, undefined, 'headers: null is unset');
    assert.deepEqual(cfg.plugins.map((p) => p.name), ['correlation-id', 'request-size-limiting']);
  });

  test('the Kong decK file runs: plugins answer through a real gateway', async () => {
    const cfg = await loadConfigFile(fixture('kong-deck.yaml'));
    const gw = await startGateway(cfg);
    try {
      // request-termination on the legacy service (no upstream needed).
      const retired = await request(`${gw.url}/legacy/anything`);
      assert.equal(retired.statusCode, 410);
      assert.equal(((await retired.body.json()) as { message: string }).message, 'This API has been retired, use /orders');
      // correlation-id (global, echo_downstream) answered too.
      assert.match(String(retired.headers['kong-request-id']), /^[0-9a-f-]{36}#\d+$/);
      // cors answers a preflight on /orders at the gateway.
      const preflight = await request(`${gw.url}/orders/1`, {
        method: 'OPTIONS',
        headers: { origin: 'https://shop.example.test', 'access-control-request-method': 'POST' },
      });
      await preflight.body.dump();
      assert.equal(preflight.statusCode, 200);
      assert.equal(preflight.headers['access-control-allow-origin'], 'https://shop.example.test');
      assert.equal(preflight.headers['access-control-allow-credentials'], 'true');
      assert.equal(gw.tlsUrl !== null, true, 'the certificate brings up the TLS listener');
    } finally {
      await gw.close();
    }
  });
});

describe('reload: invalid changes nothing, valid swaps, in-flight requests finish on their version', () => {
  const upstreams: TestUpstream[] = [];
  after(async () => {
    await Promise.all(upstreams.map((u) => u.close()));
  });
  const named = async (name: string, delayMs = 0) => {
    const u = await startUpstream((_req, res) => {
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(name);
      }, delayMs);
    });
    upstreams.push(u);
    return u;
  };
  const to = (u: TestUpstream, extra: object = {}) => ({ services: [{ name: 'svc', url: u.url, routes: [{ name: 'r', paths: ['/x'] }] }], ...extra });
  const get = async (url: string) => {
    const res = await request(url);
    return `${res.statusCode} ${await res.body.text()}`;
  };

  test('an invalid config is refused with its errors and the old one keeps serving; a valid one swaps', async () => {
    const a = await named('A');
    const b = await named('B');
    const gw = await startGateway(to(a));
    try {
      const before = gw.gateway.runtime.version;
      assert.equal(await get(`${gw.url}/x`), '200 A');
      await assert.rejects(gw.reload({ services: [{ name: 'svc', url: b.url, routes: [{ name: 'r', paths: ['/x'], stirp_path: false }] }] }), (err: unknown) => {
        assert.ok(err instanceof ConfigInvalidError);
        assert.equal(err.errors[0]!.path, '/services/0/routes/0/stirp_path');
        return true;
      });
      assert.equal(gw.gateway.runtime.version, before);
      assert.equal(await get(`${gw.url}/x`), '200 A');

      // gateway.apply with a config that compiles badly (it skipped validation): ok false, nothing changes.
      const broken = structuredClone(gw.gateway.runtime.config) as PalisadeConfig;
      broken.services[0]!.url = b.url;
      broken.server.trusted_ips = ['not-an-ip'];
      const res = gw.gateway.apply(broken);
      assert.equal(res.ok, false);
      assert.equal(gw.gateway.runtime.version, before);
      assert.equal(await get(`${gw.url}/x`), '200 A');

      await gw.reload(to(b));
      assert.notEqual(gw.gateway.runtime.version, before);
      assert.equal(await get(`${gw.url}/x`), '200 B');
    } finally {
      await gw.close();
    }
  });

  test('reload() from the file: an invalid file keeps the old version, with line numbers in the error', async () => {
    const a = await named('A');
    const b = await named('B');
    const dir = await mkdtemp(join(tmpdir(), 'palisade-config-'));
    const file = join(dir, 'palisade.yaml');
    const log = pino({ level: 'silent' });
    const body = (u: TestUpstream, typo = false) =>
      yaml([
        '_format_version: "3.0"',
        'server:',
        '  access_log: "off"',
        '  watch: false',
        'services:',
        '  - name: svc',
        `    url: ${u.url}`,
        '    routes:',
        '      - name: r',
        `        ${typo ? 'stirp_path' : 'strip_path'}: true`,
        '        paths: [/x]',
      ]);
    await writeFile(file, body(a));
    const gateway = await Gateway.fromFile(file, log);
    const bound = await gateway.listen({ listen: '127.0.0.1:0', tlsListen: 'off' });
    const url = `http://127.0.0.1:${(bound.http as AddressInfo).port}`;
    try {
      assert.equal(await get(`${url}/x`), '200 A');
      await writeFile(file, body(b, true));
      const bad = await gateway.reload();
      assert.equal(bad.ok, false);
      assert.ok(!bad.ok && bad.error instanceof ConfigInvalidError);
      assert.deepEqual(bad.error.errors.map((e) => [e.path, e.line, e.column]), [['/services/0/routes/0/stirp_path', 10, 9]]);
      assert.equal(gateway.stats.reloadFailures, 1);
      assert.equal(await get(`${url}/x`), '200 A');

      await writeFile(file, body(b));
      const good = await gateway.reload();
      assert.equal(good.ok, true);
      assert.ok(good.ok && good.changed);
      assert.equal(await get(`${url}/x`), '200 B');
    } finally {
      await gateway.shutdown(1000);
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('a request in flight during a swap finishes on the version it started with', async () => {
    const slowA = await named('A', 700);
    const b = await named('B');
    const gw = await startGateway(to(slowA));
    try {
      const oldVersion = gw.gateway.runtime.version;
      const inflight = get(`${gw.url}/x`);
      // Swap only once the old version's request has reached upstream A.
      const t0 = Date.now();
      while (slowA.requests.length === 0) {
        assert.ok(Date.now() - t0 < 5000, 'the request never reached upstream A');
        await new Promise((r) => setTimeout(r, 10));
      }
      // The new version does not use A at all: its pool is released while the request is on it.
      await gw.reload(to(b));
      const newVersion = gw.gateway.runtime.version;
      assert.notEqual(newVersion, oldVersion);
      assert.equal(await get(`${gw.url}/x`), '200 B', 'new requests see the new version');
      assert.equal(await inflight, '200 A', 'the in-flight request finishes on the old version');
      assert.equal(slowA.requests.length, 1);
      assert.equal(b.requests.length, 1);
      // The access log tells which version served each request.
      await new Promise((r) => setTimeout(r, 20));
      const versions = gw.accessLog.map((r) => [r.status, r.config_version]);
      assert.deepEqual(versions, [
        [200, newVersion],
        [200, oldVersion],
      ]);
    } finally {
      await gw.close();
    }
  });
});
