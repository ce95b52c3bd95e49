/**
 * The log record written as bytes (what http-log sends, and json() returns)
 * is exactly JSON.stringify of the record object, characters outside ASCII
 * written as \u escapes (the same JSON), for every shape of input:
 * repeated and numeric headers, escapes and non-ASCII text, secrets, a query,
 * TLS, a consumer and credential, decisions, no upstream call.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { asciiEscaped as ascii } from '../../test/helpers/json.ts';
import { LogArena } from './log-arena.ts';
import { logSerializer, redactQuery } from './log-record.ts';
import type { PdkContext } from './index.ts';

function context(over: { query?: string; reqHeaders?: Record<string, string | string[]>; resHeaders?: Record<string, string | string[] | number>; tls?: boolean; upstream?: boolean; consumer?: boolean }): PdkContext {
  const reqHeaders = over.reqHeaders ?? {};
  const resHeaders = over.resHeaders ?? {};
  return {
    requestId: 'req-1\u00e9',
    request: {
      method: 'POST',
      scheme: over.tls ? 'https' : 'http',
      host: 'api.example',
      port: 8443,
      path: '/orders/"quoted"\\',
      rawQuery: over.query ?? '',
      headers: reqHeaders,
      clientIp: '203.0.113.9',
      tls: over.tls ? { servername: 'api.example', authorized: false, authorizationError: 'SELF_SIGNED', peerCertificate: () => ({}) } : null,
    },
    response: { status: 201, source: over.upstream === false ? 'gateway' : 'upstream', getHeaders: () => resHeaders },
    timings: { startedAt: 1764000000123.456, total: 12.3456, upstream: over.upstream === false ? 0 : 10.0004, upstreamHeaders: 9.5, gateway: 2.3452, upstreamStart: 1 },
    upstreamTarget: over.upstream === false ? null : '[::1]:8080',
    upstreamUri: over.upstream === false ? null : `/v1/orders${over.query ? `?${over.query}` : ''}`,
    bytesReceived: 512,
    bytesSent: 2048,
    tries: over.upstream === false ? 0 : 2,
    errorCode: over.upstream === false ? 'NO_ROUTE' : null,
    decisions: over.consumer ? [{ plugin: 'key-auth', outcome: 'authenticated', reason: 'key "k1"', status: 0 }] : [],
    configVersion: 'v-7',
    route: { id: 'r1', name: 'orders', tags: ['a', 'b\n'] },
    service: { id: 's1', name: null, tags: [] },
    consumer: over.consumer ? { id: 'c1', username: 'ann\u{1f600}', custom_id: null, tags: ['gold'] } : null,
    credential: over.consumer ? { id: 'cred-1' } : null,
  } as unknown as PdkContext;
}


const cases = {
  minimal: context({}),
  everything: context({
    query: 'a=1&a=2&flag&token=s3cret&name=J%C3%B6rg&__proto__=x',
    reqHeaders: { accept: 'application/json', 'x-many': ['one', 'two "2"'], authorization: 'Bearer abc', 'x-api-key': 'k', 'user-agent': `${'long-agent/'.repeat(10)}\u00e9`, 'x-long': 'z'.repeat(200) },
    resHeaders: { 'content-length': 17, 'set-cookie': ['a=1', 'b=2'], 'x-text': 'tab\there' },
    tls: true,
    consumer: true,
  }),
  'tokens in headers and the query': context({
    query: 't=eyJhbGciOiJIUzI1NiJ9.e30.sig&note=eyJust&b=Bearer%20eyJhbGciOiJIUzI1NiJ9.e30.s&p=DPoP+eyJ0eXAiOiJkcG9wK2p3dCJ9.e30.s',
    reqHeaders: { 'x-jwt-assertion': 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln', 'x-upstream-auth': 'bearer  eyJhbGciOiJub25lIn0.e30.', 'x-pair': ['eyJ0eXAiOiJKV1QifQ.e30.x', 'plain'], 'x-note': 'eyJust a word.', 'x-bearer': 'Bearer opaque-token', 'x-forwarded-authorization': 'DPoP eyJ0eXAiOiJkcG9wK2p3dCJ9.e30.s' },
    resHeaders: { 'x-issued': 'eyJhbGciOiJIUzI1NiJ9.e30.sig' },
  }),
  'no upstream call': context({ upstream: false, reqHeaders: { 'x-control': '\u0001\u001f' } }),
  'response header names not lower-case': context({ resHeaders: { 'x-first': 'a'.repeat(300), 'x-second': 'b'.repeat(300), 'X-Mixed': 'yes', 'x-mixed': 'no' } }),
};

for (const [name, ctx] of Object.entries(cases)) {
  test(`the record as bytes is JSON.stringify of the record (in ASCII): ${name}`, () => {
    const serialize = logSerializer({ redact: ['x-text'] });
    const expected = ascii(JSON.stringify(serialize(ctx)));
    assert.equal(serialize.json(ctx), expected);
    // As http-log queues it: copied into a log arena.
    const arena = new LogArena();
    assert.equal(Buffer.concat(LogArena.parts([arena.add(serialize.json(ctx))], null, null)).toString('utf8'), expected);
  });
}

test('with redact paths, the bytes are those of the redacted record', () => {
  const serialize = logSerializer({ redact: ['consumer.username', 'request.headers.accept'] });
  const ctx = cases.everything;
  const record = serialize(ctx);
  assert.equal(record.consumer?.username, 'REDACTED');
  assert.equal(record.request.headers.accept, 'REDACTED');
  // What http-log sends is that record too.
  const arena = new LogArena();
  assert.equal(Buffer.concat(LogArena.parts([arena.add(serialize.json(ctx))], null, null)).toString('utf8'), ascii(JSON.stringify(record)));
  assert.equal(serialize.json(ctx), ascii(JSON.stringify(record)));
});

test('written into a log arena wherever a chunk ends, the record is whole (also with mixed-case header names)', () => {
  const serialize = logSerializer({ redact: ['x-text'] });
  const arena = new LogArena();
  /** Fill the current chunk so that `room` bytes are left in it. */
  const leave = (room: number) => {
    for (;;) {
      const probe = arena.add('""');
      const left = probe.chunk.buf.length - probe.end;
      if (left >= room + 3) {
        arena.add(`"${'f'.repeat(left - room - 3)}"`); // and its comma: `room` bytes are left
        return;
      }
      arena.add(`"${'f'.repeat(left)}"`); // moves on to a new chunk
    }
  };
  for (const [name, ctx] of Object.entries(cases)) {
    const expected = ascii(JSON.stringify(serialize(ctx)));
    for (let room = 0; room < expected.length + 16; room += 11) {
      leave(room);
      const entry = arena.add(serialize.json(ctx));
      assert.equal(Buffer.concat(LogArena.parts([entry], null, null)).toString('utf8'), expected, `${name}, ${room} bytes left in the chunk`);
    }
  }
});

test('a JSON Web Token is redacted whatever its header or query parameter is called; look-alikes without a dot are kept', () => {
  const record = logSerializer()(cases['tokens in headers and the query']);
  assert.deepEqual({ ...record.request.headers }, {
    'x-jwt-assertion': 'REDACTED',
    'x-upstream-auth': 'REDACTED',
    'x-pair': ['REDACTED', 'plain'],
    'x-note': 'eyJust a word.',
    'x-bearer': 'Bearer opaque-token',
    'x-forwarded-authorization': 'REDACTED',
  });
  assert.deepEqual({ ...record.response.headers }, { 'x-issued': 'REDACTED' });
  assert.deepEqual({ ...record.request.querystring }, { t: 'REDACTED', note: 'eyJust', b: 'REDACTED', p: 'REDACTED' });
  assert.equal(record.request.uri, '/orders/"quoted"\\?t=REDACTED&note=eyJust&b=REDACTED&p=REDACTED');
  assert.equal(record.upstream_uri, '/v1/orders?t=REDACTED&note=eyJust&b=REDACTED&p=REDACTED');
  assert.doesNotMatch(logSerializer().json(cases['tokens in headers and the query']), /eyJhbGci|eyJ0eXAi/);
  assert.equal(redactQuery('a=eyJhbGciOiJIUzI1NiJ9.e30.s&b=1'), 'a=REDACTED&b=1', 'the access log redacts the same');
});
