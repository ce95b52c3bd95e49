/** The JSON scanner's string length counting: characters, an escaped surrogate pair counting once. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { JsonScanner, NO_JSON_LIMITS } from './json-tokens.ts';

const scan = (json: string, stringLength: number) => {
  const s = new JsonScanner({ ...NO_JSON_LIMITS, stringLength });
  return s.write(Buffer.from(json)) ?? s.end();
};

test('an escaped surrogate pair is one character; a lone or separated surrogate half counts on its own', () => {
  assert.equal(scan('"\\ud83d\\ude00a"', 2), null, 'pair + a = 2 characters');
  assert.equal(scan('"\\ud83d\\ude00ab"', 2)?.kind, 'policy', 'pair + ab = 3 characters');
  // A character between the halves makes them two separate characters: 3 in all.
  assert.equal(scan('"\\ud800a\\udc00"', 2)?.kind, 'policy');
  assert.equal(scan('"\\ud800a\\udc00"', 3), null);
  assert.equal(scan('"\\ud800\\n\\udc00"', 2)?.kind, 'policy');
  assert.equal(scan('"é\\ud800é\\udc00"', 3)?.kind, 'policy', 'UTF-8 characters between the halves count too');
});
