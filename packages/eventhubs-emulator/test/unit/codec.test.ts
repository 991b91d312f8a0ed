import { test } from 'vitest';
import assert from 'node:assert/strict';
import rhea from 'rhea';
import {
  AmqpDecodeError,
  Section,
  encodeLong,
  encodeMapFromPairs,
  encodeSection,
  encodeString,
  encodeSymbol,
  encodeTimestamp,
  readMapEntries,
  splitSections,
  valueEnd,
} from '../../src/amqpCodec.js';
import { decodeEnvelope, prepareEvent, runtimeInfoSection, stampEvent } from '../../src/eventCodec.js';

// rhea's section builders are untyped; these give them a type.
const dataSection = (b: Buffer): unknown => rhea.message.data_section(b) as unknown;
const dataSections = (bs: Buffer[]): unknown => rhea.message.data_sections(bs) as unknown;

const { message, types } = rhea;

interface Decoded {
  body: unknown;
  application_properties?: Record<string, unknown>;
  message_annotations?: Record<string, unknown>;
  delivery_annotations?: Record<string, unknown>;
  message_id?: unknown;
  content_type?: string;
  durable?: boolean;
}
const decode = (b: Buffer): Decoded => message.decode(b) as unknown as Decoded;

test('valueEnd skips every width class, described values included', () => {
  const samples: unknown[] = [
    types.wrap_ubyte(7),
    types.wrap_short(-2),
    types.wrap_uint(70000),
    types.wrap_long(2 ** 40),
    types.wrap_uuid(Buffer.alloc(16, 1)),
    types.wrap_string('x'.repeat(300)),
    types.wrap_binary(Buffer.alloc(3)),
    types.wrap_list([1, 'a', null]),
    types.wrap_map({ a: 1, b: [1, 2] }),
    types.wrap_array([1, 2, 3], 0x71, undefined),
    types.wrap_described('s', 0x468c00000004),
    types.wrap_boolean(true),
  ];
  // Each encoded by rhea as an amqp-value body, cut out of its message, laid end to end.
  const valueBytes = (v: unknown): Buffer => {
    const m = message.encode({ body: v });
    const body = splitSections(m).find((s) => s.code === Section.amqpValue);
    assert.ok(body);
    return m.subarray(body.valueStart, body.end);
  };
  const buf = Buffer.concat([...samples.map(valueBytes), valueBytes(types.wrap_string('end'))]);
  let pos = 0;
  for (let i = 0; i < samples.length; i++) pos = valueEnd(buf, pos);
  assert.equal(buf.toString('utf8', pos + 2), 'end');
  assert.throws(() => valueEnd(buf.subarray(0, buf.length - 1), pos), AmqpDecodeError);
});

test('encoders produce what a standard AMQP decoder reads back with the right types', () => {
  const pairs = Buffer.concat([
    encodeSymbol('seq'),
    encodeLong(2 ** 40 + 3),
    encodeSymbol('off'),
    encodeString('é'.repeat(200)),
    encodeSymbol('t'),
    encodeTimestamp(1_700_000_000_123),
  ]);
  const bytes = Buffer.concat([encodeSection(Section.messageAnnotations, encodeMapFromPairs(pairs, 3)), message.encode({ body: 'b' })]);
  const d = decode(bytes);
  // A long decodes to a number, a timestamp to a Date: the decoder saw the intended types.
  assert.deepEqual(d.message_annotations, { seq: 2 ** 40 + 3, off: 'é'.repeat(200), t: new Date(1_700_000_000_123) });
});

test('a batch envelope decodes into its events and the envelope partition key', () => {
  const events = [
    message.encode({ body: dataSection(Buffer.from([1, 2])), message_annotations: { 'x-opt-partition-key': 'k' } }),
    message.encode({ body: dataSection(Buffer.from('two')), application_properties: { a: 1 } }),
  ];
  const envelope = message.encode({ body: dataSections(events), message_annotations: { 'x-opt-partition-key': 'k' } });
  const env = decodeEnvelope(envelope);
  assert.equal(env.partitionKey, 'k');
  assert.equal(env.events.length, 2);
  assert.deepEqual(env.events[0], events[0]);
  assert.deepEqual(env.events[1], events[1]);
  assert.throws(() => decodeEnvelope(message.encode({ body: 'just a value' })), AmqpDecodeError);
});

test('stamping adds the service annotations and keeps every other section byte for byte', () => {
  const raw = message.encode({
    durable: true,
    delivery_annotations: { hop: 1 },
    message_annotations: { 'x-opt-partition-key': 'tenant-9', custom: types.wrap_short(5), 'x-opt-sequence-number': 999 },
    message_id: 'm-1',
    content_type: 'application/json',
    application_properties: { n: types.wrap_ubyte(3), s: 'text', bin: Buffer.from([0, 255]) },
    body: dataSection(Buffer.from([0xde, 0xad, 0xbe, 0xef])),
  });
  const prepared = prepareEvent(raw);
  assert.equal(prepared.partitionKey, 'tenant-9');
  const { head, tail } = stampEvent(prepared, { sequenceNumber: 41, offset: 'o-41', enqueuedTimeMs: 1_700_000_000_000, partitionKey: 'ignored' });
  const out = Buffer.concat([head, tail]);
  const d = decode(out);
  assert.equal(d.durable, true);
  assert.equal(d.delivery_annotations, undefined, 'delivery annotations are per hop');
  assert.deepEqual(d.message_annotations, {
    'x-opt-partition-key': 'tenant-9',
    custom: 5,
    'x-opt-sequence-number': 41,
    'x-opt-offset': 'o-41',
    'x-opt-enqueued-time': new Date(1_700_000_000_000),
  });
  // Sections after the annotations are the producer's bytes.
  const sectionBytes = (b: Buffer, code: number): Buffer[] =>
    splitSections(b)
      .filter((s) => s.code === code)
      .map((s) => b.subarray(s.start, s.end));
  for (const code of [Section.header, Section.properties, Section.applicationProperties, Section.data]) {
    assert.deepEqual(sectionBytes(out, code), sectionBytes(raw, code), `section 0x${code.toString(16)}`);
  }
  // Annotation types survive: the producer's short stays a short.
  const ma = splitSections(out).find((s) => s.code === Section.messageAnnotations);
  const custom = readMapEntries(out, ma?.valueStart ?? -1).find((e) => e.key === 'custom');
  assert.equal(out[custom?.valueStart ?? -1], 0x61);
});

test('an event without its own key gets the envelope key stamped; events need a body', () => {
  const prepared = prepareEvent(message.encode({ body: dataSection(Buffer.from('x')) }));
  const { head, tail } = stampEvent(prepared, { sequenceNumber: 0, offset: '0', enqueuedTimeMs: 1, partitionKey: 'from-envelope' });
  assert.equal(decode(Buffer.concat([head, tail])).message_annotations?.['x-opt-partition-key'], 'from-envelope');
  assert.throws(() => prepareEvent(Buffer.alloc(0)), AmqpDecodeError);
  assert.throws(() => prepareEvent(Buffer.from([0x00, 0x53, 0x73, 0x45])), AmqpDecodeError);
});

test('runtime info delivery annotations carry longs, strings and timestamps', () => {
  const section = runtimeInfoSection({ lastSequenceNumber: 7, lastOffset: '123', lastEnqueuedTimeMs: 5000, retrievalTimeMs: 6000 });
  const d = decode(Buffer.concat([section, message.encode({ body: dataSection(Buffer.from('x')) })]));
  assert.deepEqual(d.delivery_annotations, {
    last_enqueued_sequence_number: 7,
    last_enqueued_offset: '123',
    last_enqueued_time_utc: new Date(5000),
    runtime_info_retrieval_time_utc: new Date(6000),
  });
});
