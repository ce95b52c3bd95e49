/** JsonLine writes the same text as JSON.stringify and String() would, byte for byte. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { asciiJson, JsonLine, jsonOrNull, jsonStringBound, jsonText, msText } from './json-line.ts';

const written = (fill: (w: JsonLine) => void): string => {
  const w = new JsonLine(Buffer.alloc(4096));
  fill(w);
  return w.buf.toString('utf8', 0, w.pos);
};

test('milliseconds: the text of Math.round(ms * 1000) / 1000', () => {
  const values = [0, 0.0004, 0.0005, 0.001, 0.01, 0.1, 0.12, 0.123, 1, 1.5, 1.05, 1.005, 10.2, 999.999, 1234.5678, 2 ** 31 / 1000 - 1, 3e6, -0.5, -2];
  for (let i = 0; i < 5000; i++) values.push(i * 0.0137, i * 1.0001);
  for (const ms of values) {
    assert.equal(written((w) => w.ms(ms)), String(Math.round(ms * 1000) / 1000), `ms(${ms})`);
    assert.equal(msText(ms), String(Math.round(ms * 1000) / 1000), `msText(${ms})`);
  }
  assert.equal(msText(Number.NaN), 'null');
});

test('integers: the text of String(n)', () => {
  for (const n of [0, 7, 10, 99, 100, 12345, 2 ** 31 - 1, 2 ** 31, 2 ** 40, -1, 1.5]) assert.equal(written((w) => w.int(n)), String(n));
});

test('strings: the text of JSON.stringify, within the bound', () => {
  for (const s of ['', 'plain', 'quote"', 'back\\slash', 'tab\there', '\u0000\u001f', 'caf\u00e9', '\u{1f600}', 'lone \ud800 surrogate', 'a'.repeat(300), `${'t'.repeat(60)}"`, `${'t'.repeat(60)}\\`, `${'t'.repeat(60)}\n`, `${'t'.repeat(60)}\u00e9`, `${'t'.repeat(60)}\u007f`, `\ud83d${'t'.repeat(60)}`]) {
    const text = written((w) => w.str(s));
    assert.equal(text, JSON.stringify(s));
    assert.ok(Buffer.byteLength(text) <= jsonStringBound(s.length), `bound for ${JSON.stringify(s)}`);
  }
  assert.equal(written((w) => w.str(null)), 'null');
});

test('jsonText: ASCII text that JSON.parse reads back as the string; plain strings returned as they are; ascii() copies it', () => {
  const strings = ['', 'plain', 'quote"', 'back\\slash', 'tab\there', '\u0000\u001f', 'caf\u00e9', '\u{1f600}', 'lone \ud800 surrogate', 'a'.repeat(300), `${'t'.repeat(60)}"`, `${'t'.repeat(60)}\u00e9`, `${'t'.repeat(60)}\u007f`, `\ud83d${'t'.repeat(60)}`];
  for (const s of strings) {
    const text = jsonText(s);
    assert.match(text, /^[\x00-\x7f]*$/, `ASCII for ${JSON.stringify(s)}`);
    assert.equal(JSON.parse(`"${text}"`), s);
    assert.equal(written((w) => w.ascii(`"${text}"`)), /^[\x00-\x7f]*$/.test(s) ? JSON.stringify(s) : `"${text}"`);
  }
  assert.equal(jsonText('plain'), 'plain');
  assert.equal(jsonOrNull(null), 'null');
  assert.equal(jsonOrNull('a"b'), '"a\\"b"');
  assert.equal(asciiJson(JSON.stringify({ r: 'caf\u00e9' })), '{"r":"caf\\u00e9"}');
  assert.equal(jsonText('caf\u00e9 "x"'), 'caf\\u00e9 \\"x\\"');
});
