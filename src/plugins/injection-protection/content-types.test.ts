/**
 * The body location by content type: multipart/form-data (field names and
 * values, file names, text file contents; binary parts skipped; malformed
 * bodies), text/plain and bodies without a Content-Type, XML (values, not
 * markup), and binary types that stay uninspected.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent } from 'node:http';
import { gzipSync } from 'node:zlib';
import { startGateway, startUpstream, type TestGateway, type TestUpstream } from '../../../test/helpers/gateway.ts';
import { request } from '../../../test/helpers/http.ts';

const TYPES = ['sql', 'xss', 'path_traversal', 'command', 'ldap', 'nosql', 'ssti'];
const BOUNDARY = '----PalisadeFormBoundary7MA4YWxkTrZu0gW';
const MULTIPART = `multipart/form-data; boundary=${BOUNDARY}`;
const CANNOT = 'Request body cannot be inspected';
const PNG = Buffer.concat([Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex'), Buffer.from("1' OR '1'='1 <script>alert(1)</script> ../../../etc/passwd"), Buffer.alloc(16)]);

/** One part: its header lines (Content-Disposition first) and content. */
const part = (headers: string[], content: string | Buffer) => ({ headers, content });
const field = (name: string, value: string | Buffer, ...headers: string[]) => part([`Content-Disposition: form-data; name="${name}"`, ...headers], value);
const file = (name: string, filename: string, type: string, content: string | Buffer) =>
  part([`Content-Disposition: form-data; name="${name}"; filename="${filename}"`, `Content-Type: ${type}`], content);

/** A multipart body as browsers write it (CRLF line ends unless `eol` says otherwise). */
function multipart(parts: { headers: string[]; content: string | Buffer }[], boundary = BOUNDARY, eol = '\r\n'): Buffer {
  const chunks: Buffer[] = [];
  for (const p of parts) chunks.push(Buffer.from(`--${boundary}${eol}${p.headers.join(eol)}${eol}${eol}`), Buffer.from(p.content), Buffer.from(eol));
  chunks.push(Buffer.from(`--${boundary}--${eol}`));
  return Buffer.concat(chunks);
}

describe('injection-protection: body content types', () => {
  let upstream: TestUpstream;
  let gw: TestGateway;
  const agent = new Agent({ keepAlive: true, maxSockets: 4 });

  before(async () => {
    upstream = await startUpstream();
    const route = (name: string, config: object) => ({ name, paths: [`/${name}`], plugins: [{ name: 'injection-protection', config: { injection_types: TYPES, locations: ['body'], ...config } }] });
    gw = await startGateway({
      _format_version: '3.0',
      services: [{ name: 'svc', url: upstream.url, routes: [route('body', {}), route('allow', { uninspectable_body: 'allow' }), route('small', { max_body_size: 1024 })] }],
    });
  });

  after(async () => {
    agent.destroy();
    await gw?.close();
    await upstream?.close();
  });

  async function post(path: string, body: Buffer | string, headers: Record<string, string>) {
    const before = upstream.requests.length;
    const res = await request(gw.port, path, { method: 'POST', agent, headers, body });
    return Object.assign(res, { reached: upstream.requests.length > before, seen: upstream.requests.length > before ? upstream.requests.at(-1)! : null });
  }
  const postMultipart = (body: Buffer, path = '/body', contentType = MULTIPART) => post(path, body, { 'content-type': contentType });

  function assertRefused(res: Awaited<ReturnType<typeof post>>, type: string, what: string) {
    assert.equal(res.status, 400, `${what}: ${res.body}`);
    assert.equal(res.json().detail, `Request refused: ${type} injection in body.`, what);
    assert.equal(res.reached, false, what);
  }

  function assertPassed(res: Awaited<ReturnType<typeof post>>, body: Buffer | string, what: string) {
    assert.equal(res.status, 200, `${what}: ${res.body}`);
    assert.equal(res.seen!.body, Buffer.from(body).toString('utf8'), `${what}: the upstream gets the body as sent`);
  }

  test('multipart/form-data: field values, field names, file names and text file contents are inspected', async () => {
    const ok = field('title', 'Quarterly report');
    const cases: [string, Buffer, string][] = [
      ['SQL in a field value', multipart([ok, field('comment', "1' OR '1'='1")]), 'sql'],
      ['XSS in a field value', multipart([ok, field('bio', '<img src=x onerror=alert(1)>')]), 'xss'],
      ['a command in a field value', multipart([field('host', '127.0.0.1; cat /etc/passwd')]), 'command'],
      ['a NoSQL operator as a field name', multipart([field('user', 'admin'), field('password[$ne]', 'x')]), 'nosql'],
      ['traversal in a file name', multipart([ok, file('doc', '../../etc/passwd', 'text/plain', 'hello')]), 'path_traversal'],
      ['one "../" in a file name', multipart([file('avatar', '../avatar.png', 'image/png', PNG)]), 'path_traversal'],
      ['Windows traversal in a file name', multipart([file('doc', '..\\..\\windows\\win.ini', 'application/octet-stream', 'x')]), 'path_traversal'],
      ['SQL in a file name', multipart([file('doc', "x.txt'; DROP TABLE files; --", 'text/plain', 'hello')]), 'sql'],
      ['filename* (RFC 8187)', multipart([part(["Content-Disposition: form-data; name=\"doc\"; filename*=UTF-8''..%2F..%2F..%2Fetc%2Fpasswd"], 'x')]), 'path_traversal'],
      ['filename hidden behind filename*', multipart([part(['Content-Disposition: form-data; name="doc"; filename*=UTF-8\'\'safe.txt; filename="../../../etc/passwd"'], 'x')]), 'path_traversal'],
      ['a text/plain file', multipart([ok, file('notes', 'notes.txt', 'text/plain', "hello\n1' UNION SELECT password FROM users--\n")]), 'sql'],
      ['a JSON file', multipart([file('data', 'data.json', 'application/json', '{"user":{"$where":"sleep(100)"}}')]), 'nosql'],
      ['an XML file', multipart([file('data', 'data.xml', 'application/xml', '<r><q>&lt;script&gt;alert(1)&lt;/script&gt;</q></r>')]), 'xss'],
      ['an SVG file with script', multipart([file('logo', 'logo.svg', 'image/svg+xml', '<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>')]), 'xss'],
      ['a file without a Content-Type (text/plain)', multipart([part(['Content-Disposition: form-data; name="f"; filename="a"'], '{{7*7}}')]), 'ssti'],
      ['a field labelled octet-stream (PHP reads it as a field)', multipart([field('q', "1' OR '1'='1", 'Content-Type: application/octet-stream')]), 'sql'],
      ['a base64 field', multipart([field('q', Buffer.from("1' UNION SELECT password FROM users--").toString('base64'), 'Content-Transfer-Encoding: base64')]), 'sql'],
      ['a part without Content-Disposition', multipart([ok, part(['Content-Type: text/plain'], '<script>alert(1)</script>')]), 'xss'],
      ['SQL in a part header', multipart([field('q', 'ok', "X-Note: 1' OR '1'='1")]), 'sql'],
      ['LF line ends', multipart([ok, field('q', '<svg onload=alert(1)>')], BOUNDARY, '\n'), 'xss'],
      ['a field after a binary file', multipart([file('avatar', 'me.png', 'image/png', PNG), field('q', '../../../../etc/shadow')]), 'path_traversal'],
      ['a part smuggled inside a binary file with LF line ends', multipart([file('a', 'a.png', 'image/png', Buffer.concat([PNG, Buffer.from(`\n--${BOUNDARY}\nContent-Disposition: form-data; name="q"\n\n1' OR '1'='1\n`)]))]), 'sql'],
      ['a UTF-16 text file', multipart([file('t', 't.txt', 'text/plain', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('<script>alert(1)</script>', 'utf16le')]))]), 'xss'],
    ];
    for (const [what, body, type] of cases) assertRefused(await postMultipart(body), type, what);
    const quoted = await post('/body', multipart([field('q', "1' OR '1'='1")], 'simple'), { 'content-type': 'multipart/form-data; boundary="simple"' });
    assertRefused(quoted, 'sql', 'a quoted boundary');
    const gzipped = await post('/body', gzipSync(multipart([field('q', "1' OR '1'='1")])), { 'content-type': MULTIPART, 'content-encoding': 'gzip' });
    assertRefused(gzipped, 'sql', 'a gzip multipart body');
  });

  test('multipart/form-data: binary parts are skipped; ordinary forms and uploads pass unchanged', async () => {
    const bodies: [string, Buffer][] = [
      ['a PNG holding attack strings', multipart([field('title', "Jane O'Brien's avatar"), file('avatar', 'me.png', 'image/png', PNG)])],
      ['an octet-stream file', multipart([file('blob', 'dump.bin', 'application/octet-stream', PNG)])],
      ['a PDF', multipart([file('doc', 'My Résumé (final, 2024).pdf', 'application/pdf', Buffer.concat([Buffer.from('%PDF-1.7\n'), PNG]))])],
      ['a text file with NUL bytes (binary in disguise)', multipart([file('log', 'trace.txt', 'text/plain', PNG)])],
      ['ordinary text and JSON files', multipart([
        field('name', 'Jean-Luc D\'Artagnan'),
        field('email', 'jl@example.fr'),
        field('message', "Hi! I'd like to select a plan & drop the old one -- thanks.\r\nSee https://example.com/pricing?plan=pro&term=12"),
        file('notes', 'meeting notes.txt', 'text/plain', 'Agenda:\n1. Budget (Q3)\n2. "Hiring" plan\n3. AOB\n'),
        file('export', 'contacts.csv', 'text/csv', 'name,email,phone\n"O\'Brien, Jane",jane@example.com,+1 555 0100\n'),
        file('meta', 'meta.json', 'application/json', '{"tags":["a","b"],"size":12,"note":"it\'s fine"}'),
        file('empty', '', 'application/octet-stream', ''),
      ])],
    ];
    for (const [what, body] of bodies) assertPassed(await postMultipart(body), body, what);
  });

  test('a malformed multipart body cannot be inspected: 415 by default, proxied with uninspectable_body: allow', async () => {
    const good = multipart([field('q', 'hello')]);
    const cases: [string, Buffer, string][] = [
      ['no boundary parameter', good, 'multipart/form-data'],
      ['a boundary that is not in the body', good, 'multipart/form-data; boundary=other'],
      ['no close delimiter', good.subarray(0, good.length - BOUNDARY.length - 6), MULTIPART],
      ['a header line without a colon', Buffer.from(`--${BOUNDARY}\r\nContent-Disposition form-data\r\n\r\nx\r\n--${BOUNDARY}--\r\n`), MULTIPART],
      ['a delimiter followed by junk', Buffer.from(`--${BOUNDARY}junk\r\n\r\nx\r\n--${BOUNDARY}--\r\n`), MULTIPART],
    ];
    for (const [what, body, ct] of cases) {
      const res = await postMultipart(body, '/body', ct);
      assert.equal(res.status, 415, `${what}: ${res.body}`);
      assert.equal(res.json().message, CANNOT, what);
      assert.match(res.json().detail, /multipart/, what);
      assert.equal(res.reached, false, what);
      assertPassed(await postMultipart(body, '/allow', ct), body, `${what} (allow)`);
    }
    // The parts before the malformation are inspected even when uninspectable bodies are allowed.
    const cut = multipart([field('q', "1' OR '1'='1"), field('r', 'x')]);
    assertRefused(await postMultipart(cut.subarray(0, cut.length - 10), '/allow'), 'sql', 'an injection before the malformation');
  });

  test('text/plain, other text types and bodies without a Content-Type are inspected as text', async () => {
    const cases: [string, Record<string, string>, string, string][] = [
      ['text/plain', { 'content-type': 'text/plain' }, "1' OR '1'='1", 'sql'],
      ['text/plain; charset', { 'content-type': 'text/plain; charset=utf-8' }, '<script>alert(1)</script>', 'xss'],
      ['text/html', { 'content-type': 'text/html' }, '<p>hi</p><img src=x onerror=alert(1)>', 'xss'],
      ['text/csv', { 'content-type': 'text/csv' }, 'name,cmd\nx,"; cat /etc/passwd"', 'command'],
      ['an unknown type', { 'content-type': 'application/x-custom' }, '{{7*7}}', 'ssti'],
      ['no Content-Type', {}, '../../../../etc/passwd', 'path_traversal'],
      ['no Content-Type, JSON', {}, '{"user":"admin","password":{"$ne":null}}', 'nosql'],
      ['no Content-Type, a form', {}, 'user=admin&q=%3Cscript%3Ealert(1)%3C%2Fscript%3E', 'xss'],
      ['text/plain, a form', { 'content-type': 'text/plain' }, 'id=1%27%20UNION%20SELECT%20password%20FROM%20users--', 'sql'],
      ['text/plain, declared XML', { 'content-type': 'text/plain' }, '<?xml version="1.0"?><body onload="alert(1)">x</body>', 'xss'],
    ];
    for (const [what, headers, body, type] of cases) assertRefused(await post('/body', body, headers), type, what);
    for (const body of ["Hello! It's me -- Jane O'Brien. Call me at 555-0100; I'm free after 5 (or e-mail).", 'name=Jane&city=Z%C3%BCrich&note=see+you', '{"a":"select the drop-down","b":[1,2,3]}']) {
      assertPassed(await post('/body', body, { 'content-type': 'text/plain' }), body, body);
      assertPassed(await post('/body', body, {}), body, `${body} (no Content-Type)`);
    }
    // An unknown type that is not text (NUL bytes) is taken for binary.
    assertPassed(await post('/body', PNG, { 'content-type': 'application/x-custom' }), PNG, 'an unknown binary type');
    assert.equal((await post('/body', PNG, {})).status, 200, 'no Content-Type, binary');
    // A declared text type that cannot be read follows uninspectable_body.
    assert.equal((await post('/body', PNG, { 'content-type': 'text/plain' })).status, 415);
  });

  test('XML: text, CDATA and attribute values are inspected, not the markup', async () => {
    const cases: [string, string, string, string][] = [
      ['element text', 'application/xml', "<?xml version=\"1.0\"?><user><name>1' OR '1'='1</name></user>", 'sql'],
      ['escaped markup in text', 'text/xml', '<r><bio>&lt;script&gt;alert(1)&lt;/script&gt;</bio></r>', 'xss'],
      ['CDATA', 'application/xml', '<r><bio><![CDATA[<img src=x onerror=alert(1)>]]></bio></r>', 'xss'],
      ['an attribute value', 'application/xml', '<r><file path="../../../etc/passwd"/></r>', 'path_traversal'],
      ['a SOAP parameter', 'application/soap+xml', '<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body><m:Get xmlns:m="urn:x"><m:Host>127.0.0.1 &amp;&amp; whoami</m:Host></m:Get></soap:Body></soap:Envelope>', 'command'],
      ['text split by a comment', 'application/xml', "<r><q>1' OR <!-- x -->'1'='1</q></r>", 'sql'],
      ['text split by a child element', 'application/xml', "<r><q>1' UNION <b/>SELECT password FROM users--</q></r>", 'sql'],
      ['an SVG event handler', 'image/svg+xml', '<svg xmlns="http://www.w3.org/2000/svg"><rect width="10" height="10" onclick="alert(1)"/></svg>', 'xss'],
      ['an SVG script', 'image/svg+xml', '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', 'xss'],
      ['XHTML inside another document', 'application/xml', '<r><div xmlns="http://www.w3.org/1999/xhtml"><img src="x.png" onerror="alert(1)"/></div></r>', 'xss'],
      ['a DOCTYPE file URL', 'application/xml', '<!DOCTYPE r [<!ENTITY % p SYSTEM "file:///etc/passwd">]><r/>', 'path_traversal'],
    ];
    for (const [what, ct, body, type] of cases) assertRefused(await post('/body', body, { 'content-type': ct }), type, what);
    // Windows-1252 declared in the document: decoded as such.
    const latin = Buffer.from("<?xml version=\"1.0\" encoding=\"windows-1252\"?><r><city>Z\u00fcrich</city><q>1' OR '1'='1</q></r>", 'latin1');
    assertRefused(await post('/body', latin, { 'content-type': 'application/xml' }), 'sql', 'windows-1252');
    const benign = '<r xmlns:x="urn:x" x:onboarding="true"><online>yes</online><script>plain data, not a page</script><b onclick="not-html"/></r>';
    assertPassed(await post('/body', benign, { 'content-type': 'application/xml' }), benign, 'markup outside SVG/XHTML');
  });

  test('XML that is not well-formed (or uses a DOCTYPE entity, or an encoding that cannot be read) cannot be inspected', async () => {
    const cases: [string, string | Buffer][] = [
      ['an unclosed element', '<r><q>x</r>'],
      ['an external entity (XXE)', '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "http://internal.example/secret">]><r>&xxe;</r>'],
      ['text outside the root', 'x<r/>'],
      ['EBCDIC', '<?xml version="1.0" encoding="IBM037"?><r/>'],
    ];
    for (const [what, body] of cases) {
      const res = await post('/body', body, { 'content-type': 'application/xml' });
      assert.equal(res.status, 415, `${what}: ${res.body}`);
      assert.equal(res.json().message, CANNOT, what);
      assert.equal(res.reached, false, what);
      assertPassed(await post('/allow', body, { 'content-type': 'application/xml' }), body, `${what} (allow)`);
    }
  });

  test('binary types are not read: passed uninspected, whatever their size', async () => {
    const attack = Buffer.from("1' OR '1'='1 <script>alert(1)</script>");
    for (const ct of ['image/png', 'application/octet-stream', 'application/pdf', 'application/zip', 'video/mp4', 'application/vnd.openxmlformats-officedocument.wordprocessingml.document']) {
      assertPassed(await post('/body', attack, { 'content-type': ct }), attack, ct);
    }
    const big = Buffer.alloc(64 * 1024, 0x41);
    assertPassed(await post('/small', big, { 'content-type': 'application/octet-stream' }), big, 'larger than max_body_size');
    assert.equal((await post('/small', big, { 'content-type': 'text/plain' })).status, 413, 'a text body larger than max_body_size');
  });
});
