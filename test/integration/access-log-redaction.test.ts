/**
 * Secrets in query strings never reach the access log: the usual names
 * (apikey, token, …) and whatever names the plugins of the running config read
 * secrets from (key-auth key_names, jwt uri_param_names).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startGateway, startUpstream } from '../helpers/gateway.ts';

test('query secrets under plugin-specific names are redacted in the access log, and still reach the upstream', async () => {
  const up = await startUpstream();
  const gw = await startGateway({
    services: [{ name: 's', url: up.url, routes: [{ name: 'r', paths: ['/r'], plugins: [{ name: 'key-auth', config: { key_names: ['x_custom_key'] } }] }] }],
    consumers: [{ username: 'alice', keyauth_credentials: [{ key: 'alice-secret-key-123' }] }],
  });
  try {
    const res = await fetch(`${gw.url}/r/x?x_custom_key=alice-secret-key-123&page=2`);
    assert.equal(res.status, 200);
    const rec = gw.accessLog.find((r) => r.request_id === res.headers.get('x-request-id'));
    assert.ok(rec, 'access-log record');
    assert.equal(rec.path, '/r/x?x_custom_key=REDACTED&page=2');
    assert.equal(rec.consumer, 'alice');
    assert.doesNotMatch(JSON.stringify(gw.accessLog), /alice-secret-key-123/);
    assert.match(up.requests.at(-1)!.url, /x_custom_key=alice-secret-key-123/);
  } finally {
    await gw.close();
    await up.close();
  }
});
