/** The OTLP JSON written as bytes is JSON.stringify of the equivalent span object, times in exact nanoseconds. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { JsonLine } from '../../pdk/index.ts';
import { attrKey, closeEvent, closeSpan, intAttr, nanos, openEvent, openEvents, openSpan, strAttr } from './encode.ts';

const text = (w: JsonLine) => w.buf.toString('utf8', 0, w.pos);

test('nanoseconds: the ms part exact, the fraction rounded to the ns, a carry into the next ms', () => {
  const cases: [number, string][] = [
    [1764000000123, '"1764000000123000000"'],
    [1764000000123.5, '"1764000000123500000"'],
    [1764000000124.25, '"1764000000124250000"'], // another ms
    // Small times (at epoch size a float64 step is ~244 ns, so no fraction rounds up there):
    [5.0000004, '"5000000"'],
    [5.9999996, '"6000000"'], // rounds up into the next ms
    [6.25, '"6250000"'],
  ];
  for (const [ms, expected] of cases) {
    const w = new JsonLine(Buffer.alloc(64));
    nanos(w, ms);
    assert.equal(text(w), expected, `nanos(${ms})`);
  }
});

test('nanoseconds are right when writing them moves the entry to a new buffer (as the log arena does)', () => {
  for (let filler = 0; filler < 40; filler++) {
    // A new millisecond for each filler, then the same one again.
    for (const ms of [1764000000000 + filler + 0.25, 1764000000000 + filler + 0.5]) {
      // Grows like LogArena: what was written of the entry (from `start`) moves to the start of a new buffer.
      let start = 0;
      const w = new JsonLine(Buffer.alloc(48), (line, n) => {
        line.moveTo(Buffer.alloc(Math.max(48, 2 * (line.pos - start + n))), start);
        start = 0;
      });
      w.pos = start = filler;
      nanos(w, ms);
      assert.equal(w.buf.toString('latin1', start, w.pos), `"${ms * 1e6}"`, `after ${filler} bytes, nanos(${ms})`);
    }
  }
});

test('a span with attributes, events and an error status is JSON.stringify of the same object', () => {
  const method = attrKey('http.request.method');
  const agent = attrKey('user_agent.original');
  const port = attrKey('server.port');
  const ratio = attrKey('palisade.ratio');
  const plugin = attrKey('palisade.plugin');
  const w = new JsonLine(Buffer.alloc(8)); // grows on the way
  openSpan(w, 'a'.repeat(32), 'b'.repeat(16), 'c'.repeat(16), 'vendor=x "q"', 'GET caf\u00e9 \u{1f600}', 2, 1000.5, 1001.25);
  strAttr(w, method, 'GET', true);
  strAttr(w, agent, `${'agent/'.repeat(20)}"quoted"\n\u00e9`);
  intAttr(w, port, 8443);
  intAttr(w, ratio, 0.5);
  openEvents(w);
  openEvent(w, 1000.75, true);
  strAttr(w, plugin, 'key-auth', true);
  closeEvent(w);
  openEvent(w, 1001, false);
  strAttr(w, plugin, 'acl', true);
  closeEvent(w);
  closeSpan(w, 'PALISADE_ERR_UPSTREAM "down"');
  const expected = {
    traceId: 'a'.repeat(32),
    spanId: 'b'.repeat(16),
    parentSpanId: 'c'.repeat(16),
    traceState: 'vendor=x "q"',
    name: 'GET caf\u00e9 \u{1f600}',
    kind: 2,
    startTimeUnixNano: '1000500000',
    endTimeUnixNano: '1001250000',
    attributes: [
      { key: 'http.request.method', value: { stringValue: 'GET' } },
      { key: 'user_agent.original', value: { stringValue: `${'agent/'.repeat(20)}"quoted"\n\u00e9` } },
      { key: 'server.port', value: { intValue: '8443' } },
      { key: 'palisade.ratio', value: { doubleValue: 0.5 } },
    ],
    events: [
      { timeUnixNano: '1000750000', name: 'palisade.decision', attributes: [{ key: 'palisade.plugin', value: { stringValue: 'key-auth' } }] },
      { timeUnixNano: '1001000000', name: 'palisade.decision', attributes: [{ key: 'palisade.plugin', value: { stringValue: 'acl' } }] },
    ],
    status: { code: 2, message: 'PALISADE_ERR_UPSTREAM "down"' },
  };
  assert.equal(text(w), JSON.stringify(expected));
});

test('a span without parent, trace state or events, status unset', () => {
  const w = new JsonLine(Buffer.alloc(512));
  openSpan(w, 'a'.repeat(32), 'b'.repeat(16), '', null, 'kong.balancer', 3, 5, 6);
  strAttr(w, attrKey('server.address'), '::1', true);
  closeSpan(w, null);
  const expected = {
    traceId: 'a'.repeat(32),
    spanId: 'b'.repeat(16),
    name: 'kong.balancer',
    kind: 3,
    startTimeUnixNano: '5000000',
    endTimeUnixNano: '6000000',
    attributes: [{ key: 'server.address', value: { stringValue: '::1' } }],
    status: { code: 0 },
  };
  assert.equal(text(w), JSON.stringify(expected));
});
