/**
 * jwt plugin with `jwks_url`: a real JWK Set server (node:http on 127.0.0.1)
 * behind a real gateway. Key rotation, the refresh rate limit, fetch
 * failures, and the verified-token cache across a key-set change.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { startGateway, startUpstream, type TestGateway, type TestUpstream } from '../../../test/helpers/gateway.ts';

const b64url = (s: string | Buffer) => Buffer.from(s).toString('base64url');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Key {
  kid: string;
  privateKey: KeyObject;
  jwk: Record<string, unknown>;
}

function rsaKey(kid: string): Key {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { kid, privateKey, jwk: { ...publicKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' } };
}

function rs256(key: KeyObject, kid: string | null, claims: object): string {
  const header = kid === null ? { alg: 'RS256' } : { alg: 'RS256', kid };
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  return `${input}.${sign('sha256', Buffer.from(input), key).toString('base64url')}`;
}

/** A JWK Set server: one document per path, a status to serve, and a count of fetches. */
interface JwksPath {
  keys: Record<string, unknown>[];
  status: number;
  body?: string;
  fetches: number;
}

describe('jwt with jwks_url', () => {
  let upstream: TestUpstream;
  let gw: TestGateway;
  let server: Server;
  let base: string;
  const paths = new Map<string, JwksPath>();
  const k1 = rsaKey('k1');
  const k2 = rsaKey('k2');
  const k3 = rsaKey('k3');
  const ISS = 'https://idp.test';

  const served = (path: string, keys: Key[], status = 200): JwksPath => {
    const p: JwksPath = { keys: keys.map((k) => k.jwk), status, fetches: 0 };
    paths.set(path, p);
    return p;
  };
  const rot = served('/rot', [k1]);
  const rl = served('/rl', [k1]);
  const fail = served('/fail', [k1]);
  const down = served('/down', [k1], 503);
  const mixed = served('/mixed', []);

  before(async () => {
    server = createServer((req, res) => {
      const p = paths.get(req.url!);
      if (p === undefined) return void res.writeHead(404).end();
      p.fetches++;
      if (p.status !== 200) return void res.writeHead(p.status, { 'content-type': 'text/plain' }).end('unavailable');
      const body = p.body ?? JSON.stringify({ keys: p.keys });
      res.writeHead(200, { 'content-type': 'application/jwk-set+json', 'content-length': Buffer.byteLength(body) }).end(body);
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', () => ok()));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    upstream = await startUpstream();
    const consumer = (name: string, path: string) => ({ username: name, jwt_secrets: [{ key: `${ISS}${path}`, algorithms: ['RS256', 'ES256'], jwks_url: `${base}${path}` }] });
    const route = (name: string, config: object) => ({ name, paths: [`/${name}`], plugins: [{ name: 'jwt', config: { brute_force: { enabled: false }, claims_to_verify: ['exp'], ...config } }] });
    gw = await startGateway({
      consumers: [consumer('rot', '/rot'), consumer('rl', '/rl'), consumer('fail', '/fail'), consumer('down', '/down'), consumer('mixed', '/mixed')],
      services: [
        {
          name: 'svc',
          url: upstream.url,
          routes: [
            // A short TTL and refresh interval keep the test quick; the defaults are 300 s and 30 s.
            route('fast', { jwks_cache_ttl: 1, jwks_refresh_min_interval: 1 }),
            route('limited', { jwks_cache_ttl: 300, jwks_refresh_min_interval: 2 }),
          ],
        },
      ],
    });
  });

  after(async () => {
    await gw?.close();
    await upstream?.close();
    server?.closeAllConnections();
    await new Promise<void>((ok) => (server ? server.close(() => ok()) : ok()));
  });

  const exp = () => Math.floor(Date.now() / 1000) + 300;
  const token = (key: Key, path: string, kid: string | null = key.kid) => rs256(key.privateKey, kid, { iss: `${ISS}${path}`, sub: 'u', exp: exp() });

  async function call(route: string, t: string): Promise<{ status: number; body: Record<string, any>; user?: string }> {
    const before = upstream.requests.length;
    const r = await request(`${gw.url}/${route}`, { headers: { authorization: `Bearer ${t}` } });
    const body = JSON.parse((await r.body.text()) || '{}');
    const user = upstream.requests.length > before ? (upstream.requests.at(-1)!.headers['x-consumer-username'] as string) : undefined;
    return { status: r.statusCode, body, user };
  }

  async function until(what: string, check: () => Promise<boolean>, ms = 5000): Promise<void> {
    const end = Date.now() + ms;
    while (!(await check())) {
      if (Date.now() > end) assert.fail(`timed out waiting for: ${what}`);
      await sleep(100);
    }
  }

  test('rotation: the set is fetched on first use; a new kid is accepted after a refresh; a removed kid is refused, cached or not', async () => {
    const t1 = token(k1, '/rot');
    const first = await call('fast', t1);
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.equal(first.user, 'rot');
    assert.equal(rot.fetches, 1);
    assert.equal((await call('fast', t1)).status, 200);

    // A new key appears at the identity provider.
    rot.keys = [k1.jwk, k2.jwk];
    await sleep(1100);
    const fetched = rot.fetches;
    const t2 = token(k2, '/rot');
    assert.equal((await call('fast', t2)).status, 200, 'the unknown kid triggered a refresh');
    assert.ok(rot.fetches > fetched);

    // k1 is withdrawn: once the set is refetched, its (cached) token is refused.
    rot.keys = [k2.jwk];
    await sleep(1100);
    await until('the token of the withdrawn key is refused', async () => (await call('fast', t1)).status === 401);
    const gone = await call('fast', t1);
    assert.equal(gone.body.message, 'Invalid signature');
    assert.equal((await call('fast', t2)).status, 200);
    // A token signed by a key the set never had is refused too.
    assert.equal((await call('fast', token(k3, '/rot'))).status, 401);
  });

  test('unknown kids refetch the set at most once per jwks_refresh_min_interval, concurrent ones share one fetch', async () => {
    assert.equal((await call('limited', token(k1, '/rl'))).status, 200);
    assert.equal(rl.fetches, 1);
    const forged = (kid: string) => token(k1, '/rl', kid);
    assert.equal((await call('limited', forged('x1'))).body.message, 'Invalid signature');
    assert.equal((await call('limited', forged('x2'))).body.message, 'Invalid signature');
    assert.equal(rl.fetches, 1, 'refreshes are rate-limited');
    await sleep(2100);
    const burst = await Promise.all(Array.from({ length: 10 }, (_, i) => call('limited', forged(`y${i}`))));
    assert.ok(burst.every((r) => r.status === 401));
    assert.equal(rl.fetches, 2, 'one fetch for the whole burst');
    assert.equal((await call('limited', forged('z'))).status, 401);
    assert.equal(rl.fetches, 2);
    // The key set itself kept working throughout.
    assert.equal((await call('limited', token(k1, '/rl'))).status, 200);
  });

  test('a failed fetch keeps the last good keys and is logged', async () => {
    const t1 = token(k1, '/fail');
    assert.equal((await call('fast', t1)).status, 200);
    for (const broken of [{ status: 500 }, { status: 200, body: '{"keys": [' }, { status: 200, body: '{"keys": []}' }]) {
      fail.status = broken.status;
      fail.body = broken.body;
      const before = fail.fetches;
      await sleep(1100);
      assert.equal((await call('fast', t1)).status, 200);
      await until('the refetch happened', async () => fail.fetches > before);
      await sleep(50);
      assert.equal((await call('fast', t1)).status, 200, 'still the last good keys');
      assert.equal((await call('fast', token(k1, '/fail', null))).status, 200, 'uncached, verified with the kept keys');
    }
    const warnings = gw.logs.filter((l) => l.msg === 'jwt: JWK Set fetch failed; keeping the last good keys' && l.jwks_url === `${base}/fail`);
    assert.ok(warnings.length >= 3, JSON.stringify(warnings));
    assert.deepEqual(
      warnings.slice(0, 3).map((w) => w.reason),
      ['HTTP status 500', 'invalid JSON', 'no usable key in the JWK Set'],
    );
    fail.status = 200;
    fail.body = undefined;
  });

  test('a set that never loaded fails closed (500, no fetch storm), and works once the provider is back', async () => {
    const t = token(k1, '/down');
    const r = await call('fast', t);
    assert.equal(r.status, 500);
    assert.equal(r.body.message, 'An unexpected error occurred');
    const fetches = down.fetches;
    for (let i = 0; i < 5; i++) assert.equal((await call('fast', t)).status, 500);
    assert.equal(down.fetches, fetches, 'no refetch while the failure is recent');
    down.status = 200;
    await sleep(1100);
    assert.equal((await call('fast', t)).status, 200);
  });

  test('keys not fit for signatures are left out of a fetched set; HMAC with the public key as secret is refused', async () => {
    const ecPair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const ecJwk = { ...ecPair.publicKey.export({ format: 'jwk' }), kid: 'e1' };
    mixed.keys = [
      { kty: 'oct', k: b64url('shared secret'), kid: 'hs' },
      { ...k2.privateKey.export({ format: 'jwk' }), kid: 'priv' },
      { ...k3.jwk, use: 'enc', kid: 'enc' },
      k1.jwk,
      ecJwk,
    ];
    assert.equal((await call('fast', token(k1, '/mixed'))).status, 200);
    const claims = { iss: `${ISS}/mixed`, exp: exp() };
    const es = (() => {
      const input = `${b64url(JSON.stringify({ alg: 'ES256', kid: 'e1' }))}.${b64url(JSON.stringify(claims))}`;
      return `${input}.${sign('sha256', Buffer.from(input), { key: ecPair.privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
    })();
    assert.equal((await call('fast', es)).status, 200);
    const skipped = gw.logs.filter((l) => l.msg === 'jwt: key left out of the JWK Set' && l.jwks_url === `${base}/mixed`).map((l) => l.key);
    assert.deepEqual(skipped, [0, 1, 2]);
    // The oct key is not usable, and HS256 is not in the allow-list anyway.
    for (const [kid, secret] of [['hs', 'shared secret'], ['k1', JSON.stringify(k1.jwk)]] as const) {
      const input = `${b64url(JSON.stringify({ alg: 'HS256', kid }))}.${b64url(JSON.stringify(claims))}`;
      const forged = `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
      assert.equal((await call('fast', forged)).body.message, 'Invalid algorithm');
    }
    // The private key's public half and the encryption key do not verify.
    assert.equal((await call('fast', token(k2, '/mixed', 'priv'))).status, 401);
    assert.equal((await call('fast', token(k3, '/mixed', 'enc'))).status, 401);
  });
});
