import { test } from 'vitest';
import assert from 'node:assert/strict';
import rhea from 'rhea';
import { prepareEvent, type PreparedEvent } from '../../src/eventCodec.js';
import { FilterError, parseSelector, resolveStart } from '../../src/filters.js';
import { PartitionLog, SEGMENT_BYTES } from '../../src/partitionLog.js';

// rhea's section builders are untyped; these give them a type.
const dataSection = (b: Buffer): unknown => rhea.message.data_section(b) as unknown;

const ev = (body: string): PreparedEvent => prepareEvent(rhea.message.encode({ body: dataSection(Buffer.from(body)) }));

/** A clock the test moves by hand. */
function clock(start: number): { now: () => number; set(ms: number): void } {
  let t = start;
  return { now: () => t, set: (ms) => (t = ms) };
}

test('sequence numbers start at 0, numeric offsets are byte positions, times never go backwards (a later batch is 1 ms later)', () => {
  const c = clock(1000);
  const log = new PartitionLog({ partitionId: '3', now: c.now });
  assert.equal(log.beginSequenceNumber, 0);
  assert.equal(log.endSequenceNumber, 0);
  const a = log.append([ev('a'), ev('bb')], undefined);
  c.set(500); // the wall clock stepping back must not reorder enqueued times
  const b = log.append([ev('ccc')], 'key');
  assert.deepEqual(
    [...a, ...b].map((e) => e.sequenceNumber),
    [0, 1, 2],
  );
  assert.deepEqual(
    [...a, ...b].map((e) => e.enqueuedTimeMs),
    [1000, 1000, 1001],
  );
  assert.equal(a[0]?.offset, '0');
  assert.equal(Number(a[1]?.offset), a[0]?.bytes.length);
  assert.equal(b[0]?.partitionKey, 'key');
  assert.equal(log.sequenceOfOffset(a[1]?.offset ?? ''), 1);
  assert.equal(log.sequenceOfOffset('1'), undefined, 'an offset inside an event was never issued');
  assert.equal(log.sequenceOfOffset('999999'), undefined);
});

test('opaque offsets are not numbers and still resolve', () => {
  const log = new PartitionLog({ partitionId: '0', opaqueOffsets: true });
  const [first, second] = log.append([ev('a'), ev('b')], undefined);
  for (const o of [first?.offset, second?.offset]) {
    assert.equal(typeof o, 'string');
    assert.ok(Number.isNaN(Number(o)) && Number.isNaN(parseInt(o ?? '', 10)));
  }
  assert.equal(log.sequenceOfOffset(second?.offset ?? ''), 1);
  assert.equal(log.sequenceOfOffset('eo.1.p7'), undefined, 'another partition’s offset');
  assert.equal(log.sequenceOfOffset('0'), undefined);
});

test('retention by count and by bytes drops the oldest events but always keeps the newest', () => {
  const byCount = new PartitionLog({ partitionId: '0', retention: { maxEventsPerPartition: 3 } });
  for (let i = 0; i < 10; i++) byCount.append([ev(`e${i}`)], undefined);
  assert.equal(byCount.size, 3);
  assert.equal(byCount.beginSequenceNumber, 7);
  assert.equal(byCount.get(6), undefined);
  assert.equal(byCount.get(9)?.sequenceNumber, 9);

  const one = ev('x'.repeat(100));
  const size = one.head.length + one.rest.length + 100; // comfortably more than one event
  const byBytes = new PartitionLog({ partitionId: '0', retention: { maxBytesPerPartition: size } });
  for (let i = 0; i < 5; i++) byBytes.append([ev('x'.repeat(100))], undefined);
  assert.ok(byBytes.bytes <= size);
  assert.ok(byBytes.size >= 1 && byBytes.size < 5);
  const huge = new PartitionLog({ partitionId: '0', retention: { maxBytesPerPartition: 1 } });
  huge.append([ev('bigger than the limit')], undefined);
  assert.equal(huge.size, 1);
  assert.throws(() => new PartitionLog({ partitionId: '0', retention: { maxEventsPerPartition: 0 } }), RangeError);
});

test('retention stays bounded over many appends (compaction)', () => {
  const log = new PartitionLog({ partitionId: '0', retention: { maxEventsPerPartition: 10 } });
  for (let i = 0; i < 5000; i++) log.append([ev('e')], undefined);
  assert.equal(log.size, 10);
  assert.deepEqual(
    log.all().map((e) => e.sequenceNumber),
    Array.from({ length: 10 }, (_, i) => 4990 + i),
  );
  assert.equal(log.get(4995)?.sequenceNumber, 4995);
});

test('selector filters parse as the SDK writes them', () => {
  assert.deepEqual(parseSelector("amqp.annotation.x-opt-offset > '-1'"), { kind: 'offset', offset: '-1', inclusive: false });
  assert.deepEqual(parseSelector("amqp.annotation.x-opt-offset >= 'eo.a.p0'"), { kind: 'offset', offset: 'eo.a.p0', inclusive: true });
  assert.deepEqual(parseSelector("amqp.annotation.x-opt-sequence-number > '41'"), { kind: 'sequence', sequenceNumber: 41, inclusive: false });
  assert.deepEqual(parseSelector("amqp.annotation.x-opt-enqueued-time > '1700000000000'"), { kind: 'time', ms: 1_700_000_000_000, inclusive: false });
  assert.throws(() => parseSelector("amqp.annotation.x-opt-sequence-number > 'x'"), FilterError);
  assert.throws(() => parseSelector('color = red'), (e: unknown) => e instanceof FilterError && e.condition === 'amqp:not-implemented');
});

test('a batch shares one enqueued time; distinct batches are at least 1 ms apart, also within one clock millisecond', () => {
  const c = clock(5000);
  const log = new PartitionLog({ partitionId: '0', now: c.now });
  const first = log.append([ev('a'), ev('b'), ev('c')], undefined);
  const second = log.append([ev('d'), ev('e')], undefined); // same clock millisecond
  const third = log.append([ev('f')], undefined); // and again
  c.set(5100);
  const fourth = log.append([ev('g')], undefined); // the clock moved on: its time is used as is
  c.set(5100);
  const fifth = log.append([ev('h')], undefined);
  assert.deepEqual(first.map((e) => e.enqueuedTimeMs), [5000, 5000, 5000]);
  assert.deepEqual(second.map((e) => e.enqueuedTimeMs), [5001, 5001]);
  assert.deepEqual(third.map((e) => e.enqueuedTimeMs), [5002]);
  assert.deepEqual(fourth.map((e) => e.enqueuedTimeMs), [5100]);
  assert.deepEqual(fifth.map((e) => e.enqueuedTimeMs), [5101]);
  // So a time position just before a batch starts exactly at that batch.
  assert.equal(resolveStart(log, parseSelector(`amqp.annotation.x-opt-enqueued-time > '${5001 - 1}'`)), 3);
  assert.equal(resolveStart(log, parseSelector(`amqp.annotation.x-opt-enqueued-time > '${5002 - 1}'`)), 5);
});

test('start positions resolve against the log: earliest, latest, offsets, sequence numbers, times', () => {
  const c = clock(100);
  const log = new PartitionLog({ partitionId: '0', now: c.now });
  log.append([ev('a'), ev('b')], undefined); // seq 0,1 at t=100
  c.set(200);
  log.append([ev('c')], undefined); // seq 2 at t=200
  c.set(300);
  log.append([ev('d')], undefined); // seq 3 at t=300
  const at = (expr: string): number => resolveStart(log, parseSelector(expr));
  assert.equal(at("amqp.annotation.x-opt-offset > '-1'"), 0);
  assert.equal(at("amqp.annotation.x-opt-offset > '@latest'"), 4);
  const off2 = log.get(2)?.offset ?? '';
  assert.equal(at(`amqp.annotation.x-opt-offset > '${off2}'`), 3);
  assert.equal(at(`amqp.annotation.x-opt-offset >= '${off2}'`), 2);
  assert.equal(at("amqp.annotation.x-opt-sequence-number > '1'"), 2);
  assert.equal(at("amqp.annotation.x-opt-sequence-number >= '1'"), 1);
  assert.equal(at("amqp.annotation.x-opt-sequence-number > '3'"), 4, 'just after the last is the live edge');
  assert.throws(() => at("amqp.annotation.x-opt-sequence-number > '4'"), (e: unknown) => e instanceof FilterError && e.condition === 'com.microsoft:argument-out-of-range');
  assert.throws(() => at("amqp.annotation.x-opt-offset > '5'"), FilterError);
  assert.equal(at("amqp.annotation.x-opt-enqueued-time > '99'"), 0);
  assert.equal(at("amqp.annotation.x-opt-enqueued-time > '100'"), 2);
  assert.equal(at("amqp.annotation.x-opt-enqueued-time > '250'"), 3);
  assert.equal(at("amqp.annotation.x-opt-enqueued-time > '300'"), 4);
  assert.equal(resolveStart(log, undefined), 0);
});

test('positions before retention start at the oldest retained event; clear restarts numbering', () => {
  const log = new PartitionLog({ partitionId: '0', retention: { maxEventsPerPartition: 2 } });
  const first = log.append([ev('a')], undefined)[0];
  log.append([ev('b'), ev('c'), ev('d')], undefined);
  assert.equal(resolveStart(log, parseSelector("amqp.annotation.x-opt-sequence-number >= '0'")), 2);
  assert.equal(resolveStart(log, parseSelector(`amqp.annotation.x-opt-offset > '${first?.offset ?? ''}'`)), 2);
  log.clear();
  assert.equal(log.size, 0);
  assert.equal(log.append([ev('z')], undefined)[0]?.sequenceNumber, 0);
});

test('a stored event pins no shared allocation slab or network buffer: it is copied into the log’s own segment', () => {
  const log = new PartitionLog({ partitionId: '0', now: () => 1 });
  // A body cut out of a larger buffer, as events cut out of a network read are.
  const wire = Buffer.alloc(64 * 1024, 0x61);
  const prepared = prepareEvent(rhea.message.encode({ body: dataSection(wire.subarray(0, 300)) }));
  log.append([prepared, ev('small')], undefined);
  const [a, b] = log.all();
  assert.ok(a && b);
  assert.notEqual(a.bytes.buffer, wire.buffer);
  assert.equal(a.bytes.buffer, b.bytes.buffer, 'both in the same segment');
  assert.equal(a.bytes.buffer.byteLength, SEGMENT_BYTES, 'a segment of the log, not an allocation slab');
  assert.equal(log.heldBytes, SEGMENT_BYTES);
});

test('events share segments, and retention frees whole segments: what a partition holds is its bytes plus at most two segments', () => {
  const cap = 4 * SEGMENT_BYTES;
  const log = new PartitionLog({ partitionId: '0', retention: { maxBytesPerPartition: cap } });
  const body = 'x'.repeat(400);
  let appended = 0;
  // About 10 caps' worth, in batches as a producer sends them.
  while (appended * 450 < 10 * cap) {
    log.append(Array.from({ length: 100 }, () => ev(body)), undefined);
    appended += 100;
  }
  const buffers = new Set(log.all().map((e) => e.bytes.buffer));
  assert.ok(log.bytes <= cap);
  assert.ok(log.size > 1000, 'the log holds thousands of events');
  assert.ok(buffers.size <= Math.ceil(cap / SEGMENT_BYTES) + 2, `${log.size} events in ${buffers.size} allocations`);
  assert.equal(log.heldBytes, [...buffers].reduce((n, buf) => n + buf.byteLength, 0), 'heldBytes counts exactly the segments retained events use');
  assert.ok(log.heldBytes <= cap + 2 * SEGMENT_BYTES);
  // An event larger than a segment gets one of its own, exactly its size.
  const [big] = log.append([ev('y'.repeat(SEGMENT_BYTES))], undefined);
  assert.ok(big);
  assert.equal(big.bytes.buffer.byteLength, big.bytes.length);
  log.clear();
  assert.equal(log.heldBytes, 0);
});
