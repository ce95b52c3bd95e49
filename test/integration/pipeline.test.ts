/**
 * Plugin scope resolution through a real gateway: one instance per plugin name,
 * the most specific scope wins (Kong's order), disabled instances fall back,
 * exclude_plugins switches global/service plugins off, protocols filter.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { resolve, type PluginInstance } from '../../src/core/pipeline.ts';
import { getPlugin } from '../../src/plugins/registry.ts';
import { startGateway, startUpstream, type TestGateway, type TestUpstream } from '../helpers/gateway.ts';

const terminate = (message: string, extra: object = {}) => ({ name: 'request-termination', config: { status_code: 418, message }, ...extra });

let up: TestUpstream;
let gw: TestGateway;

before(async () => {
  up = await startUpstream();
  gw = await startGateway({
    services: [
      {
        name: 'svc',
        url: up.url,
        plugins: [terminate('service')],
        routes: [
          { name: 'plain', paths: ['/plain'] },
          { name: 'own', paths: ['/own'], plugins: [terminate('route')] },
          { name: 'disabled', paths: ['/disabled'], plugins: [terminate('route-disabled', { enabled: false })] },
          { name: 'excluded', paths: ['/excluded'], exclude_plugins: ['request-termination', 'correlation-id'] },
        ],
      },
      { name: 'other', url: up.url, routes: [{ name: 'other', paths: ['/other'] }, { name: 'https-only-plugin', paths: ['/tls-plugin'], plugins: [terminate('https', { protocols: ['https'] })] }] },
      { name: 'no-globals', url: up.url, exclude_plugins: ['correlation-id'], routes: [{ name: 'ng', paths: ['/ng'] }] },
    ],
    plugins: [{ name: 'correlation-id', config: { header_name: 'X-Corr', echo_downstream: true } }],
  });
});
after(async () => {
  await gw.close();
  await up.close();
});

async function get(path: string) {
  const res = await fetch(gw.url + path);
  const body = await res.text();
  return { status: res.status, corr: res.headers.get('x-corr'), message: res.status === 418 ? JSON.parse(body).message : null };
}

test('a route plugin beats the service plugin, which beats nothing', async () => {
  const own = await get('/own');
  assert.equal(own.status, 418);
  assert.equal(own.message, 'route');
  assert.match(own.corr ?? '', /#\d+$/, 'global correlation-id also ran (response phase on a gateway reply)');
  const plain = await get('/plain');
  assert.equal(plain.status, 418);
  assert.equal(plain.message, 'service');
  const other = await get('/other');
  assert.equal(other.status, 200);
});

test('a disabled route instance falls back to the service instance', async () => {
  const r = await get('/disabled');
  assert.equal(r.message, 'service');
});

test('exclude_plugins on a route removes service and global plugins there only', async () => {
  const r = await get('/excluded');
  assert.equal(r.status, 200);
  assert.equal(r.corr, null);
  assert.match((await get('/plain')).corr ?? '', /.+/);
});

test('exclude_plugins on a service removes a global plugin for its routes', async () => {
  const r = await get('/ng');
  assert.equal(r.status, 200);
  assert.equal(r.corr, null);
  assert.match((await get('/other')).corr ?? '', /.+/);
});

test('plugin protocols: an https-only instance does not run over http', async () => {
  assert.equal((await get('/tls-plugin')).status, 200);
});

test("scope precedence is Kong's: consumer+route+service > consumer+route > consumer+service > route+service > consumer > route > service > global", () => {
  const def = getPlugin('request-termination')!;
  const mk = (service: string | null, route: string | null, consumer: string | null): PluginInstance => ({
    def,
    entity: { name: def.name, enabled: true, protocols: ['http', 'https'], tags: [] },
    handlers: {},
    service,
    route,
    consumer,
  });
  const order = [mk('s', 'r', 'c'), mk(null, 'r', 'c'), mk('s', null, 'c'), mk('s', 'r', null), mk(null, null, 'c'), mk(null, 'r', null), mk('s', null, null), mk(null, null, null)];
  const q = { service: 's', route: 'r', consumer: 'c' as string | null, scheme: 'http' as const, routeExcludes: [], serviceExcludes: [] };
  for (let i = 0; i < order.length; i++) {
    const pool = order.slice(i).reverse();
    assert.equal(resolve(pool, q)[0], order[i], `rank ${i + 1} wins over the less specific ones`);
  }
  // Without a consumer, consumer-scoped instances never apply.
  assert.equal(resolve(order, { ...q, consumer: null })[0], order[3]);
  // Another consumer's instance does not apply.
  assert.equal(resolve([mk(null, null, 'other'), order[7]!], q)[0], order[7]);
});

test('identity headers a client sends are never forwarded (only the gateway sets them)', async () => {
  const res = await fetch(gw.url + '/other', {
    headers: { 'x-consumer-id': 'admin', 'X-Consumer-Username': 'root', 'x-credential-identifier': 'k', 'x-anonymous-consumer': 'false', 'x-consumer-groups': 'admins' },
  });
  assert.equal(res.status, 200);
  const seen = (await res.json()) as { headers: Record<string, string> };
  for (const h of ['x-consumer-id', 'x-consumer-username', 'x-credential-identifier', 'x-anonymous-consumer', 'x-consumer-groups']) {
    assert.equal(seen.headers[h], undefined, `${h} stripped`);
  }
});

test('a plugin nested under a route that names a consumer applies to that consumer on that route only (decK)', async () => {
  const up = await startUpstream();
  const g = await startGateway({
    services: [
      {
        name: 'svc',
        url: up.url,
        routes: [
          {
            name: 'r',
            paths: ['/r'],
            plugins: [
              { name: 'key-auth', config: { anonymous: 'anon' } },
              { name: 'request-termination', consumer: 'anon', config: { status_code: 401, message: 'log in first' } },
            ],
          },
          { name: 'other', paths: ['/other'], plugins: [{ name: 'key-auth', config: { anonymous: 'anon' } }] },
        ],
      },
    ],
    consumers: [{ username: 'anon' }, { username: 'alice', keyauth_credentials: [{ key: 'alice-key-1' }] }],
  });
  try {
    const alice = await fetch(g.url + '/r', { headers: { apikey: 'alice-key-1' } });
    assert.equal(alice.status, 200, 'another consumer is not terminated');
    const anon = await fetch(g.url + '/r');
    assert.equal(anon.status, 401);
    assert.equal(((await anon.json()) as { message: string }).message, 'log in first');
    const elsewhere = await fetch(g.url + '/other');
    assert.equal(elsewhere.status, 200, 'the anonymous consumer on another route is not terminated');
  } finally {
    await g.close();
    await up.close();
  }
});
