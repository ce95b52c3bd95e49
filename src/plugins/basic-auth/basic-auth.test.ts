import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { argon2Sync, createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { startGateway, startUpstream, type TestGateway, type TestUpstream } from '../../../test/helpers/gateway.ts';

interface Res {
  status: number;
  headers: IncomingHttpHeaders;
  json: Record<string, unknown>;
  seen: { url: string; headers: IncomingHttpHeaders } | null;
  ms: number;
}

const basic = (user: string, pass: string) => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
const b64 = (b: Buffer) => b.toString('base64').replace(/=+$/, '');

const ALICE = { id: 'a11ce000-0000-4000-8000-000000000001', username: 'alice' };
const BOB = { id: 'b0b00000-0000-4000-8000-000000000002', username: 'bob', custom_id: 'bob-42' };
const CAROL = { id: 'ca401000-0000-4000-8000-000000000003', username: 'carol' };
const DAVE = { id: 'da0e0000-0000-4000-8000-000000000004', username: 'dave' };
const ANON = { id: 'a0000000-0000-4000-8000-000000000005', username: 'anon' };

/** A ready argon2id hash made here, as an operator would (node:crypto, PHC format). */
function argon2idPhc(password: string): string {
  const salt = Buffer.from('0123456789abcdef');
  const hash = argon2Sync('argon2id', { message: password, nonce: salt, memory: 19456, passes: 2, parallelism: 1, tagLength: 32 });
  return `$argon2id$v=19$m=19456,t=2,p=1$${b64(salt)}$${b64(hash)}`;
}
/** RFC 7914 §12 test vector: scrypt("password", "NaCl", N=1024, r=8, p=16, 64). */
const RFC7914 =
  'fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b3731622eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640';
const SCRYPT_PHC = `$scrypt$ln=10,r=8,p=16$${b64(Buffer.from('NaCl'))}$${b64(Buffer.from(RFC7914, 'hex'))}`;

let ipSeq = 0;
const freshIp = () => `10.1.${Math.floor(++ipSeq / 250)}.${(ipSeq % 250) + 1}`;

describe('basic-auth', () => {
  let upstream: TestUpstream;
  let gw: TestGateway;
  let config: Record<string, unknown>;

  before(async () => {
    upstream = await startUpstream();
    const route = (name: string, config: object) => ({ name, paths: [`/${name}`], plugins: [{ name: 'basic-auth', config }] });
    config = {
      server: { trusted_ips: ['127.0.0.1'] },
      consumers: [
        { ...ALICE, basicauth_credentials: [{ id: 'c0000000-0000-4000-8000-00000000a001', username: 'alice', password: 'open sesame' }] },
        { ...BOB, basicauth_credentials: [{ username: 'bob', password_hash: argon2idPhc('b0b-pw: with colon') }] },
        { ...CAROL, basicauth_credentials: [{ username: 'carol', password_hash: SCRYPT_PHC }] },
        { ...DAVE, basicauth_credentials: [{ username: 'dave', password_hash: `kong-sha1:${createHash('sha1').update(`dave-pw${DAVE.id}`).digest('hex')}` }] },
        ANON,
        { username: 'erin', basicauth_credentials: [{ username: 'erin', password: 'erin-pw' }] },
        { username: 'frank', basicauth_credentials: [{ username: 'frank', password: 'frank-pw' }] },
      ],
      services: [
        {
          name: 'svc',
          url: upstream.url,
          routes: [
            route('default', {}),
            route('hidden', { hide_credentials: true }),
            route('realm', { realm: 'palisade' }),
            route('anon', { anonymous: 'anon' }),
            route('nocache', { verify_cache_ttl: 0 }),
            route('bf-user', { brute_force: { max_failures_per_identity: 2, max_failures_per_ip: 0, lockout: 1 } }),
            route('bf-ip', { brute_force: { max_failures_per_identity: 0, max_failures_per_ip: 3, lockout: 1 } }),
            { name: 'open', paths: ['/open'] },
          ],
        },
      ],
    };
    gw = await startGateway(config);
  });

  after(async () => {
    await gw?.close();
    await upstream?.close();
  });

  async function call(path: string, headers: Record<string, string> = {}, ip = freshIp()): Promise<Res> {
    const before = upstream.requests.length;
    const t0 = performance.now();
    const r = await request(gw.url + path, { headers: { 'x-forwarded-for': ip, ...headers } });
    const text = await r.body.text();
    const ms = performance.now() - t0;
    return {
      status: r.statusCode,
      headers: r.headers as IncomingHttpHeaders,
      json: text === '' ? {} : JSON.parse(text),
      seen: upstream.requests.length > before ? upstream.requests.at(-1)! : null,
      ms,
    };
  }

  function assert401(r: Res, realm = 'service') {
    assert.equal(r.status, 401);
    assert.equal(r.json.message, 'Unauthorized');
    assert.equal(r.headers['www-authenticate'], `Basic realm="${realm}"`);
    assert.equal(r.seen, null, 'the upstream is not reached');
  }

  test('valid credentials identify the consumer; X-Credential-Identifier is the username', async () => {
    const r = await call('/default', { authorization: basic('alice', 'open sesame') });
    assert.equal(r.status, 200);
    const h = r.seen!.headers;
    assert.equal(h['x-consumer-id'], ALICE.id);
    assert.equal(h['x-consumer-username'], 'alice');
    assert.equal(h['x-credential-identifier'], 'alice');
    assert.equal(h['x-anonymous-consumer'], undefined);
    assert.equal(h['authorization'], basic('alice', 'open sesame'), 'without hide_credentials the header goes upstream');
  });

  test('ready hashes: argon2id PHC, scrypt PHC (RFC 7914 vector) and Kong\'s exported SHA-1', async () => {
    const b = await call('/default', { authorization: basic('bob', 'b0b-pw: with colon') });
    assert.equal(b.status, 200, 'the password is everything after the first colon');
    assert.equal(b.seen!.headers['x-consumer-custom-id'], 'bob-42');
    assert.equal((await call('/default', { authorization: basic('carol', 'password') })).status, 200);
    assert.equal((await call('/default', { authorization: basic('dave', 'dave-pw') })).status, 200);
    assert401(await call('/default', { authorization: basic('carol', 'Password') }));
    assert401(await call('/default', { authorization: basic('dave', 'dave-pw2') }));
  });

  test('missing, malformed, unknown and wrong credentials all get the same 401', async () => {
    const cases: Record<string, string>[] = [
      {},
      { authorization: basic('alice', 'wrong') },
      { authorization: basic('nobody', 'open sesame') },
      { authorization: 'Basic !!!not-base64' },
      { authorization: `Basic ${Buffer.from('no-colon').toString('base64')}` },
      { authorization: `Basic ${Buffer.from(':only-password').toString('base64')}` },
      { authorization: 'Bearer abc' },
      { authorization: basic('alice', '') },
    ];
    const bodies = new Set<string>();
    for (const headers of cases) {
      const r = await call('/default', headers);
      assert401(r);
      const { request_id: _, ...rest } = r.json;
      bodies.add(JSON.stringify(rest));
    }
    assert.equal(bodies.size, 1, 'one body for every failure');
  });

  test('the scheme is case-insensitive in its first letter, as in Kong', async () => {
    assert.equal((await call('/default', { authorization: basic('alice', 'open sesame').replace('Basic', 'basic') })).status, 200);
  });

  test('Proxy-Authorization is tried first, then Authorization', async () => {
    const r = await call('/default', { 'proxy-authorization': basic('bob', 'b0b-pw: with colon'), authorization: basic('alice', 'open sesame') });
    assert.equal(r.seen!.headers['x-consumer-username'], 'bob');
    assert.equal(r.seen!.headers['proxy-authorization'], undefined, 'never forwarded');
    const fallback = await call('/default', { 'proxy-authorization': basic('nobody', 'x'), authorization: basic('alice', 'open sesame') });
    assert.equal(fallback.seen!.headers['x-consumer-username'], 'alice');
    assert401(await call('/default', { 'proxy-authorization': basic('alice', 'wrong'), authorization: basic('bob', 'b0b-pw: with colon') }));
  });

  test('identity headers sent by the client are never trusted', async () => {
    const spoof = { 'x-consumer-id': 'evil', 'x-consumer-username': 'root', 'x-credential-identifier': 'root', 'x-anonymous-consumer': 'false' };
    const r = await call('/default', { ...spoof, authorization: basic('alice', 'open sesame') });
    assert.equal(r.seen!.headers['x-consumer-id'], ALICE.id);
    assert.equal(r.seen!.headers['x-credential-identifier'], 'alice');
    assert.equal(r.seen!.headers['x-anonymous-consumer'], undefined);
    const a = await call('/anon', spoof);
    assert.equal(a.seen!.headers['x-consumer-id'], ANON.id);
    assert.equal(a.seen!.headers['x-credential-identifier'], undefined);
    assert.equal(a.seen!.headers['x-anonymous-consumer'], 'true');
  });

  test('hide_credentials removes the Authorization header', async () => {
    const r = await call('/hidden', { authorization: basic('alice', 'open sesame'), 'x-other': 'kept' });
    assert.equal(r.status, 200);
    assert.equal(r.seen!.headers['authorization'], undefined);
    assert.equal(r.seen!.headers['x-other'], 'kept');
  });

  test('realm: WWW-Authenticate: Basic realm="<realm>"', async () => {
    assert401(await call('/realm'), 'palisade');
    assert401(await call('/realm', { authorization: basic('alice', 'x') }), 'palisade');
  });

  test('anonymous: missing or wrong credentials go on as the anonymous consumer', async () => {
    for (const headers of [{}, { authorization: basic('alice', 'wrong') }, { authorization: 'Basic ###' }] as Record<string, string>[]) {
      const r = await call('/anon', headers);
      assert.equal(r.status, 200);
      assert.equal(r.seen!.headers['x-consumer-username'], 'anon');
      assert.equal(r.seen!.headers['x-anonymous-consumer'], 'true');
    }
    const ok = await call('/anon', { authorization: basic('alice', 'open sesame') });
    assert.equal(ok.seen!.headers['x-consumer-username'], 'alice');
  });

  test('an unknown username costs a verification too (no fast "no such user" path)', async () => {
    const known: number[] = [];
    const unknown: number[] = [];
    for (let i = 0; i < 3; i++) {
      known.push((await call('/nocache', { authorization: basic('bob', `wrong-${i}`) })).ms);
      unknown.push((await call('/nocache', { authorization: basic(`ghost-${i}`, 'x') })).ms);
    }
    const k = Math.min(...known);
    const u = Math.min(...unknown);
    assert.ok(u >= 0.4 * k, `unknown user ${u.toFixed(1)} ms vs known user ${k.toFixed(1)} ms`);
  });

  test('successful verifications are cached: repeated requests skip the hash; a wrong password is never served from the cache', async () => {
    const auth = { authorization: basic('bob', 'b0b-pw: with colon') };
    await call('/default', auth);
    const slow: number[] = [];
    for (let i = 0; i < 3; i++) slow.push((await call('/nocache', auth)).ms);
    const fast: number[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await call('/default', auth);
      assert.equal(r.status, 200);
      fast.push(r.ms);
    }
    assert.ok(Math.min(...fast) < Math.min(...slow) / 2, `cached ${Math.min(...fast).toFixed(1)} ms vs verified ${Math.min(...slow).toFixed(1)} ms`);
    assert401(await call('/default', { authorization: basic('bob', 'b0b-pw: with colon!') }));
    assert401(await call('/default', { authorization: basic('bob', 'b0b-pw: with colo') }));
  });

  test('a changed password takes effect at once on reload, although the old one was cached', async () => {
    const up = await startUpstream();
    const cfg = (password: string) => ({
      consumers: [{ username: 'r', basicauth_credentials: [{ username: 'r', password }] }],
      services: [{ name: 's', url: up.url, routes: [{ name: 'r', paths: ['/'], plugins: [{ name: 'basic-auth' }] }] }],
    });
    const g = await startGateway(cfg('first'));
    try {
      const get = async (pw: string) => {
        const r = await request(g.url + '/', { headers: { authorization: basic('r', pw) } });
        await r.body.text();
        return r.statusCode;
      };
      assert.equal(await get('first'), 200);
      assert.equal(await get('first'), 200);
      await g.reload(cfg('second'));
      assert.equal(await get('first'), 401);
      assert.equal(await get('second'), 200);
    } finally {
      await g.close();
      await up.close();
    }
  });

  test('verification does not block the event loop', async () => {
    const single = (await call('/nocache', { authorization: basic('bob', 'warm-up') })).ms;
    const burst = Array.from({ length: 8 }, (_, i) => call('/nocache', { authorization: basic('bob', `burst-${i}`) }));
    await sleep(5);
    const open = await call('/open');
    assert.equal(open.status, 200);
    const results = await Promise.all(burst);
    for (const r of results) assert.equal(r.status, 401);
    assert.ok(open.ms < 4 * single, `an unauthenticated route answered in ${open.ms.toFixed(1)} ms during 8 verifications of ~${single.toFixed(1)} ms each`);
  });

  test('brute force per username: failures lock the username out (429 + Retry-After) from any IP, then it recovers', async () => {
    // (Identity counters are shared by every basic-auth instance: use usernames no other test fails with.)
    for (const user of ['erin', 'ghost-user']) {
      for (let i = 0; i < 2; i++) assert401(await call('/bf-user', { authorization: basic(user, `guess-${i}`) }));
      const locked = await call('/bf-user', { authorization: basic(user, user === 'erin' ? 'erin-pw' : 'x') });
      assert.equal(locked.status, 429, user);
      assert.equal(locked.headers['retry-after'], '1');
      assert.equal(locked.seen, null);
    }
    assert.equal((await call('/bf-user', { authorization: basic('frank', 'frank-pw') })).status, 200, 'other usernames are not affected');
    await sleep(1100);
    assert.equal((await call('/bf-user', { authorization: basic('erin', 'erin-pw') })).status, 200);
  });

  test('brute force per IP: failures from one IP lock it out across usernames; missing credentials do not count', async () => {
    const ip = freshIp();
    for (let i = 0; i < 4; i++) assert401(await call('/bf-ip', {}, ip));
    for (let i = 0; i < 3; i++) assert401(await call('/bf-ip', { authorization: basic(`user-${i}`, 'x') }, ip));
    assert.equal((await call('/bf-ip', { authorization: basic('alice', 'open sesame') }, ip)).status, 429);
    assert.equal((await call('/bf-ip', { authorization: basic('alice', 'open sesame') })).status, 200, 'other IPs are not affected');
    await sleep(1100);
    assert.equal((await call('/bf-ip', { authorization: basic('alice', 'open sesame') }, ip)).status, 200);
  });

  test('invalid configs are refused, naming the field', async () => {
    const withConfig = (creds: object[], pluginConfig: object = {}) => ({
      consumers: [{ username: 'a', basicauth_credentials: creds }, { username: 'b' }],
      services: [{ name: 's', url: upstream.url, routes: [{ name: 'r', paths: ['/'], plugins: [{ name: 'basic-auth', config: pluginConfig }] }] }],
    });
    const names = (re: RegExp) => (err: unknown) => {
      const e = err as { message?: string; errors?: unknown };
      const text = `${e.message ?? ''} ${JSON.stringify(e.errors ?? '')}`;
      assert.match(text, re, text);
      return true;
    };
    await assert.rejects(startGateway(withConfig([{ username: 'a' }])), names(/basicauth_credentials\/0.*needs password or password_hash/));
    await assert.rejects(startGateway(withConfig([{ password: 'x' }])), names(/basicauth_credentials\/0.*username/));
    await assert.rejects(startGateway(withConfig([{ username: 'a', password: 'x', password_hash: SCRYPT_PHC }])), names(/mutually exclusive/));
    await assert.rejects(
      startGateway(withConfig([{ username: 'a', password_hash: '$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW' }])),
      names(/basicauth_credentials\/0.*bcrypt hashes are not supported/),
    );
    await assert.rejects(startGateway(withConfig([{ username: 'a', password_hash: '$argon2id$v=19$m=19456,t=2$abc$def' }])), names(/basicauth_credentials\/0.*argon2id: malformed/));
    await assert.rejects(startGateway(withConfig([{ username: 'a', password_hash: 'plain-text' }])), names(/password_hash must be a PHC string/));
    await assert.rejects(startGateway(withConfig([{ username: 'a', password: 'x' }, { username: 'a', password: 'y' }])), names(/username 'a' is used twice/));
    await assert.rejects(startGateway(withConfig([], { anonymous: 'ghost' })), names(/anonymous consumer 'ghost' does not exist/));
    await assert.rejects(startGateway(withConfig([], { realm: 'a\nb' })), names(/realm/));
    await assert.rejects(startGateway(withConfig([], { verify_cache_ttl: -1 })), names(/verify_cache_ttl/));
  });
});
