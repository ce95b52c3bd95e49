import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { request } from 'undici';
import { startGateway, startUpstream, type TestGateway, type TestUpstream } from '../../../test/helpers/gateway.ts';
import { streamPost } from '../../../test/helpers/http.ts';
import { XmlScanner, type XmlLimits } from './scanner.ts';

const XML = { 'content-type': 'application/xml' };

/** UTF-16 big-endian (node has no 'utf16be' encoding). */
function utf16be(s: string): Buffer {
  const b = Buffer.from(s, 'utf16le');
  for (let i = 0; i + 1 < b.length; i += 2) [b[i], b[i + 1]] = [b[i + 1]!, b[i]!];
  return b;
}

const DEFAULT_LIMITS: XmlLimits = {
  namespaceAware: true, maxDepth: 50, maxChildren: 100, maxAttributes: 100, maxNamespaces: 20, buffer: 1048576, comment: 1024,
  localname: 1024, prefix: 1024, namespaceuri: 1024, attribute: 1048576, text: 1048576, pitarget: 1024, pidata: 1024,
};


/** The classic billion laughs: 10 levels of 10 references, 10^9 "lol"s once expanded. */
const BILLION_LAUGHS = [
  '<?xml version="1.0"?>',
  '<!DOCTYPE lolz [',
  ' <!ENTITY lol "lol">',
  ...Array.from({ length: 9 }, (_, i) => ` <!ENTITY lol${i + 1} "${`&lol${i === 0 ? '' : i};`.repeat(10)}">`),
  ']>',
  '<lolz>&lol9;</lolz>',
].join('\n');

const XXE = '<?xml version="1.0"?>\n<!DOCTYPE foo [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>\n<foo>&xxe;</foo>';

describe('xml-threat-protection', () => {
  let upstream: TestUpstream;
  let gw: TestGateway;

  before(async () => {
    upstream = await startUpstream();
    const route = (name: string, config: object) => ({ name, paths: [`/${name}`], plugins: [{ name: 'xml-threat-protection', config }] });
    gw = await startGateway({
      services: [
        {
          name: 'svc',
          url: upstream.url,
          routes: [
            route('default', {}),
            route('limits', {
              max_depth: 3,
              max_children: 3,
              max_attributes: 2,
              max_namespaces: 1,
              comment: 5,
              localname: 4,
              prefix: 2,
              namespaceuri: 10,
              attribute: 5,
              text: 5,
              pitarget: 3,
              pidata: 4,
              document: 1024,
            }),
            route('plain', { namespace_aware: false, max_attributes: 2, localname: 7 }),
            route('buffer', { buffer: 4096 }),
            route('types', { checked_content_types: ['application/xml', 'text/xml', 'application/*+xml'], allowed_content_types: ['application/json', 'text/*'] }),
          ],
        },
      ],
    });
  });

  after(async () => {
    await gw?.close();
    await upstream?.close();
  });

  async function send(path: string, body: string | Buffer | undefined, headers: Record<string, string> = XML, method = 'POST') {
    const before = upstream.requests.length;
    const r = await request(gw.url + path, { method, body, headers });
    const text = await r.body.text();
    const reached = upstream.requests.length > before;
    return { status: r.statusCode, headers: r.headers, text, reached, seen: reached ? upstream.requests.at(-1)! : null };
  }

  async function passes(path: string, body: string, headers: Record<string, string> = XML) {
    const r = await send(path, body, headers);
    assert.equal(r.status, 200, `${body}: ${r.text}`);
    assert.equal(r.seen!.body, body, 'the upstream got the body unchanged');
  }

  async function refused(path: string, body: string | Buffer, headers: Record<string, string> = XML) {
    const r = await send(path, body, headers);
    assert.equal(r.status, 400, `${body}: ${r.text}`);
    assert.equal(r.headers['content-type'], 'application/problem+json');
    assert.equal(JSON.parse(r.text).message, 'Bad Request');
    assert.equal(r.reached, false, 'the upstream never saw it');
  }

  test('a valid document passes to the upstream byte for byte', async () => {
    const doc = '<?xml version="1.0" encoding="UTF-8"?>\n<!-- order -->\n<o:order xmlns:o="urn:o" id="7">\n  <o:item qty="2">café &amp; thé</o:item>\n  <![CDATA[<raw>]]>\n  <?audit on?>\n</o:order>\n';
    const r = await send('/default', doc);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.seen!.body, doc);
    assert.equal(r.seen!.headers['content-length'], String(Buffer.byteLength(doc)));
  });

  test('a chunked valid document streams through unchanged (still chunked)', async () => {
    const parts = ['<a><b x="1">', 'text', '</b></a>'];
    const r = await streamPost(`${gw.url}/limits`, XML, (i) => Buffer.from(parts[i]!), 23);
    assert.equal(r.status, 200, r.text);
    const seen = upstream.requests.at(-1)!;
    assert.equal(seen.body, parts.join(''));
    assert.equal(seen.headers['content-length'], undefined);
  });

  const boundaries: [string, string, string][] = [
    ['max_depth', '<a><b><c/></b></a>', '<a><b><c><d/></c></b></a>'],
    ['max_children (adjacent text and CDATA are one)', '<a>1<![CDATA[2]]>3<b/><c/></a>', '<a>1<b/>2<c/></a>'],
    ['max_attributes', '<a x="1" y="2"/>', '<a x="1" y="2" z="3"/>'],
    ['max_namespaces', '<a xmlns="urn:a" x="1"/>', '<a xmlns="urn:a" xmlns:p="urn:p"/>'],
    ['localname (tags)', '<abcd/>', '<abcde/>'],
    ['localname (attributes)', '<a abcd="1"/>', '<a abcde="1"/>'],
    ['prefix', '<pq:a xmlns:pq="urn:a"/>', '<pqr:a xmlns:pqr="urn:a"/>'],
    ['namespaceuri', '<a xmlns="urn:123456"/>', '<a xmlns="urn:1234567"/>'],
    ['attribute', '<a x="12345"/>', '<a x="123456"/>'],
    ['text (text and CDATA combined)', '<a>123<![CDATA[45]]></a>', '<a>123<![CDATA[456]]></a>'],
    ['comment', '<a><!--12345--></a>', '<a><!--123456--></a>'],
    ['pitarget', '<a><?abc 1?></a>', '<a><?abcd 1?></a>'],
    ['pidata', '<a><?abc 1234?></a>', '<a><?abc 12345?></a>'],
  ];
  for (const [name, ok, over] of boundaries) {
    test(`${name}: at the limit passes, one past it is refused`, async () => {
      await passes('/limits', ok);
      await refused('/limits', over);
    });
  }

  test('document: a body at the limit passes, one byte more is refused (declared or chunked)', async () => {
    // Whitespace inside the tag: no text, no attribute, only size.
    const doc = (n: number) => `<a${' '.repeat(n - 4)}/>`;
    await passes('/limits', doc(1024));
    await refused('/limits', doc(1025));
    const chunks = (n: number) => (i: number) => Buffer.from(i === 0 ? '<a' : i === 1 ? ' '.repeat(n - 4) : '/>');
    const ok = await streamPost(`${gw.url}/limits`, XML, chunks(1024), 1024);
    assert.equal(ok.status, 200, ok.text);
    assert.equal(upstream.requests.at(-1)!.body, doc(1024));
    const over = await streamPost(`${gw.url}/limits`, XML, chunks(1025), 1025);
    assert.equal(over.status, 400);
  });

  test('namespace_aware false: prefixes and declarations are plain names and attributes', async () => {
    await passes('/plain', '<p:a xmlns:p="urn:p" x="1"/>');
    await refused('/plain', '<p:a xmlns:p="urn:p" x="1" y="2"/>');
    await refused('/plain', '<a xmlns:pq="urn:p"/>');
  });

  test('billion laughs is refused (the DTD), nothing reaches the upstream', async () => {
    await refused('/default', BILLION_LAUGHS);
  });

  test('XXE with an external entity (file:///etc/passwd) is refused', async () => {
    await refused('/default', XXE);
    const r = await send('/default', XXE);
    assert.ok(!r.text.includes('root:'), 'no file content leaks');
  });

  test('every DOCTYPE is refused, and an undeclared entity is malformed', async () => {
    await refused('/default', '<!DOCTYPE a><a/>');
    await refused('/default', '<!DOCTYPE a SYSTEM "http://127.0.0.1:1/evil.dtd"><a/>');
    await refused('/default', '<a>&xxe;</a>');
  });

  test('malformed documents are refused', async () => {
    for (const doc of ['<a>', '<a></b>', 'plain text', '<a/><b/>', '<a x="1" x="2"/>', '<p:a/>']) await refused('/default', doc);
  });

  test('encodings: UTF-8 by default, the charset parameter or a BOM otherwise; malformed bytes and a mismatched declaration are refused', async () => {
    const latin1 = Buffer.from('<?xml version="1.0" encoding="ISO-8859-1"?><a>caf\xe9</a>', 'latin1');
    const ok = await send('/default', latin1, { 'content-type': 'application/xml; charset=ISO-8859-1' });
    assert.equal(ok.status, 200, ok.text);
    await refused('/default', latin1);
    await refused('/default', Buffer.from('<a>caf\xe9</a>', 'latin1'));
    const utf16 = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('<a>thé</a>', 'utf16le')]);
    assert.equal((await send('/default', utf16)).status, 200);
  });

  test('UTF-16 with a byte-order mark matches encoding="UTF-16" (big- or little-endian), and a mismatch is still refused', async () => {
    const doc = '<?xml version="1.0" encoding="UTF-16"?><a>thé</a>';
    const le = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(doc, 'utf16le')]);
    const be = Buffer.concat([Buffer.from([0xfe, 0xff]), utf16be(doc)]);
    for (const [name, body] of [['LE', le], ['BE', be]] as const) {
      const r = await send('/default', body);
      assert.equal(r.status, 200, `${name}: ${r.text}`);
      assert.equal(r.seen!.body, body.toString('utf8'));
    }
    const declaredBe = Buffer.concat([Buffer.from([0xfe, 0xff]), utf16be(doc.replace('UTF-16', 'UTF-16BE'))]);
    assert.equal((await send('/default', declaredBe)).status, 200);
    await refused('/default', Buffer.concat([Buffer.from([0xfe, 0xff]), utf16be(doc.replace('UTF-16', 'UTF-16LE'))]));
    await refused('/default', Buffer.concat([Buffer.from([0xfe, 0xff]), utf16be(doc.replace('UTF-16', 'UTF-8'))]));
  });

  test('a byte-order mark split across the first chunks is still recognised', async () => {
    const body = Buffer.concat([Buffer.from([0xfe, 0xff]), utf16be('<?xml version="1.0" encoding="UTF-16"?><a>thé</a>')]);
    // One byte, a pause (so that the gateway reads it alone), then the rest.
    const r = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = http.request(`${gw.url}/default`, { method: 'POST', headers: { ...XML, 'transfer-encoding': 'chunked' }, agent: false }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode!, text }));
      });
      req.on('error', reject);
      req.write(body.subarray(0, 1));
      setTimeout(() => req.end(body.subarray(1)), 200);
    });
    assert.equal(r.status, 200, r.text);
    assert.equal(upstream.requests.at(-1)!.body, body.toString('utf8'));
  });

  test('scanner: a one-byte first chunk is buffered until the encoding can be told', () => {
    const body = Buffer.concat([Buffer.from([0xfe, 0xff]), utf16be('<?xml version="1.0" encoding="UTF-16"?><a>thé</a>')]);
    for (const cut of [1, 2, 3]) {
      const scanner = new XmlScanner(DEFAULT_LIMITS, null);
      assert.equal(scanner.write(body.subarray(0, cut)), null, `cut at ${cut}`);
      assert.equal(scanner.write(body.subarray(cut)), null, `cut at ${cut}`);
      assert.equal(scanner.end(), null, `cut at ${cut}`);
    }
    const one = new XmlScanner(DEFAULT_LIMITS, null);
    assert.equal(one.write(Buffer.from('<')), null);
    assert.equal(one.write(Buffer.from('a/>')), null);
    assert.equal(one.end(), null);
  });

  test('a 100 000-deep document is refused at max_depth, before the client has sent it all', async () => {
    const started = performance.now();
    const r = await streamPost(`${gw.url}/default`, XML, () => Buffer.from('<a>'.repeat(1000)), 1024 ** 3);
    assert.equal(r.status, 400, r.text);
    assert.ok(performance.now() - started < 10_000, 'refused quickly');
    assert.equal(r.finished, false, 'the answer came before the client finished sending');
    assert.ok(!upstream.requests.some((q) => q.body.startsWith('<a><a><a>')), 'the upstream never got it');
  });

  test('a huge chunked document is refused once past `document`, without the gateway reading it all', async () => {
    const chunk = Buffer.alloc(64 * 1024, ' ');
    const r = await streamPost(`${gw.url}/default`, XML, (i) => (i === 0 ? Buffer.from('<a>') : chunk), 1024 ** 3);
    assert.equal(r.status, 400, r.text);
    assert.equal(r.finished, false, 'the answer came before the client finished sending');
    assert.ok(r.produced < 64 * 1024 * 1024, `the client had produced only ${r.produced} bytes`);
  });

  test('buffer: a tag that grows past the unparsed buffer is refused before it ends', async () => {
    await passes('/buffer', `<a x="${'v'.repeat(4000)}"/>`);
    const r = await streamPost(`${gw.url}/buffer`, XML, (i) => Buffer.from(i === 0 ? '<a x="' : 'v'.repeat(64 * 1024)), 1024 ** 3);
    assert.equal(r.status, 400);
    assert.equal(r.finished, false);
  });

  test('content types: checked ones are validated, allowed ones pass unchecked, any other body is refused (Kong)', async () => {
    await passes('/types', '<a/>', { 'content-type': 'text/xml; charset=utf-8' });
    await refused('/types', '<!DOCTYPE a><a/>', { 'content-type': 'application/soap+xml' });
    await passes('/types', '<!DOCTYPE a><a/>', { 'content-type': 'text/plain' });
    await passes('/types', '{"a":1}', { 'content-type': 'application/json' });
    await refused('/types', '<a/>', { 'content-type': 'image/png' });
    await refused('/default', '<a/>', {});
  });

  test('requests without a body pass (Kong 3.12), whatever their Content-Type', async () => {
    const r = await send('/default', undefined, {}, 'GET');
    assert.equal(r.status, 200);
    const empty = await send('/default', '', { 'content-type': 'image/png' });
    assert.equal(empty.status, 200);
  });

  test('invalid configs are refused: allow_dtd true, a malformed content type, a zero limit', async () => {
    const withConfig = (config: object) => ({
      services: [{ name: 's', url: upstream.url, routes: [{ name: 'r', paths: ['/'], plugins: [{ name: 'xml-threat-protection', config }] }] }],
    });
    const names = (field: string) => (err: unknown) => {
      const e = err as { message?: string; errors?: unknown };
      const text = `${e.message ?? ''} ${JSON.stringify(e.errors ?? '')}`;
      assert.match(text, new RegExp(field), text);
      return true;
    };
    await assert.rejects(startGateway(withConfig({ allow_dtd: true })), names('allow_dtd'));
    await assert.rejects(startGateway(withConfig({ checked_content_types: ['xml'] })), names('checked_content_types'));
    await assert.rejects(startGateway(withConfig({ max_depth: 0 })), names('max_depth'));
    await assert.rejects(startGateway(withConfig({ bla_threshold: 1024 })), names('bla_threshold'));
  });
});
