import { describe, test } from 'vitest';
import assert from 'node:assert/strict';
import {
  coerceDate,
  coerceInteger,
  coerceOffset,
  normalizeFunctionsBatch,
  normalizeReceivedEvents,
} from '../../src/pipeline/normalize.js';
import { validateEvent } from '../../src/pipeline/validate.js';

const ctx = { hub: 'clickstream', consumerGroup: '$Default' };
const body = (s: string) => Buffer.from(s, 'utf8');

describe('coercions of host-mangled values', () => {
  const integers: [string, unknown, number | undefined][] = [
    ['plain number', 77, 77],
    ['numeric string', '88', 88],
    ['Long {low, high}', { low: 5, high: 1, unsigned: false }, 2 ** 32 + 5],
    ['Long with negative low word', { low: -1, high: 0, unsigned: true }, 2 ** 32 - 1],
    ['signed Long -1', { low: -1, high: -1, unsigned: false }, -1],
    ['Long without unsigned flag', { low: 7, high: 0 }, 7],
    ['bigint', 12n, 12],
    ['beyond 2^53 is refused', { low: 0, high: 0x7fffffff }, undefined],
    ['fraction', 1.5, undefined],
    ['text', 'abc', undefined],
    ['null', null, undefined],
    ['object without low/high', { value: 3 }, undefined],
  ];
  for (const [name, input, expected] of integers) {
    test(`sequence number: ${name}`, () => assert.equal(coerceInteger(input), expected));
  }

  const offsets: [string, unknown, string | undefined][] = [
    ['string kept as is', '00012', '00012'],
    ['number written back', 1234, '1234'],
    ['Long', { low: 10, high: 1, unsigned: true }, String(2 ** 32 + 10)],
    ['bigint', 2n ** 60n, (2n ** 60n).toString()],
    ['opaque non-numeric string', 'gAAAAAB', 'gAAAAAB'],
    ['object', { a: 1 }, undefined],
  ];
  for (const [name, input, expected] of offsets) {
    test(`offset: ${name}`, () => assert.equal(coerceOffset(input), expected));
  }

  const times: [string, unknown, string | undefined][] = [
    ['with Z', '2024-03-01T10:00:00.123Z', '2024-03-01T10:00:00.123Z'],
    ['missing Z is UTC', '2024-03-01T10:00:00.123', '2024-03-01T10:00:00.123Z'],
    ['seven fraction digits, no Z', '2024-03-01T10:00:00.1234567', '2024-03-01T10:00:00.123Z'],
    ['space separator, no Z', '2024-03-01 10:00:00', '2024-03-01T10:00:00.000Z'],
    ['explicit offset', '2024-03-01T12:00:00+02:00', '2024-03-01T10:00:00.000Z'],
    ['epoch milliseconds', Date.UTC(2024, 2, 1, 10), '2024-03-01T10:00:00.000Z'],
    ['Date', new Date(Date.UTC(2024, 2, 1, 10)), '2024-03-01T10:00:00.000Z'],
    ['non-ISO text is not guessed', '3/1/2024 10:00:00 AM', undefined],
    ['garbage', 'soon', undefined],
    ['invalid Date', new Date(NaN), undefined],
  ];
  for (const [name, input, expected] of times) {
    test(`enqueued time: ${name}`, () => assert.equal(coerceDate(input)?.toISOString(), expected));
  }
});

describe('normalizeFunctionsBatch', () => {
  test('coordinates come from systemPropertiesArray, aligned with the batch', () => {
    const events = normalizeFunctionsBatch(
      [body('{"a":1}'), body('{"a":2}')],
      {
        partitionContext: { partitionId: '3', eventHubName: 'clickstream' },
        systemPropertiesArray: [
          { sequenceNumber: { low: 5, high: 1, unsigned: false }, offset: 4096, enqueuedTimeUtc: '2024-03-01T10:00:00.1234567', partitionKey: '42' },
          { sequenceNumber: 9, offset: '8192', enqueuedTimeUtc: '2024-03-01T10:00:01Z', partitionKey: 43 },
        ],
        propertiesArray: [{ tenantId: 42 }, { tenantId: '43' }],
      },
      ctx,
    );
    assert.equal(events.length, 2);
    assert.deepEqual(events[0]?.source, {
      hub: 'clickstream',
      consumerGroup: '$Default',
      partitionId: '3',
      sequenceNumber: 2 ** 32 + 5,
      offset: '4096',
      enqueuedTime: new Date('2024-03-01T10:00:00.123Z'),
      partitionKey: '42',
    });
    assert.deepEqual(events[1]?.source, {
      hub: 'clickstream',
      consumerGroup: '$Default',
      partitionId: '3',
      sequenceNumber: 9,
      offset: '8192',
      enqueuedTime: new Date('2024-03-01T10:00:01Z'),
      partitionKey: '43',
    });
    assert.deepEqual(events[0]?.properties, { tenantId: 42 });
    assert.deepEqual(events[1]?.properties, { tenantId: '43' });
    assert.equal(events[1]?.body.toString(), '{"a":2}');
  });

  test('a shorter partitionKeyArray is never read by index', () => {
    // The host dropped the empty key of event 1: ['a', 'c'] would wrongly give event 1 the key 'c'.
    const events = normalizeFunctionsBatch([body('1'), body('2'), body('3')], {
      partitionKeyArray: ['a', 'c'],
      systemPropertiesArray: [{ partitionKey: 'a' }, {}, { partitionKey: 'c' }],
    }, ctx);
    assert.deepEqual(events.map((e) => e.source.partitionKey), ['a', undefined, 'c']);
    assert.equal(Object.hasOwn(events[1]?.source ?? {}, 'partitionKey'), false);

    const withoutSys = normalizeFunctionsBatch([body('1'), body('2'), body('3')], { partitionKeyArray: ['a', 'c'] }, ctx);
    assert.deepEqual(withoutSys.map((e) => e.source.partitionKey), [undefined, undefined, undefined]);
  });

  test('per-event arrays are the fallback only when their length equals the batch length', () => {
    const aligned = normalizeFunctionsBatch([body('1'), body('2')], {
      partitionContext: { partitionId: 0 },
      sequenceNumberArray: [{ low: 1, high: 0, unsigned: false }, 2],
      offsetArray: [100, '200'],
      enqueuedTimeUtcArray: ['2024-03-01T10:00:00', '2024-03-01T10:00:01'],
      partitionKeyArray: ['7', '8'],
    }, ctx);
    assert.deepEqual(
      aligned.map((e) => [e.source.partitionId, e.source.sequenceNumber, e.source.offset, e.source.enqueuedTime.toISOString(), e.source.partitionKey]),
      [
        ['0', 1, '100', '2024-03-01T10:00:00.000Z', '7'],
        ['0', 2, '200', '2024-03-01T10:00:01.000Z', '8'],
      ],
    );
    const misaligned = normalizeFunctionsBatch([body('1'), body('2')], {
      sequenceNumberArray: [5],
      offsetArray: ['100', '200', '300'],
      enqueuedTimeUtcArray: [],
    }, ctx);
    for (const e of misaligned) {
      assert.equal(e.source.sequenceNumber, -1);
      assert.equal(e.source.offset, '');
      assert.equal(e.source.enqueuedTime.getTime(), 0);
    }
  });

  const keyForms: [string, Record<string, unknown>][] = [
    ['camel-cased', { sequenceNumber: 11, offset: '22', enqueuedTimeUtc: '2024-03-01T10:00:00Z', partitionKey: 'k' }],
    ['PascalCase', { SequenceNumber: 11, Offset: '22', EnqueuedTimeUtc: '2024-03-01T10:00:00Z', PartitionKey: 'k' }],
    ['AMQP annotations', { 'x-opt-sequence-number': 11, 'x-opt-offset': '22', 'x-opt-enqueued-time': Date.parse('2024-03-01T10:00:00Z'), 'x-opt-partition-key': 'k' }],
  ];
  for (const [name, sys] of keyForms) {
    test(`system property keys: ${name}`, () => {
      const [e] = normalizeFunctionsBatch([body('{}')], { systemPropertiesArray: [sys] }, ctx);
      assert.equal(e?.source.sequenceNumber, 11);
      assert.equal(e?.source.offset, '22');
      assert.equal(e?.source.enqueuedTime.toISOString(), '2024-03-01T10:00:00.000Z');
      assert.equal(e?.source.partitionKey, 'k');
    });
  }

  test('systemPropertiesArray entries still in JSON text are read', () => {
    const [e] = normalizeFunctionsBatch([body('{}')], { systemPropertiesArray: ['{"sequenceNumber":3,"offset":"64"}'] }, ctx);
    assert.equal(e?.source.sequenceNumber, 3);
    assert.equal(e?.source.offset, '64');
  });

  const hostile: [string, Record<string, unknown>][] = [
    ['empty metadata', {}],
    ['wrong types everywhere', { partitionContext: 'x', systemPropertiesArray: 'nonsense', propertiesArray: 5, sequenceNumberArray: { a: 1 } }],
    ['null entries', { partitionContext: null, systemPropertiesArray: [null], propertiesArray: [null] }],
    ['unreadable values', { systemPropertiesArray: [{ sequenceNumber: 'abc', offset: { x: 1 }, enqueuedTimeUtc: 'later', partitionKey: {} }] }],
  ];
  for (const [name, meta] of hostile) {
    test(`missing or broken metadata gives defaults, never throws: ${name}`, () => {
      const [e, ...rest] = normalizeFunctionsBatch([body('{"x":1}')], meta, ctx);
      assert.equal(rest.length, 0);
      assert.deepEqual(e, {
        body: body('{"x":1}'),
        properties: {},
        source: { hub: 'clickstream', consumerGroup: '$Default', partitionId: 'unknown', sequenceNumber: -1, offset: '', enqueuedTime: new Date(0) },
      });
    });
  }

  test('missing metadata still leads to a validated row', () => {
    const now = new Date('2024-05-10T12:00:00Z');
    const [e] = normalizeFunctionsBatch(
      [body('{"tenantId":5,"type":"click","occurredAt":"2024-05-10T11:00:00Z"}')],
      {},
      ctx,
    );
    assert.ok(e);
    const r = validateEvent(e, { now, retentionDays: 30, aheadDays: 3, maxBodyBytes: 1024 });
    assert.equal(r.ok, true);
  });

  const bodies: [string, unknown, Buffer][] = [
    ['Buffer, kept byte for byte', Buffer.from([0xff, 0x00, 0x7b]), Buffer.from([0xff, 0x00, 0x7b])],
    ['Uint8Array', new Uint8Array([1, 2, 3]), Buffer.from([1, 2, 3])],
    ['string (dataType string)', '{"tenantId":1,"name":"é"}', Buffer.from('{"tenantId":1,"name":"é"}', 'utf8')],
    ['parsed object (lenient JSON parse)', { tenantId: 1, type: 'click' }, Buffer.from('{"tenantId":1,"type":"click"}')],
    ['number the host parsed from "42"', 42, Buffer.from('42')],
    ['Buffer that went through JSON', { type: 'Buffer', data: [104, 105] }, Buffer.from('hi')],
    ['null', null, Buffer.from('null')],
    ['undefined', undefined, Buffer.alloc(0)],
  ];
  for (const [name, input, expected] of bodies) {
    test(`body: ${name}`, () => {
      const events = normalizeFunctionsBatch([input], {}, ctx);
      assert.equal(events.length, 1);
      assert.ok(events[0]?.body.equals(expected), `got ${events[0]?.body.toString('hex')}`);
    });
  }

  test('a Uint8Array view over a larger buffer yields only its own bytes', () => {
    const backing = new Uint8Array([9, 9, 1, 2, 9]);
    const [e] = normalizeFunctionsBatch([backing.subarray(2, 4)], {}, ctx);
    assert.deepEqual([...(e?.body ?? [])], [1, 2]);
  });

  test('a single non-array message uses the singular metadata keys', () => {
    const events = normalizeFunctionsBatch(body('{"a":1}'), {
      partitionContext: { partitionId: '1' },
      sequenceNumber: 4,
      offset: 512,
      enqueuedTimeUtc: '2024-03-01T10:00:00',
      partitionKey: 'p',
      properties: { TenantId: 9 },
    }, ctx);
    assert.equal(events.length, 1);
    assert.deepEqual(events[0]?.source, {
      hub: 'clickstream',
      consumerGroup: '$Default',
      partitionId: '1',
      sequenceNumber: 4,
      offset: '512',
      enqueuedTime: new Date('2024-03-01T10:00:00Z'),
      partitionKey: 'p',
    });
    assert.deepEqual(events[0]?.properties, { TenantId: 9 });
  });

  test('no messages → no events', () => {
    assert.deepEqual(normalizeFunctionsBatch(undefined, {}, ctx), []);
    assert.deepEqual(normalizeFunctionsBatch([], { systemPropertiesArray: [] }, ctx), []);
  });

  test('a __proto__ application property stays an ordinary key and pollutes nothing', () => {
    const props = JSON.parse('{"__proto__":{"polluted":true},"tenantId":1}') as Record<string, unknown>;
    const [e] = normalizeFunctionsBatch([body('{}')], { propertiesArray: [props] }, ctx);
    assert.deepEqual(Object.keys(e?.properties ?? {}), ['__proto__', 'tenantId']);
    assert.equal(Object.getPrototypeOf(e?.properties), Object.prototype);
    assert.equal((({}) as Record<string, unknown>).polluted, undefined);
  });

  test('camel-cased tenant property keys are all found by the validator', () => {
    const now = new Date('2024-05-10T12:00:00Z');
    const text = '{"type":"click","occurredAt":"2024-05-10T11:00:00Z"}';
    for (const key of ['tenantId', 'TenantId', 'tenant_id', 'tenantid']) {
      const [e] = normalizeFunctionsBatch([body(text)], { propertiesArray: [{ [key]: 17 }] }, ctx);
      assert.ok(e);
      const r = validateEvent(e, { now, retentionDays: 30, aheadDays: 3, maxBodyBytes: 1024 });
      assert.ok(r.ok, key);
      assert.equal(r.row.tenantId, 17);
    }
  });
});

describe('normalizeReceivedEvents (SDK consumer)', () => {
  const base = { sequenceNumber: 12, offset: '4096', enqueuedTimeUtc: new Date('2024-03-01T10:00:00Z') };
  const sdkCtx = { hub: 'clickstream', consumerGroup: 'hubsink', partitionId: '2' };

  const cases: [string, unknown, string][] = [
    ['binary body', Buffer.from('{"a":1}'), '{"a":1}'],
    ['Uint8Array body', new Uint8Array(Buffer.from('{"b":2}')), '{"b":2}'],
    ['object decoded by the SDK', { tenantId: 3, type: 'click', nested: { ok: true } }, '{"tenantId":3,"type":"click","nested":{"ok":true}}'],
    ['string body', 'plain ünïcode', 'plain ünïcode'],
    ['array body', [1, 'two'], '[1,"two"]'],
  ];
  for (const [name, input, expected] of cases) {
    test(name, () => {
      const [e] = normalizeReceivedEvents([{ ...base, body: input, properties: { tenantId: 3 } }], sdkCtx);
      assert.equal(e?.body.toString('utf8'), expected);
      assert.deepEqual(e?.properties, { tenantId: 3 });
      assert.deepEqual(e?.source, {
        hub: 'clickstream',
        consumerGroup: 'hubsink',
        partitionId: '2',
        sequenceNumber: 12,
        offset: '4096',
        enqueuedTime: new Date('2024-03-01T10:00:00Z'),
      });
    });
  }

  test('numeric offset becomes a string, partition key kept, null partition key absent, no properties → {}', () => {
    const [a, b] = normalizeReceivedEvents(
      [
        { ...base, body: Buffer.from('1'), offset: 777, partitionKey: '42' },
        { ...base, body: Buffer.from('2'), partitionKey: null },
      ],
      sdkCtx,
    );
    assert.equal(a?.source.offset, '777');
    assert.equal(a?.source.partitionKey, '42');
    assert.equal(Object.hasOwn(b?.source ?? {}, 'partitionKey'), false);
    assert.deepEqual(b?.properties, {});
  });
});
