/** Lines built with jsonText()/msText() are the JSON JSON.stringify writes (in ASCII). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { asciiJson, jsonOrNull, jsonText, msText } from './json-line.ts';

test('msText: the text of Math.round(ms * 1000) / 1000', () => {
  const values = [0, 0.0004, 0.0005, 0.001, 0.01, 0.1, 0.12, 0.123, 1, 1.5, 1.05, 1.005, 10.2, 999.999, 1234.5678, 2 ** 31 / 1000 - 1, 3e6, -0.5, -2];
  for (let i = 0; i < 5000; i++) values.push(i * 0.0137, i * 1.0001);
  for (const ms of values) assert.equal(msText(ms), String(Math.round(ms * 1000) / 1000), `msText(${ms})`);
  assert.equal(msText(Number.NaN), 'null');
});

test('jsonText: ASCII text that JSON.parse reads back as the string, JSON.stringify\'s for ASCII strings; plain strings returned as they are', () => {
  const strings = ['', 'plain', 'quote"', 'back\\slash', 'tab\there', '\u0000\u001f', 'del\u007f', 'caf\u00e9', '\u{1f600}', 'lone \ud800 surrogate', 'a'.repeat(300), `${'t'.repeat(60)}"`, `${'t'.repeat(60)}\u00e9`, `\ud83d${'t'.repeat(60)}`];
  for (const s of strings) {
    const text = jsonText(s);
    assert.match(text, /^[\x00-\x7f]*$/, `ASCII for ${JSON.stringify(s)}`);
    assert.equal(JSON.parse(`"${text}"`), s);
    if (/^[\x00-\x7f]*$/.test(s)) assert.equal(`"${text}"`, JSON.stringify(s));
  }
  const plain = `plain-${Date.now()}`;
  assert.equal(jsonText(plain), plain);
  assert.equal(jsonText('caf\u00e9 "x"'), 'caf\\u00e9 \\"x\\"');
  assert.equal(jsonOrNull(null), 'null');
  assert.equal(jsonOrNull('a"b'), '"a\\"b"');
  assert.equal(asciiJson(JSON.stringify({ r: 'caf\u00e9' })), '{"r":"caf\\u00e9"}');
});
