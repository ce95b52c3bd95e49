/**
 * key-auth, basic-auth and acl together, on the configuration of
 * examples/identity/palisade.yaml (its upstream replaced by a test one):
 * - "any of them": both auth plugins with `anonymous`, acl after them, and a
 *   request-termination scoped to the anonymous consumer that blocks it;
 * - "all of them": both auth plugins without `anonymous`.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { parse } from 'yaml';
import { startGateway, startUpstream, type TestGateway, type TestUpstream } from '../helpers/gateway.ts';

const EXAMPLE = fileURLToPath(new URL('../../examples/identity/palisade.yaml', import.meta.url));
const basic = (user: string, pass: string) => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;

const KEY = { alice: 'alice-demo-key', carol: 'carol-demo-key', mallory: 'mallory-demo-key' };
const BASIC = { bob: basic('bob', 'bob-demo-password'), carol: basic('carol', 'carol-demo-password') };

interface Res {
  status: number;
  headers: IncomingHttpHeaders;
  json: Record<string, unknown>;
  seen: { url: string; headers: IncomingHttpHeaders } | null;
}

describe('identity: key-auth, basic-auth and acl combined (examples/identity/palisade.yaml)', () => {
  let upstream: TestUpstream;
  let gw: TestGateway;

  before(async () => {
    upstream = await startUpstream();
    const cfg = parse(readFileSync(EXAMPLE, 'utf8')) as { services: { url: string }[] };
    for (const s of cfg.services) s.url = upstream.url;
    gw = await startGateway(cfg);
  });

  after(async () => {
    await gw?.close();
    await upstream?.close();
  });

  async function call(path: string, headers: Record<string, string> = {}): Promise<Res> {
    const before = upstream.requests.length;
    const r = await request(gw.url + path, { headers });
    const text = await r.body.text();
    return {
      status: r.statusCode,
      headers: r.headers as IncomingHttpHeaders,
      json: text === '' ? {} : JSON.parse(text),
      seen: upstream.requests.length > before ? upstream.requests.at(-1)! : null,
    };
  }

  function identity(r: Res) {
    assert.equal(r.status, 200, JSON.stringify(r.json));
    const h = r.seen!.headers;
    return { user: h['x-consumer-username'], cred: h['x-credential-identifier'], anonymous: h['x-anonymous-consumer'], groups: h['x-consumer-groups'] };
  }

  describe('any of them (anonymous fallback)', () => {
    test('an API key alone is enough; the key never reaches the upstream', async () => {
      const r = await call('/any', { apikey: KEY.alice });
      assert.equal(identity(r).user, 'alice');
      assert.equal(identity(r).anonymous, undefined);
      assert.equal(r.seen!.headers['apikey'], undefined);
    });

    test('Basic credentials alone are enough (after key-auth fell back to anonymous)', async () => {
      const r = await call('/any', { authorization: BASIC.bob });
      const id = identity(r);
      assert.equal(id.user, 'bob');
      assert.equal(id.cred, 'bob');
      assert.equal(id.anonymous, undefined, 'no longer anonymous once basic-auth succeeded');
      assert.equal(r.seen!.headers['authorization'], undefined);
    });

    test('with both, the first plugin (key-auth, higher priority) wins and basic-auth is skipped', async () => {
      const r = await call('/any', { apikey: KEY.alice, authorization: basic('bob', 'wrong password') });
      assert.equal(identity(r).user, 'alice');
    });

    test('no valid credentials: the anonymous consumer is stopped by its request-termination (401)', async () => {
      for (const headers of [{}, { apikey: 'wrong' }, { authorization: basic('bob', 'wrong') }, { apikey: 'wrong', authorization: basic('nobody', 'x') }] as Record<string, string>[]) {
        const r = await call('/any', headers);
        assert.equal(r.status, 401);
        assert.equal(r.json.message, 'Authentication required: send an API key (apikey) or Basic credentials');
        assert.equal(r.seen, null);
      }
    });

    test('acl after authentication: a consumer in a denied group gets 403', async () => {
      const r = await call('/any', { apikey: KEY.mallory });
      assert.equal(r.status, 403);
      assert.equal(r.json.message, 'You cannot consume this service');
      assert.equal(r.seen, null);
    });

    test('acl allow list with consumer groups: staff by acls, partners by consumer group; anonymous gets 403', async () => {
      assert.equal(identity(await call('/staff', { apikey: KEY.alice })).groups, 'staff');
      assert.equal(identity(await call('/staff', { authorization: BASIC.bob })).groups, 'partners');
      const anon = await call('/staff');
      assert.equal(anon.status, 403);
      assert.equal(anon.json.message, 'You cannot consume this service');
      assert.equal((await call('/staff', { apikey: KEY.mallory })).status, 403);
    });

    test('spoofed identity and group headers never reach the upstream', async () => {
      const spoof = { 'x-consumer-username': 'alice', 'x-consumer-id': 'x', 'x-consumer-groups': 'staff', 'x-credential-identifier': 'x', 'x-anonymous-consumer': 'false' };
      const r = await call('/staff', { ...spoof, authorization: BASIC.bob });
      const id = identity(r);
      assert.equal(id.user, 'bob');
      assert.equal(id.groups, 'partners');
      assert.equal(id.cred, 'bob');
      assert.equal((await call('/staff', spoof)).status, 403);
      assert.equal((await call('/any', spoof)).status, 401);
    });
  });

  describe('all of them (no anonymous)', () => {
    test('both credentials are required', async () => {
      const r = await call('/all', { apikey: KEY.carol, authorization: BASIC.carol });
      const id = identity(r);
      assert.equal(id.user, 'carol');
      assert.equal(id.cred, 'carol', 'the last plugin to authenticate (basic-auth) sets the credential');
      assert.equal(id.groups, 'staff');
      assert.equal(r.seen!.headers['apikey'], undefined);
      assert.equal(r.seen!.headers['authorization'], undefined);
    });

    test('one missing or wrong credential fails with that plugin\'s 401', async () => {
      const noBasic = await call('/all', { apikey: KEY.carol });
      assert.equal(noBasic.status, 401);
      assert.equal(noBasic.json.message, 'Unauthorized');
      assert.equal(noBasic.headers['www-authenticate'], 'Basic realm="api"');
      const noKey = await call('/all', { authorization: BASIC.carol });
      assert.equal(noKey.status, 401);
      assert.equal(noKey.json.message, 'No API key found in request');
      assert.equal(noKey.headers['www-authenticate'], 'Key');
      const wrongBasic = await call('/all', { apikey: KEY.carol, authorization: basic('carol', 'nope') });
      assert.equal(wrongBasic.status, 401);
      assert.equal(wrongBasic.headers['www-authenticate'], 'Basic realm="api"');
      assert.equal(wrongBasic.seen, null);
    });

    test('acl applies to the consumer basic-auth identified last (as in Kong, the two need not be the same consumer)', async () => {
      // alice's key (staff) then bob's Basic credentials: bob is the consumer, and bob is not staff.
      const r = await call('/all', { apikey: KEY.alice, authorization: BASIC.bob });
      assert.equal(r.status, 403);
      assert.equal(r.json.message, 'You cannot consume this service');
      const ok = await call('/all', { apikey: KEY.mallory, authorization: BASIC.carol });
      assert.equal(identity(ok).user, 'carol');
    });
  });
});
