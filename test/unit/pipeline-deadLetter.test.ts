import { describe, test } from 'vitest';
import assert from 'node:assert/strict';
import rhea from 'rhea';
import {
  MAX_ERROR_BYTES,
  deadLetterFromRaw,
  deadLetterFromRow,
  fromDeadLetterMessage,
  nextAttempt,
  toDeadLetterMessage,
  truncateUtf8,
} from '../../src/pipeline/deadLetterMessage.js';
import type { DeadLetterRecord, RawEvent } from '../../src/pipeline/types.js';
import { validateEvent } from '../../src/pipeline/validate.js';
import { makeSource } from '../support/rows.js';

const T0 = new Date('2024-05-10T12:00:00.123Z');
const T1 = new Date('2024-05-10T12:05:00.456Z');

function raw(body: Buffer, properties: Record<string, unknown> = {}, partitionKey?: string): RawEvent {
  const source = makeSource({ partitionId: '3', sequenceNumber: 2 ** 40 + 17, offset: '123456789012', enqueuedTime: new Date('2024-05-10T11:59:59.999Z') });
  if (partitionKey !== undefined) source.partitionKey = partitionKey;
  return { body, properties, source };
}

/** Application properties of every kind a producer or the SDK can put on an event. */
function richProperties(): Record<string, unknown> {
  const props: Record<string, unknown> = {
    TenantId: 42,
    origin: 'web',
    looksNumeric: '42',
    looksBoolean: 'true',
    looksNull: 'null',
    looksJson: '{"a":1}',
    empty: '',
    ratio: 0.25,
    negative: -7,
    flag: false,
    sentAt: new Date('2024-05-10T11:00:00.001Z'),
    big: 2n ** 63n - 1n,
    bytes: Buffer.from([0, 1, 254, 255]),
    nothing: null,
    missing: undefined,
    nested: { list: [1, 'two', { three: 3 }] },
    list: ['a', 'b'],
    'hubsink.reason': 'the producer used our prefix',
    'HUBSINK.Error': 'so did this one',
    hostile: "'); drop table events; --",
  };
  // An own key named __proto__, as JSON.parse would make it.
  Object.defineProperty(props, '__proto__', { value: 'proto value', enumerable: true, writable: true, configurable: true });
  return props;
}

function record(overrides: Partial<DeadLetterRecord> = {}): DeadLetterRecord {
  const base = deadLetterFromRaw(raw(Buffer.from([0x7b, 0xff, 0x00, 0x7d]), richProperties(), '42'), 'transient', '08006 connection terminated', T0, {
    tenantId: 42,
    eventId: '0190b6a4-5c3e-7cc1-9d2e-3f4a5b6c7d8e',
  });
  return { ...base, attempts: 3, lastFailureAt: T1, ...overrides };
}

/**
 * What the Functions host does to application properties before the deadletter function sees them:
 * a JSON trip and the first letter of every key lower-cased (recursively). With `parseStrings`, also
 * what it does to string-typed metadata (lenient JSON parse of each string), as a worst case.
 */
function throughFunctionsHost(props: Record<string, unknown>, parseStrings: boolean): Record<string, unknown> {
  const camel = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(camel);
    if (typeof v !== 'object' || v === null) return v;
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      Object.defineProperty(out, k.charAt(0).toLowerCase() + k.slice(1), { value: camel(x), enumerable: true, writable: true, configurable: true });
    }
    return out;
  };
  const parsed: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(JSON.parse(JSON.stringify(props)) as Record<string, unknown>)) {
    let x = v;
    if (parseStrings && typeof v === 'string') {
      try {
        x = JSON.parse(v) as unknown;
      } catch {
        x = v;
      }
    }
    Object.defineProperty(parsed, k, { value: x, enumerable: true, writable: true, configurable: true });
  }
  return camel(parsed) as Record<string, unknown>;
}

describe('dead-letter records', () => {
  test('deadLetterFromRaw: attempt 1, first = last = now, original bytes and properties, ids only when given', () => {
    const r = raw(Buffer.from('{"x":1}'), { a: 1 }, 'pk');
    const d = deadLetterFromRaw(r, 'invalid', 'type: required', T0);
    assert.deepEqual(d, {
      reason: 'invalid',
      error: 'type: required',
      body: r.body,
      properties: { a: 1 },
      source: r.source,
      attempts: 1,
      firstFailureAt: T0,
      lastFailureAt: T0,
    });
    assert.notEqual(d.properties, r.properties, 'a copy, so later changes to either do not leak');
  });

  test('deadLetterFromRow carries the tenant and event id of the row', () => {
    const now = new Date();
    const body = Buffer.from(JSON.stringify({ tenantId: 9, type: 'click', occurredAt: now.toISOString() }));
    const v = validateEvent(raw(body), { now, retentionDays: 1, aheadDays: 1, maxBodyBytes: 1000 });
    assert.ok(v.ok);
    const d = deadLetterFromRow(v.row, 'rejected', '23514 no partition', T0);
    assert.equal(d.reason, 'rejected');
    assert.equal(d.tenantId, 9);
    assert.equal(d.eventId, v.row.eventId);
    assert.ok(d.body.equals(body));
  });

  test('nextAttempt counts up, moves lastFailureAt, replaces the error, leaves the original alone', () => {
    const a = record({ attempts: 1, lastFailureAt: T0 });
    const b = nextAttempt(a, 'ECONNREFUSED', T1);
    assert.equal(b.attempts, 2);
    assert.equal(b.lastFailureAt.getTime(), T1.getTime());
    assert.equal(b.firstFailureAt.getTime(), T0.getTime());
    assert.equal(b.error, 'ECONNREFUSED');
    assert.equal(a.attempts, 1);
    assert.equal(a.lastFailureAt.getTime(), T0.getTime());
    assert.equal(nextAttempt(b, 'again', T1).attempts, 3);
  });
});

describe('dead-letter wire format', () => {
  test('body is the original bytes; hubsink properties are prefixed and primitive', () => {
    const rec = record();
    const msg = toDeadLetterMessage(rec);
    assert.equal(msg.body, rec.body);
    assert.equal(msg.partitionKey, '42');
    for (const [k, v] of Object.entries(msg.properties)) {
      assert.ok(['string', 'number', 'boolean'].includes(typeof v), `${k} is ${typeof v}`);
    }
    const p = msg.properties;
    assert.equal(p['hubsink.reason'], 'transient');
    assert.equal(p['hubsink.error'], '08006 connection terminated');
    assert.equal(p['hubsink.sourceHub'], 'clickstream');
    assert.equal(p['hubsink.sourceConsumerGroup'], '$Default');
    assert.equal(p['hubsink.sourcePartition'], '3');
    assert.equal(p['hubsink.sourceSequenceNumber'], 2 ** 40 + 17);
    assert.equal(p['hubsink.sourceOffset'], '123456789012');
    assert.equal(p['hubsink.sourceEnqueuedTime'], '2024-05-10T11:59:59.999Z');
    assert.equal(p['hubsink.sourcePartitionKey'], '42');
    assert.equal(p['hubsink.tenantId'], 42);
    assert.equal(p['hubsink.eventId'], '0190b6a4-5c3e-7cc1-9d2e-3f4a5b6c7d8e');
    assert.equal(p['hubsink.attempts'], 3);
    assert.equal(p['hubsink.firstFailureAt'], T0.toISOString());
    assert.equal(p['hubsink.lastFailureAt'], T1.toISOString());
    // Original primitives travel unchanged; the rest is encoded, nothing is dropped.
    assert.equal(p.TenantId, 42);
    assert.equal(p.origin, 'web');
    assert.equal(p.looksNumeric, '42');
    assert.equal(p.hostile, "'); drop table events; --");
    assert.equal(p.sentAt, '2024-05-10T11:00:00.001Z');
    assert.equal(p.big, '9223372036854775807');
    assert.equal(p.bytes, 'AAH+/w==');
    assert.equal(p.nested, '{"list":[1,"two",{"three":3}]}');
    assert.equal(p['hubsink.original.hubsink.reason'], 'the producer used our prefix');
    assert.equal(p['hubsink.original.HUBSINK.Error'], 'so did this one');
    assert.equal(Object.getOwnPropertyDescriptor(p, '__proto__')?.value, 'proto value');
    assert.equal(Object.keys(p).filter((k) => !k.toLowerCase().startsWith('hubsink.')).length, Object.keys(richProperties()).length - 2);
  });

  test('round trip: byte-identical body, identical properties and record', () => {
    const rec = record();
    const msg = toDeadLetterMessage(rec);
    const back = fromDeadLetterMessage(msg.body, msg.properties);
    assert.ok(back.ok, back.ok ? '' : back.error);
    assert.deepStrictEqual(back.record, rec);
    assert.ok(back.record.body.equals(rec.body));
    assert.deepStrictEqual(back.record.properties, richProperties());
  });

  test('round trip through a real AMQP encoding (rhea)', () => {
    // rhea's decoder assigns keys, so it drops an application property named __proto__ on receipt:
    // such a property never reaches any consumer, hubsink included. Leave it out here.
    const properties = richProperties();
    delete properties.__proto__;
    const rec = record({ reason: 'invalid', error: 'occurredAt: must include a UTC offset', properties });
    const msg = toDeadLetterMessage(rec);
    const section: unknown = rhea.message.data_section(msg.body);
    const wire = rhea.message.encode({ body: section, application_properties: msg.properties });
    const decoded: unknown = rhea.message.decode(wire);
    const { body, application_properties } = decoded as { body: { content: Buffer }; application_properties: Record<string, unknown> };
    const back = fromDeadLetterMessage(body.content, application_properties);
    assert.ok(back.ok, back.ok ? '' : back.error);
    assert.ok(back.record.body.equals(rec.body));
    assert.deepStrictEqual(back.record, { ...rec, body: back.record.body });
  });

  test('minimal record: no tenant, no event id, no partition key', () => {
    const rec = deadLetterFromRaw(raw(Buffer.alloc(0)), 'invalid', 'body: is empty', T0);
    const msg = toDeadLetterMessage(rec);
    assert.equal(msg.partitionKey, undefined);
    assert.equal('hubsink.tenantId' in msg.properties, false);
    assert.equal('hubsink.propertyTypes' in msg.properties, false);
    const back = fromDeadLetterMessage(msg.body, msg.properties);
    assert.ok(back.ok);
    assert.deepStrictEqual(back.record, rec);
  });

  test('partition key: the tenant when known, else the source partition key', () => {
    assert.equal(toDeadLetterMessage(deadLetterFromRaw(raw(Buffer.from('x'), {}, 'src'), 'invalid', 'e', T0)).partitionKey, 'src');
    assert.equal(toDeadLetterMessage(deadLetterFromRaw(raw(Buffer.from('x'), {}, 'src'), 'invalid', 'e', T0, { tenantId: 8 })).partitionKey, '8');
  });

  test('through the Functions host: keys matched case-insensitively, values recovered', () => {
    const rec = record();
    const msg = toDeadLetterMessage(rec);
    const back = fromDeadLetterMessage(msg.body, throughFunctionsHost(msg.properties, false));
    assert.ok(back.ok, back.ok ? '' : back.error);
    assert.deepStrictEqual({ ...back.record, properties: {} }, { ...rec, properties: {} });
    // The host lower-cased the first letter of TenantId; every other original comes back as it was.
    const expected = richProperties();
    delete expected.TenantId;
    expected.tenantId = 42;
    assert.deepStrictEqual(back.record.properties, expected);
  });

  test('through the Functions host, worst case: JSON-looking strings parsed too', () => {
    const rec = record();
    const msg = toDeadLetterMessage(rec);
    const hosted = throughFunctionsHost(msg.properties, true);
    assert.equal(hosted['hubsink.sourcePartition'], 3, 'the simulation does turn "3" into 3');
    const back = fromDeadLetterMessage(msg.body, hosted);
    assert.ok(back.ok, back.ok ? '' : back.error);
    assert.deepStrictEqual({ ...back.record, properties: {} }, { ...rec, properties: {} });
    const p = back.record.properties;
    // Strings the host would parse were marked, so they come back as the strings they were.
    assert.equal(p.looksNumeric, '42');
    assert.equal(p.looksBoolean, 'true');
    assert.equal(p.looksNull, 'null');
    assert.deepEqual(p.nested, { list: [1, 'two', { three: 3 }] });
    assert.deepEqual(p.sentAt, new Date('2024-05-10T11:00:00.001Z'));
    assert.deepEqual(p.bytes, Buffer.from([0, 1, 254, 255]));
    assert.equal(p.nothing, null);
  });

  test('upper-cased hubsink keys and numbers-as-strings are still read', () => {
    const msg = toDeadLetterMessage(record());
    const shouted: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(msg.properties)) shouted[k.startsWith('hubsink.') ? k.toUpperCase() : k] = typeof v === 'number' ? String(v) : v;
    const back = fromDeadLetterMessage(msg.body, shouted);
    assert.ok(back.ok, back.ok ? '' : back.error);
    assert.equal(back.record.attempts, 3);
    assert.equal(back.record.source.sequenceNumber, 2 ** 40 + 17);
    assert.equal(back.record.tenantId, 42);
  });

  test('errors are truncated to 4 KiB of UTF-8 on a character boundary', () => {
    const long = 'é'.repeat(3000) + '\u{1F600}'.repeat(500); // 6000 + 2000 bytes
    const msg = toDeadLetterMessage(record({ error: long }));
    const sent = msg.properties['hubsink.error'];
    assert.equal(typeof sent, 'string');
    const s = String(sent);
    assert.ok(Buffer.byteLength(s) <= MAX_ERROR_BYTES);
    assert.ok(s.endsWith('…'));
    assert.ok(long.startsWith(s.slice(0, -1)));
    assert.equal(Buffer.from(s).toString('utf8'), s, 'no broken characters');
    assert.equal(truncateUtf8('short', MAX_ERROR_BYTES), 'short');
    const emojiCut = truncateUtf8('\u{1F600}'.repeat(3), 10);
    assert.equal(emojiCut, '\u{1F600}…');
  });

  const broken: [string, (p: Record<string, unknown>) => void, RegExp][] = [
    ['missing reason', (p) => delete p['hubsink.reason'], /hubsink\.reason: missing/],
    ['unknown reason', (p) => (p['hubsink.reason'] = 'bored'), /hubsink\.reason: must be one of invalid, rejected, transient/],
    ['attempts zero', (p) => (p['hubsink.attempts'] = 0), /hubsink\.attempts: must be a positive integer/],
    ['bad first failure time', (p) => (p['hubsink.firstFailureAt'] = 'yesterday'), /hubsink\.firstFailureAt: must be an ISO-8601 time/],
    ['missing source hub', (p) => delete p['hubsink.sourceHub'], /hubsink\.sourceHub: missing/],
    ['bad tenant', (p) => (p['hubsink.tenantId'] = 'acme'), /hubsink\.tenantId: must be a positive integer/],
  ];
  for (const [name, mutate, re] of broken) {
    test(`not a dead letter: ${name}`, () => {
      const msg = toDeadLetterMessage(record());
      const p: Record<string, unknown> = { ...msg.properties };
      mutate(p);
      const back = fromDeadLetterMessage(msg.body, p);
      assert.equal(back.ok, false);
      assert.match(back.ok ? '' : back.error, re);
    });
  }

  test('an ordinary event is not a dead letter', () => {
    const back = fromDeadLetterMessage(Buffer.from('{}'), { tenantId: 1 });
    assert.equal(back.ok, false);
    assert.match(back.ok ? '' : back.error, /^not a hubsink dead letter: hubsink\.reason: missing/);
  });
});
