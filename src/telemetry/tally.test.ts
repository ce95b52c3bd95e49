/** Tally metrics expose exactly what prom-client's own counters and histograms do for the same observations, alone and summed over cluster workers. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AggregatorRegistry, Counter, Histogram, Registry } from 'prom-client';
import { TallyCounter, TallyHistogram } from './tally.ts';

const BUCKETS = [0.1, 0.25, 1, 5, 10];
const observations: [Record<string, string>, number][] = [
  [{ service: 'a', route: 'r1' }, 0.05],
  [{ service: 'a', route: 'r1' }, 0.1],
  [{ service: 'a', route: 'r1' }, 0.2500001],
  [{ service: 'a', route: 'r1' }, 7],
  [{ service: 'a', route: 'r1' }, 99],
  [{ service: 'b', route: 'r "2"\n' }, 1],
  [{ service: 'b', route: 'r "2"\n' }, 0],
];

function both() {
  const ours = new Registry();
  const theirs = new Registry();
  const th = new TallyHistogram('lat_ms', 'Latency.', ['service', 'route'], BUCKETS);
  const tc = new TallyCounter('reqs_total', 'Requests.', ['service', 'route']);
  ours.registerMetric(th as never);
  ours.registerMetric(tc as never);
  const ph = new Histogram({ name: 'lat_ms', help: 'Latency.', labelNames: ['service', 'route'], buckets: BUCKETS, registers: [theirs] });
  const pc = new Counter({ name: 'reqs_total', help: 'Requests.', labelNames: ['service', 'route'], registers: [theirs] });
  for (const [labels, v] of observations) {
    th.series(labels).observe(v);
    tc.series(labels).value += 2;
    ph.observe(labels, v);
    pc.inc(labels, 2);
  }
  return { ours, theirs };
}

test('the exposition text is prom-client\'s, byte for byte', async () => {
  const { ours, theirs } = both();
  assert.equal(await ours.metrics(), await theirs.metrics());
});

test('summed over workers (the cluster primary\'s aggregation) it is prom-client\'s too', async () => {
  const a = both();
  const b = both();
  const merged = (regs: Registry[]) => Promise.all(regs.map((r) => r.getMetricsAsJSON())).then((json) => AggregatorRegistry.aggregate(json as never).metrics());
  assert.equal(await merged([a.ours, b.ours]), await merged([a.theirs, b.theirs]));
});

test('a series is made once per label set; wrong labels are refused', () => {
  const c = new TallyCounter('x_total', 'X.', ['a']);
  assert.equal(c.series({ a: '1' }), c.series({ a: '1' }));
  assert.notEqual(c.series({ a: '1' }), c.series({ a: '2' }));
  assert.throws(() => c.series({}), /label a is missing/);
  assert.throws(() => c.series({ a: '3', b: '2' }), /label b is not one of/);
  assert.throws(() => c.series({ a: '1', b: '2' }), /label b is not one of/, 'also for a series that exists');
});

test('a histogram series with nothing observed is not exposed; a non-finite value is refused and leaves none', async () => {
  const reg = new Registry();
  const h = new TallyHistogram('h_ms', 'H.', ['route'], BUCKETS);
  reg.registerMetric(h as never);
  const s = h.series({ route: 'r' });
  assert.throws(() => s.observe(Number.NaN), /not a valid number/);
  assert.throws(() => s.observe(Number.POSITIVE_INFINITY), /not a valid number/);
  assert.doesNotMatch(await reg.metrics(), /h_ms_(bucket|sum|count)\{/);
  s.observe(3);
  assert.match(await reg.metrics(), /h_ms_count\{route="r"\} 1/);
});

test('after a registry reset, the series their users kept count from zero and are exposed', async () => {
  const reg = new Registry();
  const c = new TallyCounter('k_total', 'K.', ['a']);
  const h = new TallyHistogram('k_ms', 'K.', ['a'], BUCKETS);
  reg.registerMetric(c as never);
  reg.registerMetric(h as never);
  const cs = c.series({ a: '1' });
  const hs = h.series({ a: '1' });
  cs.value += 5;
  hs.observe(3);
  reg.resetMetrics();
  assert.doesNotMatch(await reg.metrics(), /k_ms_count/, 'nothing observed since the reset');
  cs.value += 1;
  hs.observe(0.2);
  const text = await reg.metrics();
  assert.match(text, /k_total\{a="1"\} 1\n/);
  assert.match(text, /k_ms_count\{a="1"\} 1\n/);
  assert.match(text, /k_ms_bucket\{le="0.25",a="1"\} 1\n/);
});
