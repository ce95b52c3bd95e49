/** The OTLP JSON of a span parses to the equivalent span object, ASCII only, times in exact nanoseconds. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { asciiEscaped as ascii } from '../../../test/helpers/json.ts';
import { attrKey, event, intAttr, nanos, span, strAttr } from './encode.ts';


test('nanoseconds: the ms part exact, the fraction rounded to the ns, a carry into the next ms', () => {
  const cases: [number, string][] = [
    [1764000000123, '1764000000123000000'],
    [1764000000123.5, '1764000000123500000'],
    [1764000000124.25, '1764000000124250000'],
    [1764000000124.001, '1764000000124000977'], // the float64 nearest, to the ns: leading zeros of the fraction kept
    // Small times (at epoch size a float64 step is ~244 ns, so no fraction rounds up there):
    [5.0000004, '5000000'],
    [5.9999996, '6000000'], // rounds up into the next ms
    [6.25, '6250000'],
    [0, '0'],
    [0.00025, '250'],
    // Never a value the collector refuses (it would drop the whole batch):
    [Number.NaN, '0'],
    [-1, '0'],
    [Number.POSITIVE_INFINITY, '0'],
  ];
  for (const [ms, expected] of cases) assert.equal(nanos(ms), expected, `nanos(${ms})`);
});

test('a span with attributes, events and an error status is JSON.stringify of the same object, in ASCII', () => {
  const method = attrKey('http.request.method');
  const agent = attrKey('user_agent.original');
  const port = attrKey('server.port');
  const ratio = attrKey('palisade.ratio');
  const plugin = attrKey('palisade.plugin');
  const text = span({
    traceId: 'a'.repeat(32), spanId: 'b'.repeat(16), parentSpanId: 'c'.repeat(16), traceState: 'vendor=x "q"', name: 'GET caf\u00e9 \u{1f600}', kind: 2,
    startMs: 1000.5, endMs: 1001.25,
    attrs: [strAttr(method, 'GET'), strAttr(agent, `${'agent/'.repeat(20)}"quoted"\n\u00e9`), intAttr(port, 8443), intAttr(ratio, 0.5)].join(','),
    events: [event(1000.75, strAttr(plugin, 'key-auth')), event(1001, strAttr(plugin, 'acl'))].join(','),
    error: 'PALISADE_ERR_UPSTREAM "down"',
  });
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
  assert.match(text, /^[\x20-\x7e]*$/, 'printable ASCII only');
  assert.equal(text, ascii(JSON.stringify(expected)));
  assert.deepEqual(JSON.parse(text), expected);
});

test('a span without parent, trace state or events, status unset, is JSON.stringify of the same object', () => {
  const text = span({
    traceId: 'a'.repeat(32), spanId: 'b'.repeat(16), parentSpanId: '', traceState: null, name: 'kong.balancer', kind: 3, startMs: 5, endMs: 6,
    attrs: strAttr(attrKey('server.address'), '::1'), events: '', error: null,
  });
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
  assert.equal(text, JSON.stringify(expected));
});
