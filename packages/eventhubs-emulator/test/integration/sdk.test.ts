/**
 * The emulator driven by the real @azure/event-hubs client: properties, publishing and routing,
 * size limits, start positions, authorization and error mapping.
 */
import { beforeAll, describe, test } from 'vitest';
import assert from 'node:assert/strict';
import {
  EventHubBufferedProducerClient,
  EventHubConsumerClient,
  EventHubProducerClient,
  earliestEventPosition,
  latestEventPosition,
  type EventPosition,
  type ReceivedEventData,
  type Subscription,
} from '@azure/event-hubs';
import { partitionForKey, type Emulator } from '../../src/index.js';
import { createSasToken } from '../../src/sas.js';
import { retryOptions, useEmulator, waitFor } from '../support.js';


/** The SDK's error code; after retries the SDK throws an AggregateError of the attempts' errors. */
function errorCode(err: unknown): string | undefined {
  if (err instanceof AggregateError) {
    const codes = new Set(err.errors.map(errorCode));
    return codes.size === 1 ? [...codes][0] : `mixed: ${[...codes].join(',')}`;
  }
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;
}

interface Received {
  partitionId: string;
  event: ReceivedEventData;
}

/** Subscribes to one partition and collects what arrives. */
function collect(
  consumer: EventHubConsumerClient,
  partitionId: string,
  startPosition: EventPosition,
): { events: Received[]; errors: unknown[]; sub: Subscription } {
  const events: Received[] = [];
  const errors: unknown[] = [];
  const sub = consumer.subscribe(
    partitionId,
    {
      processEvents: async (batch, ctx) => {
        for (const event of batch) events.push({ partitionId: ctx.partitionId, event });
        await Promise.resolve();
      },
      processError: async (err) => {
        errors.push(err);
        await Promise.resolve();
      },
    },
    { startPosition, maxWaitTimeInSeconds: 1, maxBatchSize: 50 },
  );
  return { events, errors, sub };
}

describe('emulator with the real Event Hubs SDK', () => {
  const fx = useEmulator();
  const { track, freshHub } = fx;
  let emu: Emulator;
  beforeAll(() => {
    emu = fx.emu;
  });

  test('hub and partition properties have the service types', async () => {
    const hub = freshHub(4);
    const producer = track(new EventHubProducerClient(emu.connectionString(hub), { retryOptions }));
    const props = await producer.getEventHubProperties();
    assert.equal(props.name, hub);
    assert.deepEqual(props.partitionIds, ['0', '1', '2', '3']);
    assert.ok(props.createdOn instanceof Date && !Number.isNaN(props.createdOn.getTime()));
    assert.deepEqual(await producer.getPartitionIds(), ['0', '1', '2', '3']);

    const empty = await producer.getPartitionProperties('2');
    assert.equal(empty.isEmpty, true);
    assert.equal(empty.lastEnqueuedSequenceNumber, -1);
    assert.equal(empty.partitionId, '2');
    assert.equal(empty.eventHubName, hub);

    await producer.sendBatch([{ body: 'a' }, { body: 'b' }], { partitionId: '2' });
    const p = await producer.getPartitionProperties('2');
    assert.equal(p.isEmpty, false);
    assert.equal(p.beginningSequenceNumber, 0);
    assert.equal(p.lastEnqueuedSequenceNumber, 1);
    assert.equal(typeof p.lastEnqueuedOffset, 'string');
    assert.ok(p.lastEnqueuedOnUtc instanceof Date && p.lastEnqueuedOnUtc.getTime() > 0);
    const stored = emu.partitionEvents(hub, '2');
    assert.equal(stored.at(-1)?.offset, p.lastEnqueuedOffset);
  });

  test('a batch goes to one partition; batches without key or partition go round robin', async () => {
    const hub = freshHub(3);
    const producer = track(new EventHubProducerClient(emu.connectionString(hub), { retryOptions }));
    for (let i = 0; i < 3; i++) {
      const batch = await producer.createBatch();
      for (let j = 0; j < 4; j++) assert.equal(batch.tryAdd({ body: `b${i}-e${j}` }), true);
      await producer.sendBatch(batch);
    }
    const perPartition = ['0', '1', '2'].map((id) => emu.partitionEvents(hub, id));
    // Each batch stayed whole, and the three batches used three different partitions.
    for (const events of perPartition) {
      assert.equal(events.length, 4);
      const batchIds = new Set(events.map((e) => e.body.toString().split('-')[0]));
      assert.equal(batchIds.size, 1);
      assert.deepEqual(
        events.map((e) => e.sequenceNumber),
        [0, 1, 2, 3],
      );
    }
  });

  test('same partition key → same partition, stable, and where the SDK itself would place it', async () => {
    const hub = freshHub(4);
    const cs = emu.connectionString(hub);
    const producer = track(new EventHubProducerClient(cs, { retryOptions }));
    const keys = ['tenant-1', 'tenant-2', 'tenant-3', 'tenant-42', 'ü-ñ', ''];
    for (const key of keys) {
      await producer.sendBatch([{ body: `${key}#1` }], { partitionKey: key });
      const batch = await producer.createBatch({ partitionKey: key });
      batch.tryAdd({ body: `${key}#2` });
      await producer.sendBatch(batch);
    }
    const where = new Map<string, Set<string>>();
    for (const id of ['0', '1', '2', '3']) {
      for (const e of emu.partitionEvents(hub, id)) {
        const key = (JSON.parse(e.body.toString()) as string).split('#')[0] as string;
        assert.equal(e.partitionKey, key);
        const set = where.get(key) ?? new Set<string>();
        set.add(id);
        where.set(key, set);
      }
    }
    for (const key of keys) {
      assert.deepEqual([...(where.get(key) ?? [])], [String(partitionForKey(key, 4))], `key ${key}`);
    }
    assert.ok(new Set(keys.map((k) => partitionForKey(k, 4))).size > 1, 'the keys spread over partitions');

    // The buffered producer maps keys to partitions on the client with the service's algorithm and
    // then sends to explicit partitions: it must agree with the emulator's placement.
    const buffered = track(
      new EventHubBufferedProducerClient(cs, {
        retryOptions,
        maxWaitTimeInMs: 50,
        onSendEventsErrorHandler: () => undefined,
      }),
    );
    for (const key of keys) await buffered.enqueueEvent({ body: `${key}#buffered` }, { partitionKey: key });
    await buffered.flush();
    for (const key of keys) {
      const id = String(partitionForKey(key, 4));
      assert.ok(
        emu.partitionEvents(hub, id).some((e) => e.body.toString() === JSON.stringify(`${key}#buffered`)),
        `buffered producer placed '${key}' on partition ${id}`,
      );
    }
  });

  test('send by partition id', async () => {
    const hub = freshHub(2);
    const producer = track(new EventHubProducerClient(emu.connectionString(hub), { retryOptions }));
    await producer.sendBatch([{ body: 'one' }], { partitionId: '1' });
    const batch = await producer.createBatch({ partitionId: '1' });
    batch.tryAdd({ body: 'two' });
    await producer.sendBatch(batch);
    assert.deepEqual(
      emu.partitionEvents(hub, '1').map((e) => e.body.toString()),
      ['"one"', '"two"'],
    );
    assert.equal(emu.partitionEvents(hub, '0').length, 0);
  });

  test('oversize: tryAdd refuses, and an oversize send fails with MessageTooLargeError', async () => {
    const hub = freshHub(1);
    const producer = track(new EventHubProducerClient(emu.connectionString(hub), { retryOptions }));
    const batch = await producer.createBatch();
    assert.equal(batch.maxSizeInBytes, 1024 * 1024);
    assert.equal(batch.tryAdd({ body: Buffer.alloc(1024 * 1024 + 1) }), false);
    assert.equal(batch.tryAdd({ body: Buffer.alloc(1000) }), true);
    await assert.rejects(producer.sendBatch([{ body: Buffer.alloc(1024 * 1024 + 10) }]), (err) => {
      assert.equal(errorCode(err), 'MessageTooLargeError');
      return true;
    });
    assert.equal(emu.partitionEvents(hub, '0').length, 0);
  });

  test('subscribe from earliest, latest, sequence number and enqueued time: exact, ordered, byte-identical', async () => {
    const hub = freshHub(2);
    const cs = emu.connectionString(hub);
    const producer = track(new EventHubProducerClient(cs, { retryOptions }));
    const sent = Array.from({ length: 12 }, (_, i) => ({
      body: Buffer.from([i, 0, 255, 0x80 + i]),
      properties: { i, tenant: `t${i % 3}`, flag: i % 2 === 0, bin: Buffer.from([9, i]) },
    }));
    await producer.sendBatch(sent.slice(0, 6), { partitionId: '0' });
    await producer.sendBatch(sent.slice(6), { partitionId: '0' });
    const stored = emu.partitionEvents(hub, '0');
    assert.equal(stored.length, 12);
    // The emulator's promise (src/partitionLog.ts): a batch has one enqueued time, and the
    // next batch on the partition is at least 1 ms later, so a time position separates them.
    const times = stored.map((e) => e.enqueuedTime.getTime());
    assert.equal(new Set(times.slice(0, 6)).size, 1, 'the first batch shares one enqueued time');
    assert.equal(new Set(times.slice(6)).size, 1, 'the second batch shares one enqueued time');
    assert.ok((times[6] as number) >= (times[5] as number) + 1, `the second batch is at least 1 ms later: ${times[5]} then ${times[6]}`);

    // A client allows one subscriber per partition, so each start position gets its own client.
    const consumer = (): EventHubConsumerClient => track(new EventHubConsumerClient('$Default', cs, { retryOptions }));
    const fromEarliest = collect(consumer(), '0', earliestEventPosition);
    await waitFor('12 events from earliest', () => fromEarliest.events.length >= 12);
    assert.deepEqual(
      fromEarliest.events.map((r) => r.event.sequenceNumber),
      [...Array(12).keys()],
    );
    fromEarliest.events.forEach((r, i) => {
      assert.deepEqual(r.event.body, sent[i]?.body);
      // The raw AMQP message shows the application properties as sent (the SDK's `properties`
      // view turns binary values into plain objects, against the service too).
      assert.deepEqual(r.event.getRawAmqpMessage().applicationProperties, sent[i]?.properties);
      assert.equal(r.event.offset, stored[i]?.offset);
      assert.equal(typeof r.event.offset, 'string');
      assert.equal(r.event.enqueuedTimeUtc.getTime(), stored[i]?.enqueuedTime.getTime());
    });

    const fromSeq = collect(consumer(), '0', { sequenceNumber: 7 });
    const fromSeqInclusive = collect(consumer(), '0', { sequenceNumber: 7, isInclusive: true });
    const fromOffset = collect(consumer(), '0', { offset: stored[9]?.offset as string });
    const sixthTime = stored[6]?.enqueuedTime as Date;
    const fromTime = collect(consumer(), '0', { enqueuedOn: new Date(sixthTime.getTime() - 1) });
    const fromLatest = collect(consumer(), '0', latestEventPosition);
    await waitFor('positioned subscribers', () => fromSeq.events.length >= 4 && fromSeqInclusive.events.length >= 5 && fromOffset.events.length >= 2 && fromTime.events.length >= 6);
    // Give the latest-position subscriber time to attach before publishing.
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(fromLatest.events.length, 0);
    await producer.sendBatch([{ body: 'late', properties: { late: true } }], { partitionId: '0' });
    await waitFor('the late event', () => fromLatest.events.length >= 1 && fromEarliest.events.length >= 13);

    const seqs = (c: { events: Received[] }): number[] => c.events.map((r) => r.event.sequenceNumber);
    assert.deepEqual(seqs(fromSeq), [8, 9, 10, 11, 12]);
    assert.deepEqual(seqs(fromSeqInclusive), [7, 8, 9, 10, 11, 12]);
    assert.deepEqual(seqs(fromOffset), [10, 11, 12]);
    assert.deepEqual(seqs(fromTime), [6, 7, 8, 9, 10, 11, 12]);
    assert.deepEqual(seqs(fromLatest), [12]);
    assert.equal(fromLatest.events[0]?.event.body, 'late');
    for (const c of [fromEarliest, fromSeq, fromSeqInclusive, fromOffset, fromTime, fromLatest]) {
      assert.deepEqual(c.errors, []);
      await c.sub.close();
    }
  });

  test('a wrong key is refused with UnauthorizedError', async () => {
    const hub = freshHub(1);
    const bad = emu.connectionString(hub).replace(/SharedAccessKey=[^;]+/, 'SharedAccessKey=not-the-key');
    const producer = track(new EventHubProducerClient(bad, { retryOptions }));
    await assert.rejects(producer.getEventHubProperties(), (err) => {
      assert.equal(errorCode(err), 'UnauthorizedError');
      return true;
    });
    await assert.rejects(producer.sendBatch([{ body: 'x' }]), (err) => {
      assert.equal(errorCode(err), 'UnauthorizedError');
      return true;
    });
    assert.equal(emu.partitionEvents(hub, '0').length, 0);
  });

  test('SharedAccessSignature connection strings: a valid token works, an expired one is refused', async () => {
    const hub = freshHub(1);
    const endpoint = `sb://127.0.0.1:${emu.port}`;
    const nowSec = Math.floor(Date.now() / 1000);
    const withToken = (token: string): string => `Endpoint=${endpoint};SharedAccessSignature=${token};EntityPath=${hub};UseDevelopmentEmulator=true`;
    const valid = track(new EventHubProducerClient(withToken(createSasToken(`${endpoint}/${hub}`, 'RootManageSharedAccessKey', 'SAS_KEY_VALUE', nowSec + 600)), { retryOptions }));
    await valid.sendBatch([{ body: 'signed' }]);
    assert.equal(emu.partitionEvents(hub, '0').length, 1);
    const expired = track(new EventHubProducerClient(withToken(createSasToken(`${endpoint}/${hub}`, 'RootManageSharedAccessKey', 'SAS_KEY_VALUE', nowSec - 1)), { retryOptions }));
    await assert.rejects(expired.sendBatch([{ body: 'late' }]), (err) => {
      assert.equal(errorCode(err), 'UnauthorizedError');
      return true;
    });
    // A token for another hub does not grant this one.
    const other = track(new EventHubProducerClient(withToken(createSasToken(`${endpoint}/other-hub`, 'RootManageSharedAccessKey', 'SAS_KEY_VALUE', nowSec + 600)), { retryOptions }));
    await assert.rejects(other.sendBatch([{ body: 'elsewhere' }]), (err) => {
      assert.equal(errorCode(err), 'UnauthorizedError');
      return true;
    });
    assert.equal(emu.partitionEvents(hub, '0').length, 1);
  });

  test('reset clears events and numbering; deleteHub makes the hub unknown', async () => {
    const hub = freshHub(2);
    const producer = track(new EventHubProducerClient(emu.connectionString(hub), { retryOptions }));
    await producer.sendBatch([{ body: 1 }, { body: 2 }], { partitionId: '1' });
    emu.reset();
    assert.equal(emu.partitionEvents(hub, '1').length, 0);
    const props = await producer.getPartitionProperties('1');
    assert.equal(props.isEmpty, true);
    await producer.sendBatch([{ body: 3 }], { partitionId: '1' });
    assert.deepEqual(
      emu.partitionEvents(hub, '1').map((e) => e.sequenceNumber),
      [0],
    );
    assert.throws(() => emu.createHub({ name: hub.toUpperCase(), partitions: 1 }), /already exists/);
    emu.deleteHub(hub);
    assert.throws(() => emu.partitionEvents(hub, '0'), /no event hub/);
    const late = track(new EventHubProducerClient(`Endpoint=sb://127.0.0.1:${emu.port};SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=SAS_KEY_VALUE;EntityPath=${hub};UseDevelopmentEmulator=true`, { retryOptions }));
    await assert.rejects(late.getEventHubProperties(), (err) => {
      assert.equal(errorCode(err), 'MessagingEntityNotFoundError');
      return true;
    });
  });

  test('an unknown partition is ArgumentOutOfRangeError', async () => {
    const hub = freshHub(2);
    const producer = track(new EventHubProducerClient(emu.connectionString(hub), { retryOptions }));
    await assert.rejects(producer.getPartitionProperties('7'), (err) => {
      assert.equal(errorCode(err), 'ArgumentOutOfRangeError');
      return true;
    });
    await assert.rejects(producer.sendBatch([{ body: 'x' }], { partitionId: '7' }), (err) => {
      assert.equal(errorCode(err), 'ArgumentOutOfRangeError');
      return true;
    });
  });

  test('an unknown consumer group is refused; a declared one works', async () => {
    const hub = freshHub(1, ['replay']);
    const cs = emu.connectionString(hub);
    const producer = track(new EventHubProducerClient(cs, { retryOptions }));
    await producer.sendBatch([{ body: 'x' }]);
    const unknown = track(new EventHubConsumerClient('no-such-group', cs, { retryOptions }));
    const bad = collect(unknown, '0', earliestEventPosition);
    await waitFor('an error for the unknown consumer group', () => bad.errors.length > 0);
    assert.equal(bad.events.length, 0);
    assert.match(String((bad.errors[0] as Error).message), /no-such-group|could not be found/);
    await bad.sub.close();

    const declared = track(new EventHubConsumerClient('replay', cs, { retryOptions }));
    const good = collect(declared, '0', earliestEventPosition);
    await waitFor('the event in the declared group', () => good.events.length === 1);
    assert.deepEqual(good.errors, []);
    await good.sub.close();
  });

  test('server-busy rejections are retried by the SDK and the event is stored once', async () => {
    const hub = freshHub(1);
    const producer = track(new EventHubProducerClient(emu.connectionString(hub), { retryOptions }));
    await producer.getPartitionIds();
    emu.faults.rejectNextSends(hub, 2);
    await producer.sendBatch([{ body: 'persistent' }]);
    assert.deepEqual(
      emu.partitionEvents(hub, '0').map((e) => e.body.toString()),
      ['"persistent"'],
    );
    emu.faults.rejectNextSends(hub, 10);
    await assert.rejects(producer.sendBatch([{ body: 'gives up' }]), (err) => {
      assert.equal(errorCode(err), 'ServerBusyError');
      return true;
    });
    emu.faults.clear();
    assert.equal(emu.partitionEvents(hub, '0').length, 1);
  });
});
