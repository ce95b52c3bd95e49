/**
 * LogQueue bounds: entries in flight (sent, retrying) count against
 * max_entries whatever concurrency_limit says, and a queue whose sender is
 * stuck does not grow its internal array while it drops entries. The queue is
 * driven directly with senders that never answer or always fail (the
 * plugins' tests cover real collectors).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { TallyCounter } from '../telemetry/tally.ts';
import { dropCounter, LogQueue, type QueueParameters } from './log-queue.ts';

const log = pino({ level: 'silent' });
const params = (p: Partial<QueueParameters>): QueueParameters => ({
  max_batch_size: 1, max_coalescing_delay: 0, max_entries: 10, max_retry_time: 60, initial_retry_delay: 0.01, max_retry_delay: 0.05, concurrency_limit: 1, ...p,
});
const turns = async (n: number) => {
  for (let i = 0; i < n; i++) await new Promise((r) => setTimeout(r, 5));
};

test('concurrency_limit -1 and a sender that never answers: at most max_entries are held, the rest is dropped', async () => {
  let calls = 0;
  const q = new LogQueue('t', params({ concurrency_limit: -1 }), () => (calls++, new Promise<void>(() => {})), log);
  for (let i = 0; i < 100; i++) {
    q.add(`e${i}`);
    if (i % 10 === 0) await turns(1);
  }
  await turns(5);
  assert.ok(calls <= 10, `${calls} batches handed to the sender`);
  assert.ok(q.held <= 10, `${q.held} entries held`);
  assert.equal(q.dropped, 100 - q.held);
});

test('concurrency_limit -1 and a failing sender: batches in retry loops count against max_entries', async () => {
  const q = new LogQueue('t', params({ concurrency_limit: -1, max_batch_size: 2 }), () => Promise.reject(new Error('collector down')), log);
  for (let i = 0; i < 200; i++) {
    q.add(`e${i}`);
    if (i % 20 === 0) await turns(1);
  }
  await turns(5);
  assert.ok(q.dropped >= 190, `${q.dropped} dropped`);
  assert.ok(q.held <= 10, `${q.held} entries held`);
  assert.equal(q.failed, 0, 'still retrying (max_retry_time 60)');
});

test('max_bytes counts the entries in flight', async () => {
  const q = new LogQueue('t', params({ max_entries: 1000, max_bytes: 100, concurrency_limit: -1 }), () => new Promise<void>(() => {}), log);
  for (let i = 0; i < 50; i++) {
    q.add('x'.repeat(10));
    await turns(1);
  }
  assert.ok(q.dropped >= 40, `${q.dropped} dropped`);
  assert.ok(q.held <= 10, `${q.held} entries of 10 bytes held with max_bytes 100`);
});

test('a stuck sender: dropping the oldest entries does not grow the queue array', async () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const q = new LogQueue('t', params({ max_entries: 10 }), () => new Promise<void>(() => {}), log);
  q.add('first');
  await turns(2); // the first batch is in flight and never settles
  gc();
  const before = process.memoryUsage().heapUsed;
  for (let i = 0; i < 2_000_000; i++) q.add('entry');
  gc();
  const grown = process.memoryUsage().heapUsed - before;
  assert.ok(grown < 8 * 1024 * 1024, `heap grew by ${(grown / 1048576).toFixed(1)} MiB for a queue of 10`);
  assert.equal(q.held, 10);
  assert.equal(q.dropped, 2_000_000 - 9);
});

test('entries with a kind are released exactly once, and only once their batch is settled: delivered, given up, dropped, refused or late', async () => {
  const released = new Map<number, number>();
  /** Entries of batches handed to the sender and not settled yet. */
  const inFlight = new Set<number>();
  const early: number[] = [];
  const kind = {
    size: () => 10,
    release(entries: readonly number[]) {
      for (const e of entries) {
        if (inFlight.has(e)) early.push(e);
        released.set(e, (released.get(e) ?? 0) + 1);
      }
    },
  };
  const sent: number[][] = [];
  const send = async (batch: number[]) => {
    sent.push(batch);
    for (const e of batch) inFlight.add(e);
    try {
      await new Promise((r) => setTimeout(r, 5));
      if (batch === sent[0]) throw new Error('collector down'); // the first batch is retried, then given up
    } finally {
      // The queue settles the batch after this promise; until then its entries must not be released.
      await Promise.resolve();
      for (const e of batch) inFlight.delete(e);
    }
  };
  // max_bytes 45: four entries of 10 bytes at most; an entry of 100 bytes is refused.
  const q = new LogQueue<number>('t', params({ max_batch_size: 2, max_entries: 4, max_bytes: 45, max_retry_time: 0.03, initial_retry_delay: 0.01 }), send, log, null, {
    ...kind,
    size: (e) => (e === 99 ? 100 : 10),
  });
  for (let i = 0; i < 12; i++) q.add(i); // the oldest waiting entries are dropped
  assert.equal(q.add(99), false, 'larger than max_bytes');
  await turns(20);
  for (let i = 12; i < 16; i++) q.add(i);
  await q.close(2000);
  assert.equal(q.add(100), false, 'after close');
  for (const e of [...Array(16).keys(), 99, 100]) assert.equal(released.get(e), 1, `entry ${e} released once`);
  assert.deepEqual(early, [], 'no entry released while its batch was being sent');
  assert.ok(q.failed > 0 && q.dropped > 0 && q.sent > 0, `failed ${q.failed}, dropped ${q.dropped}, sent ${q.sent}`);
});

test('a drop counter lists both reasons at 0 before anything is dropped, then counts by reason', async () => {
  const registry = new Registry();
  const counter = new TallyCounter('x_dropped_total', 'Dropped.', ['plugin', 'reason']);
  registry.registerMetric(counter as never);
  const onDrop = dropCounter(counter, { plugin: 'p' });
  const text = await registry.metrics();
  assert.match(text, /x_dropped_total\{plugin="p",reason="queue_full"\} 0\n/);
  assert.match(text, /x_dropped_total\{plugin="p",reason="delivery_failed"\} 0\n/);
  onDrop(3, 'queue_full');
  assert.match(await registry.metrics(), /x_dropped_total\{plugin="p",reason="queue_full"\} 3\n/);
});
