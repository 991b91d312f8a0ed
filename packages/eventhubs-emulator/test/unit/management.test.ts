import { test } from 'vitest';
import assert from 'node:assert/strict';
import rhea from 'rhea';
import { prepareEvent } from '../../src/eventCodec.js';
import { FaultPlan } from '../../src/faults.js';
import { createHub, parseAddress, validateHubSpec, type Hub } from '../../src/hubs.js';
import { handleManagementRequest } from '../../src/management.js';

// rhea's section builders are untyped; these give them a type.
const dataSection = (b: Buffer): unknown => rhea.message.data_section(b) as unknown;

const { message } = rhea;

/** What a client decodes from a reply body (encode + decode through a standard AMQP codec). */
function roundTrip(body: unknown): Record<string, unknown> {
  return message.decode(message.encode({ body })).body as Record<string, unknown>;
}

function hubWithEvents(): Hub {
  let t = 1_700_000_000_000;
  const hub = createHub({ name: 'Clicks', partitions: 3, consumerGroups: ['replay'] }, { opaqueOffsets: false, retention: undefined, now: () => t++ });
  hub.partitions[1]?.append([prepareEvent(message.encode({ body: dataSection(Buffer.from('x')) }))], undefined);
  return hub;
}

const find = (hub: Hub) => (name: string) => (name.toLowerCase() === hub.name.toLowerCase() ? hub : undefined);

test('hub READ returns the name, creation time and partition ids as an array of strings', () => {
  const hub = hubWithEvents();
  const reply = handleManagementRequest({ operation: 'READ', type: 'com.microsoft:eventhub', name: 'clicks', partition: undefined }, find(hub));
  assert.equal(reply.status, 200);
  const body = roundTrip(reply.body);
  assert.equal(body.name, 'Clicks');
  assert.deepEqual(body.partition_ids, ['0', '1', '2']);
  assert.ok(body.created_at instanceof Date);
  assert.equal(body.created_at.getTime(), hub.createdAtMs);
});

test('partition READ returns longs, a string offset, a timestamp and emptiness', () => {
  const hub = hubWithEvents();
  const read = (partition: string): Record<string, unknown> => {
    const r = handleManagementRequest({ operation: 'READ', type: 'com.microsoft:partition', name: 'Clicks', partition }, find(hub));
    assert.equal(r.status, 200);
    return roundTrip(r.body);
  };
  const busy = read('1');
  assert.equal(busy.partition, '1');
  assert.equal(busy.begin_sequence_number, 0);
  assert.equal(busy.last_enqueued_sequence_number, 0);
  assert.equal(busy.last_enqueued_offset, '0');
  assert.equal((busy.last_enqueued_time_utc as Date).getTime(), hub.partitions[1]?.last()?.enqueuedTimeMs);
  assert.equal(busy.is_partition_empty, false);
  const empty = read('2');
  assert.equal(empty.last_enqueued_sequence_number, -1);
  assert.equal(empty.last_enqueued_offset, '-1');
  assert.equal(empty.is_partition_empty, true);
});

test('errors: unknown partition, unknown hub, unknown operation', () => {
  const hub = hubWithEvents();
  const bad = handleManagementRequest({ operation: 'READ', type: 'com.microsoft:partition', name: 'Clicks', partition: '9' }, find(hub));
  assert.deepEqual([bad.status, bad.condition], [400, 'com.microsoft:argument-out-of-range']);
  const noHub = handleManagementRequest({ operation: 'READ', type: 'com.microsoft:eventhub', name: 'other', partition: undefined }, find(hub));
  assert.deepEqual([noHub.status, noHub.condition], [404, 'amqp:not-found']);
  const op = handleManagementRequest({ operation: 'DELETE', type: 'com.microsoft:eventhub', name: 'Clicks', partition: undefined }, find(hub));
  assert.deepEqual([op.status, op.condition], [501, 'amqp:not-implemented']);
});

test('hub specs are validated and $Default always exists', () => {
  const hub = hubWithEvents();
  assert.deepEqual([...hub.consumerGroups.values()], ['$Default', 'replay']);
  assert.throws(() => validateHubSpec({ name: 'bad name', partitions: 1 }), RangeError);
  assert.throws(() => validateHubSpec({ name: 'ok', partitions: 0 }), RangeError);
  assert.throws(() => validateHubSpec({ name: 'ok', partitions: 1, consumerGroups: ['no/slash'] }), RangeError);
});

test('link addresses parse into what they name', () => {
  assert.deepEqual(parseAddress('$cbs'), { kind: 'cbs' });
  assert.deepEqual(parseAddress('$management'), { kind: 'management' });
  assert.deepEqual(parseAddress('hub'), { kind: 'hub', hub: 'hub' });
  assert.deepEqual(parseAddress('hub/Partitions/2'), { kind: 'partition', hub: 'hub', partitionId: '2' });
  assert.deepEqual(parseAddress('hub/ConsumerGroups/$Default/Partitions/0'), { kind: 'consumer', hub: 'hub', consumerGroup: '$Default', partitionId: '0' });
  assert.deepEqual(parseAddress('amqps://ns.example/hub/Partitions/1'), { kind: 'partition', hub: 'hub', partitionId: '1' });
  assert.equal(parseAddress('hub/Other/1').kind, 'unknown');
});

test('planned send rejections are consumed one by one, per hub, case-insensitively', () => {
  const plan = new FaultPlan();
  plan.rejectNextSends('Hub', 2);
  assert.equal(plan.takeSendRejection('other'), undefined);
  assert.equal(plan.takeSendRejection('hub'), 'com.microsoft:server-busy');
  plan.rejectNextSends('x', 1, 'amqp:internal-error');
  assert.equal(plan.takeSendRejection('HUB'), 'com.microsoft:server-busy');
  assert.equal(plan.takeSendRejection('hub'), undefined);
  assert.equal(plan.takeSendRejection('x'), 'amqp:internal-error');
  plan.delayDeliveries(50);
  plan.rejectNextSends('hub', 5);
  plan.clear();
  assert.equal(plan.deliveryDelayMs, 0);
  assert.equal(plan.takeSendRejection('hub'), undefined);
  assert.throws(() => plan.rejectNextSends('hub', -1), RangeError);
});
