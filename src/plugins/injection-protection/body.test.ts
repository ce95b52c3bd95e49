/**
 * The body location beyond plain UTF-8 JSON: other encodings (UTF-16 with or
 * without a BOM, a charset parameter), bodies the plugin cannot read
 * (UTF-32, NUL bytes, an unknown charset or Content-Encoding), compressed
 * bodies, duplicate JSON keys, and what a megabyte of worst-case input costs.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent } from 'node:http';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { startGateway, startUpstream, type TestGateway, type TestUpstream } from '../../../test/helpers/gateway.ts';
import { request } from '../../../test/helpers/http.ts';

const TYPES = ['sql', 'xss', 'path_traversal', 'command', 'ldap', 'nosql', 'ssti'];
const ATTACKS: [string, string][] = [
  ["1' UNION SELECT password FROM users--", 'sql'],
  ["1' OR '1'='1", 'sql'],
  ['<img src=x onerror=alert(1)>', 'xss'],
];
const CANNOT = 'Request body cannot be inspected';

/** UTF-16 big-endian (node has no 'utf16be' encoding). */
function utf16be(s: string): Buffer {
  const b = Buffer.from(s, 'utf16le');
  for (let i = 0; i + 1 < b.length; i += 2) [b[i], b[i + 1]] = [b[i + 1]!, b[i]!];
  return b;
}

function utf32(s: string, le: boolean): Buffer {
  const cps = [...s].map((c) => c.codePointAt(0)!);
  const b = Buffer.alloc(cps.length * 4);
  cps.forEach((cp, i) => (le ? b.writeUInt32LE(cp, i * 4) : b.writeUInt32BE(cp, i * 4)));
  return b;
}

const BOM_LE = Buffer.from([0xff, 0xfe]);
const BOM_BE = Buffer.from([0xfe, 0xff]);

describe('injection-protection: request bodies', () => {
  let upstream: TestUpstream;
  let gw: TestGateway;
  const agent = new Agent({ keepAlive: true, maxSockets: 4 });

  before(async () => {
    upstream = await startUpstream();
    const route = (name: string, config: object) => ({ name, paths: [`/${name}`], plugins: [{ name: 'injection-protection', config: { injection_types: TYPES, locations: ['body'], ...config } }] });
    gw = await startGateway({
      _format_version: '3.0',
      services: [
        {
          name: 'svc',
          url: upstream.url,
          routes: [
            route('body', {}),
            route('allow', { uninspectable_body: 'allow' }),
            route('log', { enforcement_mode: 'log_only' }),
            // Inspected, then answered by the gateway itself: what the CPU test measures is the gateway's work, not an upstream's.
            {
              name: 'big',
              paths: ['/big'],
              plugins: [
                { name: 'injection-protection', config: { injection_types: TYPES, locations: ['body'], max_body_size: 2 * 1024 * 1024 } },
                { name: 'request-termination', config: { status_code: 200, message: 'inspected' } },
              ],
            },
          ],
        },
      ],
    });
  });

  after(async () => {
    agent.destroy();
    await gw?.close();
    await upstream?.close();
  });

  async function post(path: string, body: Buffer | string, headers: Record<string, string> = { 'content-type': 'application/json' }) {
    const before = upstream.requests.length;
    const res = await request(gw.port, path, { method: 'POST', agent, headers, body });
    return Object.assign(res, { reached: upstream.requests.length > before, seen: upstream.requests.length > before ? upstream.requests.at(-1)! : null });
  }

  function assertRefused(res: Awaited<ReturnType<typeof post>>, type: string, what: string) {
    assert.equal(res.status, 400, `${what}: ${res.body}`);
    assert.equal(res.json().detail, `Request refused: ${type} injection in body.`, what);
    assert.equal(res.reached, false, what);
  }

  test('UTF-16 JSON (LE and BE; BOM, RFC 4627 NUL pattern or charset parameter) is decoded and inspected', async () => {
    for (const [payload, type] of ATTACKS) {
      const doc = JSON.stringify({ id: payload });
      const cases: [string, Buffer, string][] = [
        ['LE + BOM', Buffer.concat([BOM_LE, Buffer.from(doc, 'utf16le')]), 'application/json'],
        ['BE + BOM', Buffer.concat([BOM_BE, utf16be(doc)]), 'application/json'],
        ['LE, no BOM', Buffer.from(doc, 'utf16le'), 'application/json'],
        ['BE, no BOM', utf16be(doc), 'application/json'],
        ['BE, charset=utf-16be', utf16be(doc), 'application/json; charset=utf-16be'],
        ['LE + BOM, charset=UTF-16', Buffer.concat([BOM_LE, Buffer.from(doc, 'utf16le')]), 'application/json; charset="UTF-16"'],
        ['form, LE, charset=utf-16le', Buffer.from(`id=${encodeURIComponent(payload)}`, 'utf16le'), 'application/x-www-form-urlencoded; charset=utf-16le'],
      ];
      for (const [name, body, ct] of cases) assertRefused(await post('/body', body, { 'content-type': ct }), type, `${name}: ${payload}`);
    }
  });

  test('a benign UTF-16 or Latin-1 body passes, unchanged', async () => {
    const doc = JSON.stringify({ name: "Jane O'Brien", city: 'Zürich', note: 'ok' });
    for (const body of [Buffer.concat([BOM_LE, Buffer.from(doc, 'utf16le')]), utf16be(doc)]) {
      const res = await post('/body', body);
      assert.equal(res.status, 200, res.body);
      assert.equal(res.seen!.body, body.toString('utf8'), 'the upstream gets the bytes as sent');
    }
    const latin1 = await post('/body', Buffer.from(doc, 'latin1'), { 'content-type': 'application/json; charset=ISO-8859-1' });
    assert.equal(latin1.status, 200, latin1.body);
    const attack = await post('/body', Buffer.from(JSON.stringify({ q: "Zürich' OR '1'='1" }), 'latin1'), { 'content-type': 'application/json; charset=iso-8859-1' });
    assertRefused(attack, 'sql', 'latin-1');
  });

  test('UTF-32, NUL bytes and an unknown charset cannot be inspected: 415 by default, proxied with uninspectable_body: allow', async () => {
    const doc = JSON.stringify({ q: "1' OR '1'='1" });
    const cases: [string, Buffer, string][] = [
      ['UTF-32LE + BOM', Buffer.concat([Buffer.from([0xff, 0xfe, 0, 0]), utf32(doc, true)]), 'application/json'],
      ['UTF-32BE, no BOM', utf32(doc, false), 'application/json'],
      ['UTF-32LE, no BOM', utf32(doc, true), 'application/json'],
      ['charset=utf-32', utf32(doc, false), 'application/json; charset=utf-32'],
      ['UTF-8 with a NUL byte', Buffer.from('{"q":"1\u0000\' OR \'1\'=\'1"}'), 'application/json'],
      ['a form with a NUL byte', Buffer.from("q=1\u0000' OR '1'='1"), 'application/x-www-form-urlencoded'],
      ['charset=utf-7', Buffer.from('{"q":"+ACc- OR +ACc-1+ACc-=+ACc-1"}'), 'application/json; charset=utf-7'],
      ['charset=x-unknown', Buffer.from(doc), 'application/json; charset=x-unknown'],
    ];
    for (const [name, body, ct] of cases) {
      const res = await post('/body', body, { 'content-type': ct });
      assert.equal(res.status, 415, `${name}: ${res.body}`);
      assert.equal(res.json().message, CANNOT, name);
      assert.match(res.json().detail, /cannot be inspected: /, name);
      assert.equal(res.reached, false, name);
      const allowed = await post('/allow', body, { 'content-type': ct });
      assert.equal(allowed.status, 200, `${name} (allow): ${allowed.body}`);
      assert.equal(allowed.seen!.body, body.toString('utf8'), name);
    }
    // log_only does not change what happens to a body that cannot be read (as for oversized_body).
    assert.equal((await post('/log', utf32(doc, true))).status, 415);
  });

  test('duplicate JSON keys: every value is inspected, not only the one JSON.parse keeps', async () => {
    assertRefused(await post('/body', `{"q":"1' OR '1'='1","q":"ok"}`), 'sql', 'first of two');
    assertRefused(await post('/body', `{"a":{"q":"<svg onload=alert(1)>","q":"x"},"b":1}`), 'xss', 'nested');
    assertRefused(await post('/body', `{"$where":"1","$where":"ok"}`), 'nosql', 'duplicate operator key');
    assertRefused(await post('/body', `{"q":"ok","q":"ok","q":"../../../etc/passwd"}`), 'path_traversal', 'last of three');
    const benign = await post('/body', '{"q":"ok","q":"fine","r":["a","a"]}');
    assert.equal(benign.status, 200, benign.body);
  });

  test('compressed bodies (gzip, deflate, br) are decompressed and inspected; the upstream gets them as sent', async () => {
    const attack = Buffer.from(JSON.stringify({ q: "1' UNION SELECT password FROM users--" }));
    const benign = Buffer.from(JSON.stringify({ q: "Jane O'Brien" }));
    const codings: [string, (b: Buffer) => Buffer][] = [
      ['gzip', gzipSync],
      ['x-gzip', gzipSync],
      ['deflate', deflateSync],
      ['br', brotliCompressSync],
      ['gzip, br', (b) => brotliCompressSync(gzipSync(b))],
    ];
    for (const [coding, compress] of codings) {
      assertRefused(await post('/body', compress(attack), { 'content-type': 'application/json', 'content-encoding': coding }), 'sql', coding);
      const ok = await post('/body', compress(benign), { 'content-type': 'application/json', 'content-encoding': coding });
      assert.equal(ok.status, 200, `${coding}: ${ok.body}`);
      assert.equal(ok.seen!.headers['content-encoding'], coding);
      assert.equal(ok.seen!.body, compress(benign).toString('utf8'));
    }
    const form = await post('/body', gzipSync(Buffer.from('q=%3Cscript%3Ealert(1)%3C%2Fscript%3E')), {
      'content-type': 'application/x-www-form-urlencoded',
      'content-encoding': 'gzip',
    });
    assertRefused(form, 'xss', 'gzip form');
  });

  test('an unknown or corrupt Content-Encoding cannot be inspected; a body that inflates past max_body_size is too large', async () => {
    for (const [coding, body] of [['compress', Buffer.from('x')], ['gzip', Buffer.from('not gzip at all')]] as const) {
      const res = await post('/body', body, { 'content-type': 'application/json', 'content-encoding': coding });
      assert.equal(res.status, 415, `${coding}: ${res.body}`);
      assert.equal(res.json().message, CANNOT);
      assert.equal((await post('/allow', body, { 'content-type': 'application/json', 'content-encoding': coding })).status, 200);
    }
    // 2 MB of spaces gzip to ~2 KB: inflating stops at max_body_size (128 KiB by default).
    const bomb = gzipSync(Buffer.from(`{"a":"${' '.repeat(2 * 1024 * 1024)}"}`));
    assert.ok(bomb.length < 8192);
    const res = await post('/body', bomb, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
    assert.equal(res.status, 413);
    assert.equal(res.json().message, 'Request body too large to inspect');
  });

  test('max_body_size defaults to 128 KiB', async () => {
    const at = `{"a":"${'x'.repeat(128 * 1024 - 8)}"}`;
    assert.equal(Buffer.byteLength(at), 128 * 1024);
    assert.equal((await post('/body', at)).status, 200);
    const over = await post('/body', `{"a":"${'x'.repeat(128 * 1024 - 7)}"}`);
    assert.equal(over.status, 413);
  });

  // Not a benchmark (speed is measured in bench/): the bound only catches super-linear blowups (catastrophic
  // backtracking takes seconds to hours on these inputs); about 200 ms is typical, CI machines under load need slack.
  test('CPU: a megabyte of worst-case input stays linear (process CPU time, not wall time)', async () => {
    const MB = 1024 * 1024;
    const fill = (unit: string) => JSON.stringify({ a: unit.repeat(Math.floor((MB - 16) / unit.length)) });
    const raw = (unit: string) => unit.repeat(Math.floor((MB - 256) / unit.length));
    const part = (i: number, value: string, file = '') =>
      `--b0\r\nContent-Disposition: form-data; name="f${i}"${file}\r\n\r\n${value}\r\n`;
    const multipart = (parts: string[]) => [`${parts.join('')}--b0--\r\n`, 'multipart/form-data; boundary=b0'] as const;
    const JSON_TYPE = 'application/json';
    const bodies: [string, string, string?][] = [
      ['{{', fill('{{')],
      ['[[', fill('[[')],
      ['<%', fill('<%')],
      ['${', fill('${')],
      ['{{a}}', fill('{{a}}')],
      ['<a ', fill('<a ')],
      ['a=', fill('a=')],
      ['&#x3c;', fill('&#x3c;')],
      ["' ", fill("' ")],
      ['many short strings', JSON.stringify(Array.from({ length: 90_000 }, (_, i) => `v${i % 1000}`))],
      ['many keys', JSON.stringify(Object.fromEntries(Array.from({ length: 60_000 }, (_, i) => [`k${i}`, i])))],
      ['multipart: 12,000 fields', ...multipart(Array.from({ length: 12_000 }, (_, i) => part(i, `value ${i % 500} of "the form"`)))],
      ['multipart: a text file of <a ', ...multipart([part(0, raw('<a '), '; filename="a.txt"\r\nContent-Type: text/plain')])],
      ['multipart: a binary file', ...multipart([part(0, raw('\u0000<a '), '; filename="a.bin"\r\nContent-Type: application/octet-stream')])],
      ['text/plain <a ', raw('<a '), 'text/plain'],
      ["text/plain ' ", raw("' "), 'text/plain'],
      ['no type, a form of a=', raw('a='), ''],
      ['XML: 20,000 elements', `<r>${Array.from({ length: 20_000 }, (_, i) => `<i n="${i % 700}">v${i % 900} &amp; more</i>`).join('')}</r>`, 'application/xml'],
      ['XML: a text of &lt;a ', `<r>${raw('&lt;a ')}</r>`, 'application/xml'],
    ];
    const costs: string[] = [];
    for (const [name, body, type = JSON_TYPE] of bodies) {
      // The better of two runs: the first may pay for compiling code paths the corpus tests never took.
      let ms = Infinity;
      for (let run = 0; run < 2; run++) {
        const started = process.cpuUsage();
        const res = await post('/big', body, type === '' ? {} : { 'content-type': type });
        const used = process.cpuUsage(started);
        ms = Math.min(ms, (used.user + used.system) / 1000);
        assert.equal(res.status, 200, `${name}: ${res.body}`);
        assert.equal(res.json().message, 'inspected', name);
      }
      costs.push(`${name} ${ms.toFixed(0)} ms`);
      assert.ok(ms < 2000, `${name}: ${ms.toFixed(0)} ms of CPU for ${body.length} bytes`);
    }
    console.log(`# CPU per 1 MB body: ${costs.join(', ')}`);
  });
});
