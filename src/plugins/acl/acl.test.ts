import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { request } from 'undici';
import { startGateway, startUpstream, type TestGateway, type TestUpstream } from '../../../test/helpers/gateway.ts';
import acl from './index.ts';
import type { PdkConsumer, PdkContext, PluginServices, Reply } from '../../pdk/index.ts';

interface Res {
  status: number;
  headers: IncomingHttpHeaders;
  json: Record<string, unknown>;
  seen: { headers: IncomingHttpHeaders } | null;
}

const ALICE = { id: 'a11ce000-0000-4000-8000-000000000001', username: 'alice' };

function config(upstreamUrl: string, aliceGroups = ['admin', 'dev']) {
  const route = (name: string, aclConfig: object | null, keyAuth: object = {}) => ({
    name,
    paths: [`/${name}`],
    plugins: [...(keyAuth === null ? [] : [{ name: 'key-auth', config: keyAuth }]), ...(aclConfig === null ? [] : [{ name: 'acl', config: aclConfig }])],
  });
  return {
    consumer_groups: [{ name: 'gold' }],
    consumers: [
      { ...ALICE, keyauth_credentials: [{ key: 'alice-key' }], acls: aliceGroups.map((group) => ({ group })) },
      { username: 'bob', groups: ['gold'], keyauth_credentials: [{ key: 'bob-key' }], acls: [{ group: 'dev' }] },
      { username: 'carol', keyauth_credentials: [{ key: 'carol-key' }] },
      { username: 'anon', acls: [{ group: 'public' }] },
    ],
    services: [
      {
        name: 'svc',
        url: upstreamUrl,
        routes: [
          route('allow-admin', { allow: ['admin'] }),
          route('deny-dev', { deny: ['dev'] }),
          route('allow-gold', { allow: ['gold'] }),
          route('allow-gold-cg', { allow: ['gold'], include_consumer_groups: true }),
          route('hide', { allow: ['admin'], hide_groups_header: true }),
          route('anon', { allow: ['admin'] }, { anonymous: 'anon' }),
          route('anon-public', { allow: ['public', 'admin'] }, { anonymous: 'anon' }),
          { name: 'no-auth', paths: ['/no-auth'], plugins: [{ name: 'acl', config: { allow: ['admin'] } }] },
        ],
      },
    ],
  };
}

describe('acl', () => {
  let upstream: TestUpstream;
  let gw: TestGateway;

  before(async () => {
    upstream = await startUpstream();
    gw = await startGateway(config(upstream.url));
  });

  after(async () => {
    await gw?.close();
    await upstream?.close();
  });

  async function call(path: string, headers: Record<string, string> = {}, g = gw): Promise<Res> {
    const before = upstream.requests.length;
    const r = await request(g.url + path, { headers });
    const text = await r.body.text();
    return {
      status: r.statusCode,
      headers: r.headers as IncomingHttpHeaders,
      json: text === '' ? {} : JSON.parse(text),
      seen: upstream.requests.length > before ? upstream.requests.at(-1)! : null,
    };
  }

  function assert403(r: Res) {
    assert.equal(r.status, 403);
    assert.equal(r.json.message, 'You cannot consume this service');
    assert.equal(r.seen, null);
  }

  test('allow: a member passes with X-Consumer-Groups; others get 403 "You cannot consume this service"', async () => {
    const ok = await call('/allow-admin', { apikey: 'alice-key' });
    assert.equal(ok.status, 200);
    assert.equal(ok.seen!.headers['x-consumer-groups'], 'admin, dev');
    assert403(await call('/allow-admin', { apikey: 'bob-key' }));
    assert403(await call('/allow-admin', { apikey: 'carol-key' }));
  });

  test('deny: members are refused, everyone else passes (no groups header when there are no groups)', async () => {
    assert403(await call('/deny-dev', { apikey: 'alice-key' }));
    assert403(await call('/deny-dev', { apikey: 'bob-key' }));
    const carol = await call('/deny-dev', { apikey: 'carol-key' });
    assert.equal(carol.status, 200);
    assert.equal(carol.seen!.headers['x-consumer-groups'], undefined);
  });

  test('include_consumer_groups: the consumer groups count too (and are listed after the acls groups)', async () => {
    assert403(await call('/allow-gold', { apikey: 'bob-key' }));
    const r = await call('/allow-gold-cg', { apikey: 'bob-key' });
    assert.equal(r.status, 200);
    assert.equal(r.seen!.headers['x-consumer-groups'], 'dev, gold');
    assert403(await call('/allow-gold-cg', { apikey: 'alice-key' }));
  });

  test('hide_groups_header: no X-Consumer-Groups upstream', async () => {
    const r = await call('/hide', { apikey: 'alice-key' });
    assert.equal(r.status, 200);
    assert.equal(r.seen!.headers['x-consumer-groups'], undefined);
  });

  test('groups headers sent by the client are never forwarded', async () => {
    const spoof = { 'x-consumer-groups': 'admin', 'x-authenticated-groups': 'admin' };
    const r = await call('/allow-admin', { ...spoof, apikey: 'alice-key' });
    assert.equal(r.seen!.headers['x-consumer-groups'], 'admin, dev');
    assert.equal(r.seen!.headers['x-authenticated-groups'], undefined);
    const h = await call('/hide', { ...spoof, apikey: 'alice-key' });
    assert.equal(h.seen!.headers['x-consumer-groups'], undefined);
    assert403(await call('/allow-admin', { ...spoof, apikey: 'carol-key' }));
    const d = await call('/deny-dev', { ...spoof, apikey: 'carol-key' });
    assert.equal(d.seen!.headers['x-consumer-groups'], undefined);
  });

  test('the anonymous consumer is judged by its own groups', async () => {
    assert403(await call('/anon'));
    const pub = await call('/anon-public');
    assert.equal(pub.status, 200);
    assert.equal(pub.seen!.headers['x-anonymous-consumer'], 'true');
    assert.equal(pub.seen!.headers['x-consumer-groups'], 'public');
    assert.equal((await call('/anon', { apikey: 'alice-key' })).status, 200);
  });

  test('no authenticated consumer at all: 401 "Unauthorized"', async () => {
    const r = await call('/no-auth', { 'x-consumer-id': ALICE.id, 'x-consumer-groups': 'admin' });
    assert.equal(r.status, 401);
    assert.equal(r.json.message, 'Unauthorized');
    assert.equal(r.seen, null);
  });

  test('groups are compiled per config version: a reload changes the decision', async () => {
    const up = upstream;
    const g = await startGateway(config(up.url));
    try {
      assert.equal((await call('/allow-admin', { apikey: 'alice-key' }, g)).status, 200);
      await g.reload(config(up.url, ['dev']));
      assert403(await call('/allow-admin', { apikey: 'alice-key' }, g));
      const d = await call('/allow-gold-cg', { apikey: 'bob-key' }, g);
      assert.equal(d.status, 200);
    } finally {
      await g.close();
    }
  });

  test('invalid configs are refused with Kong\'s messages, naming the field', async () => {
    const withAcl = (aclConfig: object, consumers: object[] = []) => ({
      consumers,
      services: [{ name: 's', url: upstream.url, routes: [{ name: 'r', paths: ['/'], plugins: [{ name: 'acl', config: aclConfig }] }] }],
    });
    const names = (re: RegExp) => (err: unknown) => {
      const e = err as { message?: string; errors?: unknown };
      const text = `${e.message ?? ''} ${JSON.stringify(e.errors ?? '')}`;
      assert.match(text, re, text);
      return true;
    };
    await assert.rejects(startGateway(withAcl({ allow: ['a'], deny: ['b'] })), names(/only one of these fields must be non-empty: 'config.allow', 'config.deny'/));
    await assert.rejects(startGateway(withAcl({})), names(/at least one of these fields must be non-empty: 'config.allow', 'config.deny'/));
    await assert.rejects(startGateway(withAcl({ allow: [], deny: [] })), names(/at least one of these fields must be non-empty/));
    await assert.rejects(startGateway(withAcl({ allow: ['a'], whitelist: ['b'] })), names(/whitelist/));
    await assert.rejects(startGateway(withAcl({ allow: ['a'] }, [{ username: 'x', acls: [{}] }])), names(/acls\/0.*group/));
    await assert.rejects(startGateway(withAcl({ allow: ['a'] }, [{ username: 'x', acls: [{ group: '' }] }])), names(/acls\/0\/group/));
    // Empty lists count as unset, as in Kong.
    const ok = await startGateway(withAcl({ allow: [], deny: ['x'] }));
    await ok.close();
  });
});

/**
 * Groups put in ctx.shared.authenticated_groups by an authentication plugin
 * (ldap-auth …). No plugin in this file's gateway produces them, so the
 * handler is exercised directly with a minimal context.
 */
describe('acl with authenticated groups', () => {
  const consumer: PdkConsumer = { id: 'c1', username: 'c', custom_id: null, tags: [], groups: ['cg'] };
  const services = (acls: { group: string }[]): PluginServices =>
    ({
      credentials: acls.map((a, i) => ({ consumer, credential: { ...a, id: `a${i}` } })),
      consumers: { find: () => consumer, all: () => [consumer] },
      memo: <T>(_: string, build: () => T) => build(),
    }) as unknown as PluginServices;

  function run(cfg: object, state: { consumer: PdkConsumer | null; credential: boolean; groups?: unknown }) {
    const set: Record<string, string> = {};
    const ctx = {
      consumer: state.consumer,
      credential: state.credential ? { id: 'k', identifier: 'k' } : null,
      anonymous: state.consumer !== null && !state.credential,
      shared: state.groups === undefined ? {} : { authenticated_groups: state.groups },
      request: { setHeader: (k: string, v: string) => (set[k] = v) },
      reject: (status: number, message: string) => ({ status, message }) as unknown as Reply,
    } as unknown as PdkContext;
    const full = { hide_groups_header: false, include_consumer_groups: false, always_use_authenticated_groups: false, ...cfg };
    const r = acl.create(full as never, services([{ group: 'own' }])).access!(ctx) as unknown as { status: number; message: string } | undefined;
    return { r, set };
  }

  test('without a consumer they decide, and go upstream in X-Authenticated-Groups', () => {
    const ok = run({ allow: ['ldap-admins'] }, { consumer: null, credential: false, groups: ['ldap-admins', 'x'] });
    assert.equal(ok.r, undefined);
    assert.deepEqual(ok.set, { 'x-authenticated-groups': 'ldap-admins, x' });
    assert.deepEqual(run({ allow: ['ldap-admins'] }, { consumer: null, credential: false, groups: ['x'] }).r, { status: 403, message: 'You cannot consume this service' });
    assert.deepEqual(run({ allow: ['ldap-admins'] }, { consumer: null, credential: false }).r, { status: 401, message: 'Unauthorized' });
  });

  test('they override the anonymous consumer\'s groups, not a real consumer\'s unless always_use_authenticated_groups', () => {
    assert.equal(run({ allow: ['ldap'] }, { consumer, credential: false, groups: ['ldap'] }).r, undefined);
    assert.equal(run({ allow: ['ldap'] }, { consumer, credential: true, groups: ['ldap'] }).r?.status, 403);
    const own = run({ allow: ['own'] }, { consumer, credential: true, groups: ['ldap'] });
    assert.equal(own.r, undefined);
    assert.deepEqual(own.set, { 'x-consumer-groups': 'own' });
    assert.equal(run({ allow: ['ldap'], always_use_authenticated_groups: true }, { consumer, credential: true, groups: ['ldap'] }).r, undefined);
    // always_use_authenticated_groups falls back to the consumer's groups when there are none.
    assert.equal(run({ allow: ['own'], always_use_authenticated_groups: true }, { consumer, credential: true }).r, undefined);
    // include_consumer_groups adds the consumer groups to the authenticated ones.
    const cg = run({ allow: ['cg'], include_consumer_groups: true }, { consumer, credential: false, groups: ['ldap'] });
    assert.equal(cg.r, undefined);
    assert.deepEqual(cg.set, { 'x-authenticated-groups': 'ldap, cg' });
  });
});
