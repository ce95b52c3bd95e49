/** LogArena: entries written as bytes into recycled chunks, batches sent as their ranges. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fragment, jsonText } from './json-line.ts';
import { LogArena, type ByteEntry } from './log-arena.ts';

const text = (parts: Buffer[]) => Buffer.concat(parts).toString('utf8');

function write(arena: LogArena, value: string): ByteEntry {
  return arena.add(`"${jsonText(value)}"`);
}

test('a batch is its entries one after the other, without the last separator, between head and tail', () => {
  const arena = new LogArena();
  const entries = ['a', 'b"', 'c\u00e9'].map((v) => write(arena, v));
  const parts = LogArena.parts(entries, fragment('['), fragment(']'));
  assert.equal(parts.length, 3, 'entries that follow each other in a chunk are one range');
  assert.deepEqual(JSON.parse(text(parts)), ['a', 'b"', 'c\u00e9']);
  assert.equal(text(LogArena.parts(entries.slice(1, 2), null, null)), '"b\\""');
});

test('entries spread over chunks, and an entry larger than a chunk, come out whole', () => {
  const arena = new LogArena();
  const values = Array.from({ length: 3000 }, (_, i) => `entry-${i}-${'x'.repeat(i % 97)}`);
  values.splice(1500, 0, 'y'.repeat(200_000));
  const entries = values.map((v) => write(arena, v));
  const chunks = new Set(entries.map((e) => e.chunk));
  assert.ok(chunks.size >= 3, `several chunks (${chunks.size})`);
  assert.deepEqual(JSON.parse(text(LogArena.parts(entries, fragment('['), fragment(']')))), values);
  // Any sub-batch, with gaps (dropped entries) in between.
  const some = entries.filter((_, i) => i % 7 === 3);
  assert.deepEqual(JSON.parse(text(LogArena.parts(some, fragment('['), fragment(']')))), values.filter((_, i) => i % 7 === 3));
});

test('a chunk is written again once all its entries are released, not before', () => {
  const arena = new LogArena();
  /** Writes entries until the writer moves to another chunk: the entries of the chunk it left, and the one it moved to. */
  const fill = () => {
    const entries = [write(arena, 'a'.repeat(1000))];
    for (;;) {
      const e = write(arena, 'a'.repeat(1000));
      if (e.chunk !== entries[0]!.chunk) return { entries, next: e.chunk };
      entries.push(e);
    }
  };
  const first = fill();
  const chunk1 = first.entries[0]!.chunk;
  arena.release(first.entries.slice(1)); // one entry still held
  assert.notEqual(fill().next, chunk1, 'a chunk with a held entry is not reused');
  assert.equal(text(LogArena.parts(first.entries.slice(0, 1), null, null)), JSON.stringify('a'.repeat(1000)), 'the held entry is intact');
  arena.release(first.entries.slice(0, 1));
  assert.equal(fill().next, chunk1, 'once released, it is');
});
