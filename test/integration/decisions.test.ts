/**
 * Security decisions: the core records which plugin authenticated or refused a
 * request (and why), and the access log carries them.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { startGateway, startUpstream, type TestGateway, type TestUpstream } from '../helpers/gateway.ts';
import { eventually } from '../helpers/process.ts';

describe('security decisions in the access log', () => {
  let upstream: TestUpstream;
  let gw: TestGateway;

  before(async () => {
    upstream = await startUpstream();
    gw = await startGateway({
      services: [
        {
          name: 'svc',
          url: upstream.url,
          routes: [
            { name: 'cors', paths: ['/cors'], plugins: [{ name: 'cors', config: { origins: ['https://app.test'] } }] },
            {
              name: 'r',
              paths: ['/'],
              plugins: [
                { name: 'key-auth' },
                { name: 'acl', config: { allow: ['staff'] } },
              ],
            },
          ],
        },
      ],
      consumers: [
        { username: 'alice', keyauth_credentials: [{ key: 'alice-key' }], acls: [{ group: 'staff' }] },
        { username: 'bob', keyauth_credentials: [{ key: 'bob-key' }] },
      ],
    });
  });

  after(async () => {
    await gw?.close();
    await upstream?.close();
  });

  async function decisionsOf(headers: Record<string, string>) {
    const before = gw.accessLog.length;
    const r = await request(gw.url + '/x', { headers });
    await r.body.text();
    await eventually(() => gw.accessLog.length > before);
    return { status: r.statusCode, decisions: gw.accessLog.at(-1)!.decisions as { plugin: string; outcome: string; reason: string; status: number }[] | undefined };
  }

  test('a refused request names the plugin, the reason and the status', async () => {
    const r = await decisionsOf({});
    assert.equal(r.status, 401);
    assert.deepEqual(r.decisions, [{ plugin: 'key-auth', outcome: 'deny', reason: 'No API key found in request', status: 401 }]);
  });

  test('authentication then an authorization refusal are both recorded, in order', async () => {
    const r = await decisionsOf({ apikey: 'bob-key' });
    assert.equal(r.status, 403);
    assert.deepEqual(r.decisions?.map((d) => [d.plugin, d.outcome, d.status]), [
      ['key-auth', 'authenticated', 0],
      ['acl', 'deny', 403],
    ]);
  });

  test('an allowed request carries its authentication decision; secrets never appear', async () => {
    const r = await decisionsOf({ apikey: 'alice-key' });
    assert.equal(r.status, 200);
    assert.deepEqual(r.decisions?.map((d) => [d.plugin, d.outcome]), [['key-auth', 'authenticated']]);
    assert.ok(!JSON.stringify(gw.accessLog.at(-1)).includes('alice-key'));
  });

  test('a reply that is no refusal (a CORS preflight) is not recorded as a deny', async () => {
    const before = gw.accessLog.length;
    const r = await request(gw.url + '/cors', { method: 'OPTIONS', headers: { origin: 'https://app.test', 'access-control-request-method': 'GET' } });
    await r.body.dump();
    assert.equal(r.statusCode, 200);
    await eventually(() => gw.accessLog.length > before);
    assert.equal(gw.accessLog.at(-1)!.decisions, undefined);
  });
});
