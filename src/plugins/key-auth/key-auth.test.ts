import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { startGateway, startUpstream, type TestGateway, type TestUpstream } from '../../../test/helpers/gateway.ts';

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}
interface Res {
  status: number;
  headers: IncomingHttpHeaders;
  json: Record<string, unknown>;
  /** What the upstream saw, when the request reached it. */
  seen: Seen | null;
}

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const NOW = Math.floor(Date.now() / 1000);

const ALICE = { id: '0a11ce00-0000-4000-8000-000000000001', username: 'alice' };
const BOB = { id: '0b0b0000-0000-4000-8000-000000000002', username: 'bob', custom_id: 'bob-42' };
const ANON = { id: '0a0a0000-0000-4000-8000-000000000003', username: 'anon' };
const CRED = {
  alice1: 'c0000000-0000-4000-8000-00000000a001',
  alice2: 'c0000000-0000-4000-8000-00000000a002',
  bobExpired: 'c0000000-0000-4000-8000-00000000b001',
  bobLive: 'c0000000-0000-4000-8000-00000000b002',
  short: 'c0000000-0000-4000-8000-00000000b003',
};

function baseConfig(upstreamUrl: string) {
  const route = (name: string, config: object) => ({ name, paths: [`/${name}`], plugins: [{ name: 'key-auth', config }] });
  return {
    _format_version: '3.0',
    server: { trusted_ips: ['127.0.0.1'] },
    consumers: [
      { ...ALICE, keyauth_credentials: [{ id: CRED.alice1, key: 'alice-key-1' }, { id: CRED.alice2, key_hash: `sha256:${sha('alice-key-2')}` }] },
      {
        ...BOB,
        keyauth_credentials: [
          { id: CRED.bobExpired, key: 'bob-old', ttl: 60, created_at: NOW - 3600 },
          { id: CRED.bobLive, key: 'bob-live', ttl: 3600, created_at: NOW - 10 },
          { id: CRED.short, key: 'bob-short', ttl: 1 },
        ],
      },
      ANON,
    ],
    services: [
      {
        name: 'svc',
        url: upstreamUrl,
        routes: [
          route('default', {}),
          route('hidden', { hide_credentials: true }),
          route('names', { key_names: ['X-Token', 'token2'] }),
          route('header-only', { key_in_query: false }),
          route('query-only', { key_in_header: false }),
          route('body', { key_in_body: true, max_body_size: 4096 }),
          route('body-hidden', { key_in_body: true, hide_credentials: true }),
          route('realm', { realm: 'palisade' }),
          route('anon', { anonymous: 'anon' }),
          route('preflight', { run_on_preflight: false }),
          route('bf', { brute_force: { max_failures_per_ip: 3, window: 60, lockout: 1 } }),
        ],
      },
    ],
  };
}

let ipSeq = 0;
/** A distinct client IP (X-Forwarded-For from the trusted 127.0.0.1), so brute-force counters never mix between tests. */
const freshIp = () => `10.0.${Math.floor(++ipSeq / 250)}.${(ipSeq % 250) + 1}`;

describe('key-auth', () => {
  let upstream: TestUpstream;
  let gw: TestGateway;

  before(async () => {
    upstream = await startUpstream();
    gw = await startGateway(baseConfig(upstream.url));
  });

  after(async () => {
    await gw?.close();
    await upstream?.close();
  });

  async function call(path: string, opts: { method?: string; headers?: Record<string, string | string[]> | string[]; body?: string | Buffer; ip?: string } = {}): Promise<Res> {
    const before = upstream.requests.length;
    const headers = Array.isArray(opts.headers) ? [...opts.headers, 'x-forwarded-for', opts.ip ?? freshIp()] : { 'x-forwarded-for': opts.ip ?? freshIp(), ...opts.headers };
    const r = await request(gw.url + path, { method: (opts.method ?? 'GET') as 'GET', headers, body: opts.body });
    const text = await r.body.text();
    const json = text === '' ? {} : (JSON.parse(text) as Record<string, unknown>);
    return { status: r.statusCode, headers: r.headers as IncomingHttpHeaders, json, seen: upstream.requests.length > before ? upstream.requests.at(-1)! : null };
  }

  function assert401(r: Res, message: string, challenge = 'Key') {
    assert.equal(r.status, 401);
    assert.equal(r.json.message, message);
    assert.equal(r.headers['www-authenticate'], challenge);
    assert.match(String(r.headers['content-type']), /^application\/problem\+json/);
    assert.equal(r.seen, null, 'the upstream is not reached');
  }

  test('a valid key in the header identifies the consumer; the upstream gets the identity headers and the key', async () => {
    const r = await call('/default', { headers: { apikey: 'alice-key-1' } });
    assert.equal(r.status, 200);
    const h = r.seen!.headers;
    assert.equal(h['x-consumer-id'], ALICE.id);
    assert.equal(h['x-consumer-username'], 'alice');
    assert.equal(h['x-consumer-custom-id'], undefined);
    assert.equal(h['x-credential-identifier'], CRED.alice1);
    assert.equal(h['x-anonymous-consumer'], undefined);
    assert.equal(h['apikey'], 'alice-key-1', 'without hide_credentials the key goes upstream');
  });

  test('several keys per consumer (rotation): a plain key and a key_hash both work, each with its own credential id', async () => {
    const a = await call('/default', { headers: { apikey: 'alice-key-2' } });
    assert.equal(a.status, 200);
    assert.equal(a.seen!.headers['x-consumer-username'], 'alice');
    assert.equal(a.seen!.headers['x-credential-identifier'], CRED.alice2);
    const b = await call('/default', { headers: { apikey: 'bob-live' } });
    assert.equal(b.seen!.headers['x-consumer-custom-id'], 'bob-42');
    assert.equal(b.seen!.headers['x-credential-identifier'], CRED.bobLive);
  });

  test('a key in the query string works and stays in the upstream query without hide_credentials', async () => {
    const r = await call('/default?x=1&apikey=alice-key-1');
    assert.equal(r.status, 200);
    assert.equal(r.seen!.url, '/?x=1&apikey=alice-key-1'); // strip_path
    const enc = await call('/default?apikey=alice%2Dkey%2D1');
    assert.equal(enc.status, 200, 'percent-encoded values are decoded');
  });

  test('no key: 401 "No API key found in request" with WWW-Authenticate: Key', async () => {
    assert401(await call('/default'), 'No API key found in request');
    assert401(await call('/default?other=1'), 'No API key found in request');
    assert401(await call('/default?apikey='), 'No API key found in request');
    assert401(await call('/default?apikey'), 'No API key found in request');
    assert401(await call('/default', { headers: { apikey: '' } }), 'No API key found in request');
  });

  test('an unknown key: 401 "Unauthorized" with WWW-Authenticate: Key', async () => {
    assert401(await call('/default', { headers: { apikey: 'nope' } }), 'Unauthorized');
    assert401(await call('/default?apikey=alice-key-1x'), 'Unauthorized');
    assert401(await call('/default', { headers: { apikey: sha('alice-key-2') } }), 'Unauthorized');
  });

  test('a repeated key name: 401 "Duplicate API key found"', async () => {
    assert401(await call('/default', { headers: ['apikey', 'alice-key-1', 'apikey', 'bob-live'] }), 'Duplicate API key found');
    assert401(await call('/default?apikey=alice-key-1&apikey=alice-key-1'), 'Duplicate API key found');
    // One header whose value has a comma is a (wrong) key, not a duplicate.
    assert401(await call('/default', { headers: { apikey: 'a, b' } }), 'Unauthorized');
  });

  test('expiry: a key past created_at + ttl is refused like an unknown one; ttl without created_at counts from first load', async () => {
    assert401(await call('/default', { headers: { apikey: 'bob-old' } }), 'Unauthorized');
    assert.equal((await call('/default', { headers: { apikey: 'bob-live' } })).status, 200);
    assert.equal((await call('/default', { headers: { apikey: 'bob-short' } })).status, 200);
    await sleep(1100);
    assert401(await call('/default', { headers: { apikey: 'bob-short' } }), 'Unauthorized');
  });

  test('identity headers sent by the client are never trusted', async () => {
    const spoof = { 'x-consumer-id': 'evil', 'x-consumer-username': 'root', 'x-consumer-custom-id': 'x', 'x-credential-identifier': 'x', 'x-anonymous-consumer': 'false', 'x-consumer-groups': 'admin' };
    const r = await call('/default', { headers: { ...spoof, apikey: 'alice-key-1' } });
    assert.equal(r.seen!.headers['x-consumer-id'], ALICE.id);
    assert.equal(r.seen!.headers['x-consumer-username'], 'alice');
    assert.equal(r.seen!.headers['x-consumer-custom-id'], undefined);
    assert.equal(r.seen!.headers['x-credential-identifier'], CRED.alice1);
    assert.equal(r.seen!.headers['x-anonymous-consumer'], undefined);
    assert.equal(r.seen!.headers['x-consumer-groups'], undefined);
    const a = await call('/anon', { headers: spoof });
    assert.equal(a.seen!.headers['x-consumer-id'], ANON.id);
    assert.equal(a.seen!.headers['x-consumer-username'], 'anon');
    assert.equal(a.seen!.headers['x-credential-identifier'], undefined);
    assert.equal(a.seen!.headers['x-anonymous-consumer'], 'true');
  });

  test('hide_credentials removes the key from the header or the query string, and keeps the rest', async () => {
    const h = await call('/hidden', { headers: { apikey: 'alice-key-1', 'x-other': 'kept' } });
    assert.equal(h.status, 200);
    assert.equal(h.seen!.headers['apikey'], undefined);
    assert.equal(h.seen!.headers['x-other'], 'kept');
    const q = await call('/hidden?a=1&apikey=alice-key-1&b=%20x');
    assert.equal(q.status, 200);
    assert.equal(q.seen!.url, '/?a=1&b=%20x'); // strip_path
    const only = await call('/hidden?apikey=alice-key-1');
    assert.equal(only.seen!.url, '/');
  });

  test('key_names are tried in order; header names are case-insensitive', async () => {
    const a = await call('/names', { headers: { 'x-token': 'alice-key-1' } });
    assert.equal(a.seen!.headers['x-credential-identifier'], CRED.alice1);
    const b = await call('/names?token2=bob-live');
    assert.equal(b.seen!.headers['x-consumer-username'], 'bob');
    // The first name wins even if the second holds a valid key.
    assert401(await call('/names?token2=bob-live', { headers: { 'X-TOKEN': 'wrong' } }), 'Unauthorized');
    assert401(await call('/names', { headers: { apikey: 'alice-key-1' } }), 'No API key found in request');
  });

  test('key_in_header / key_in_query switch the places off', async () => {
    assert401(await call('/header-only?apikey=alice-key-1'), 'No API key found in request');
    assert.equal((await call('/header-only', { headers: { apikey: 'alice-key-1' } })).status, 200);
    assert401(await call('/query-only', { headers: { apikey: 'alice-key-1' } }), 'No API key found in request');
    assert.equal((await call('/query-only?apikey=alice-key-1')).status, 200);
  });

  test('key_in_body: form, JSON and multipart bodies; the body reaches the upstream unchanged', async () => {
    const form = await call('/body', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'a=1&apikey=alice-key-1' });
    assert.equal(form.status, 200);
    assert.equal(form.seen!.headers['x-credential-identifier'], CRED.alice1);
    assert.equal(form.seen!.body, 'a=1&apikey=alice-key-1');
    const json = await call('/body', { method: 'POST', headers: { 'content-type': 'application/json; charset=utf-8' }, body: '{"apikey":"bob-live","n":1}' });
    assert.equal(json.status, 200);
    assert.equal(json.seen!.headers['x-consumer-username'], 'bob');
    assert.equal(json.seen!.body, '{"apikey":"bob-live","n":1}');
    const mp = multipart({ note: 'hello', apikey: 'alice-key-2' });
    const m = await call('/body', { method: 'POST', headers: { 'content-type': mp.type }, body: mp.body });
    assert.equal(m.status, 200);
    assert.equal(m.seen!.headers['x-credential-identifier'], CRED.alice2);
    assert.equal(m.seen!.body, mp.body);
  });

  test('key_in_body: Kong\'s edge cases', async () => {
    const post = (type: string, body: string) => call('/body', { method: 'POST', headers: { 'content-type': type }, body });
    assert401(await post('application/json', '{"apikey":{"a":1}}'), 'Duplicate API key found');
    assert401(await post('application/json', '{"apikey":12}'), 'No API key found in request');
    assert401(await post('application/json', '{not json'), 'No API key found in request');
    assert401(await post('application/x-www-form-urlencoded', 'apikey=a&apikey=b'), 'Duplicate API key found');
    assert401(await post('text/plain', 'apikey=alice-key-1'), 'No API key found in request');
    // A body above max_body_size is not searched, and still streams upstream whole.
    const big = `apikey=alice-key-1&pad=${'x'.repeat(5000)}`;
    assert401(await post('application/x-www-form-urlencoded', big), 'No API key found in request');
    // Header and query still come first.
    const r = await call('/body?apikey=alice-key-1', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"apikey":"nope"}' });
    assert.equal(r.status, 200);
  });

  test('key_in_body + hide_credentials removes the key from the body (and from header and query), keeping the rest', async () => {
    const form = await call('/body-hidden', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'a=1&apikey=alice-key-1&b=2' });
    assert.equal(form.status, 200);
    assert.equal(form.seen!.body, 'a=1&b=2');
    assert.equal(form.seen!.headers['content-length'], '7');
    const json = await call('/body-hidden', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"apikey":"alice-key-1","keep":true}' });
    assert.deepEqual(JSON.parse(json.seen!.body), { keep: true });
    const mp = multipart({ note: 'hello', apikey: 'alice-key-1', other: 'x' });
    const m = await call('/body-hidden', { method: 'POST', headers: { 'content-type': mp.type }, body: mp.body });
    assert.equal(m.status, 200);
    assert.equal(m.seen!.body, multipart({ note: 'hello', other: 'x' }, mp.boundary).body);
    // Found in the header: the header goes, and so does a copy in the body.
    const both = await call('/body-hidden', { method: 'POST', headers: { apikey: 'alice-key-1', 'content-type': 'application/x-www-form-urlencoded' }, body: 'apikey=zzz&c=3' });
    assert.equal(both.status, 200);
    assert.equal(both.seen!.headers['apikey'], undefined);
    assert.equal(both.seen!.body, 'c=3');
  });

  test('realm: WWW-Authenticate: Key realm="…" on every 401', async () => {
    assert401(await call('/realm'), 'No API key found in request', 'Key realm="palisade"');
    assert401(await call('/realm', { headers: { apikey: 'x' } }), 'Unauthorized', 'Key realm="palisade"');
  });

  test('anonymous: a missing or wrong key goes on as the anonymous consumer', async () => {
    for (const headers of [{}, { apikey: 'wrong' }, ['apikey', 'a', 'apikey', 'b']] as (Record<string, string> | string[])[]) {
      const r = await call('/anon', { headers });
      assert.equal(r.status, 200);
      assert.equal(r.seen!.headers['x-consumer-username'], 'anon');
      assert.equal(r.seen!.headers['x-anonymous-consumer'], 'true');
      assert.equal(r.seen!.headers['x-credential-identifier'], undefined);
    }
    const ok = await call('/anon', { headers: { apikey: 'alice-key-1' } });
    assert.equal(ok.seen!.headers['x-consumer-username'], 'alice');
    assert.equal(ok.seen!.headers['x-anonymous-consumer'], undefined);
  });

  test('run_on_preflight: false lets OPTIONS through without a key; by default OPTIONS needs one', async () => {
    const p = await call('/preflight', { method: 'OPTIONS' });
    assert.equal(p.status, 200);
    assert.equal(p.seen!.headers['x-consumer-id'], undefined);
    assert401(await call('/preflight', { method: 'GET' }), 'No API key found in request');
    assert401(await call('/default', { method: 'OPTIONS' }), 'No API key found in request');
  });

  test('brute force: wrong keys lock the client IP out (429 + Retry-After, even with a valid key), then it recovers', async () => {
    const ip = freshIp();
    for (let i = 0; i < 3; i++) assert401(await call('/bf', { headers: { apikey: `guess-${i}` }, ip }), 'Unauthorized');
    const locked = await call('/bf', { headers: { apikey: 'alice-key-1' }, ip });
    assert.equal(locked.status, 429);
    assert.equal(locked.headers['retry-after'], '1');
    assert.equal(locked.seen, null);
    // Another client is not affected.
    assert.equal((await call('/bf', { headers: { apikey: 'alice-key-1' } })).status, 200);
    await sleep(1100);
    assert.equal((await call('/bf', { headers: { apikey: 'alice-key-1' }, ip })).status, 200);
  });

  test('brute force: missing keys are not failed attempts', async () => {
    const ip = freshIp();
    for (let i = 0; i < 5; i++) assert401(await call('/bf', { ip }), 'No API key found in request');
    assert.equal((await call('/bf', { headers: { apikey: 'alice-key-1' }, ip })).status, 200);
  });

  test('reload: a removed key stops working, a new one works (rotation without restart)', async () => {
    const up = await startUpstream();
    const g = await startGateway({
      consumers: [{ username: 'r', keyauth_credentials: [{ key: 'old-key' }] }],
      services: [{ name: 's', url: up.url, routes: [{ name: 'r', paths: ['/'], plugins: [{ name: 'key-auth' }] }] }],
    });
    try {
      const get = async (key: string) => {
        const r = await request(g.url + '/', { headers: { apikey: key } });
        await r.body.text();
        return r.statusCode;
      };
      assert.equal(await get('old-key'), 200);
      await g.reload({
        consumers: [{ username: 'r', keyauth_credentials: [{ key_hash: `sha256:${sha('new-key')}` }] }],
        services: [{ name: 's', url: up.url, routes: [{ name: 'r', paths: ['/'], plugins: [{ name: 'key-auth' }] }] }],
      });
      assert.equal(await get('new-key'), 200);
      assert.equal(await get('old-key'), 401);
    } finally {
      await g.close();
      await up.close();
    }
  });

  test('hmac-sha256 key hashes verify with the secret from the environment; plain keys still work', async () => {
    const secret = 'x'.repeat(20) + 'a-secret-of-32+chars';
    process.env.PALISADE_KEY_AUTH_HMAC_SECRET = secret;
    const up = await startUpstream();
    try {
      const g = await startGateway({
        consumers: [
          { username: 'h', keyauth_credentials: [{ key_hash: `hmac-sha256:${createHmac('sha256', secret).update('hmac-key').digest('hex')}` }, { key: 'plain-key' }] },
          { username: 's', keyauth_credentials: [{ key_hash: `sha256:${sha('sha-key')}` }] },
        ],
        services: [{ name: 's', url: up.url, routes: [{ name: 'r', paths: ['/'], plugins: [{ name: 'key-auth' }] }] }],
      });
      try {
        for (const [key, status] of [['hmac-key', 200], ['plain-key', 200], ['sha-key', 200], ['other', 401]] as const) {
          const r = await request(g.url + '/', { headers: { apikey: key } });
          await r.body.text();
          assert.equal(r.statusCode, status, key);
        }
      } finally {
        await g.close();
      }
    } finally {
      delete process.env.PALISADE_KEY_AUTH_HMAC_SECRET;
      await up.close();
    }
  });

  test('invalid configs are refused, naming the field', async () => {
    const withConfig = (consumers: object[], config: object = {}) => ({
      consumers,
      services: [{ name: 's', url: upstream.url, routes: [{ name: 'r', paths: ['/'], plugins: [{ name: 'key-auth', config }] }] }],
    });
    const names = (re: RegExp) => (err: unknown) => {
      const e = err as { message?: string; errors?: unknown };
      const text = `${e.message ?? ''} ${JSON.stringify(e.errors ?? '')}`;
      assert.match(text, re, text);
      return true;
    };
    await assert.rejects(startGateway(withConfig([{ username: 'a', keyauth_credentials: [{}] }])), names(/keyauth_credentials\/0.*needs key or key_hash/));
    await assert.rejects(startGateway(withConfig([{ username: 'a', keyauth_credentials: [{ key: 'k', key_hash: `sha256:${sha('k')}` }] }])), names(/keyauth_credentials\/0.*mutually exclusive/));
    await assert.rejects(startGateway(withConfig([{ username: 'a', keyauth_credentials: [{ key_hash: 'md5:abc' }] }])), names(/keyauth_credentials\/0\/key_hash/));
    await assert.rejects(startGateway(withConfig([{ username: 'a', keyauth_credentials: [{ key: '' }] }])), names(/keyauth_credentials\/0\/key/));
    await assert.rejects(startGateway(withConfig([{ username: 'a', keyauth_credentials: [{ key: 'k', ttl: -1 }] }])), names(/keyauth_credentials\/0\/ttl/));
    await assert.rejects(startGateway(withConfig([{ username: 'a', keyauth_credentials: [{ key: 'k', extra: 1 }] }])), names(/keyauth_credentials\/0/));
    await assert.rejects(
      startGateway(withConfig([{ username: 'a', keyauth_credentials: [{ key_hash: `hmac-sha256:${sha('k')}` }] }])),
      names(/keyauth_credentials\/0.*PALISADE_KEY_AUTH_HMAC_SECRET/),
    );
    await assert.rejects(
      startGateway(withConfig([{ username: 'a', keyauth_credentials: [{ key: 'same' }] }, { username: 'b', keyauth_credentials: [{ key_hash: `sha256:${sha('same')}` }] }])),
      names(/same key/),
    );
    await assert.rejects(startGateway(withConfig([], { key_names: ['bad name'] })), names(/key_names/));
    await assert.rejects(startGateway(withConfig([], { key_names: [] })), names(/key_names/));
    await assert.rejects(startGateway(withConfig([], { anonymous: 'ghost' })), names(/anonymous consumer 'ghost' does not exist/));
    await assert.rejects(startGateway(withConfig([], { realm: 'a"b' })), names(/realm/));
    await assert.rejects(startGateway(withConfig([], { brute_force: { window: 0 } })), names(/brute_force/));
  });
});

/** A multipart/form-data body with CRLF line ends, as browsers send it. */
function multipart(fields: Record<string, string>, boundary = `----palisade${Math.random().toString(16).slice(2)}`) {
  let body = '';
  for (const [k, v] of Object.entries(fields)) body += `--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`;
  body += `--${boundary}--\r\n`;
  return { type: `multipart/form-data; boundary=${boundary}`, body, boundary };
}
