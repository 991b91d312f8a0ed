/**
 * Consuming from the emulator with the real SDK when things go wrong: owner-level steals, forced
 * detaches, dropped connections; plus runtime metrics, opaque offsets and retention.
 */
import { beforeAll, describe, test } from 'vitest';
import assert from 'node:assert/strict';
import {
  EventHubConsumerClient,
  EventHubProducerClient,
  earliestEventPosition,
  type PartitionContext,
  type ReceivedEventData,
  type SubscribeOptions,
  type Subscription,
} from '@azure/event-hubs';
import { startEmulator, type Emulator } from '../../src/index.js';
import { retryOptions, useEmulator, waitFor } from '../support.js';


function codeOf(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;
}

interface Collector {
  events: ReceivedEventData[];
  errors: unknown[];
  contexts: PartitionContext[];
  sub: Subscription;
}

function collect(consumer: EventHubConsumerClient, partitionId: string, options: SubscribeOptions): Collector {
  const c: Omit<Collector, 'sub'> = { events: [], errors: [], contexts: [] };
  const sub = consumer.subscribe(
    partitionId,
    {
      processEvents: async (batch, ctx) => {
        c.events.push(...batch);
        if (batch.length > 0) c.contexts.push(ctx);
        await Promise.resolve();
      },
      processError: async (err) => {
        c.errors.push(err);
        await Promise.resolve();
      },
    },
    { maxWaitTimeInSeconds: 1, maxBatchSize: 100, ...options },
  );
  return { ...c, sub };
}

describe('emulator consumers under faults', () => {
  // @azure/event-hubs 6.0.4 starts a new 45-minute token-refresh timer each time a receiver
  // reattaches (after a forced detach) without stopping the previous one, and close() stops only
  // the last. Those orphaned timers do not hold the run: vitest's fork pool ends each file's
  // process itself (an exit of our own raced vitest's reporting under load and failed the run).
  const fx = useEmulator();
  const { track, freshHub } = fx;
  let emu: Emulator;
  beforeAll(() => {
    emu = fx.emu;
  });

  test('owner level: a higher or equal owner level steals, a lower one and a non-owner are refused', async () => {
    const hub = freshHub();
    const cs = emu.connectionString(hub);
    const producer = track(new EventHubProducerClient(cs, { retryOptions }));
    await producer.sendBatch([{ body: 'first' }]);
    const consumer = (): EventHubConsumerClient => track(new EventHubConsumerClient('$Default', cs, { retryOptions }));

    const a = collect(consumer(), '0', { ownerLevel: 1, startPosition: earliestEventPosition });
    await waitFor('owner 1 to receive', () => a.events.length === 1);
    const b = collect(consumer(), '0', { ownerLevel: 2, startPosition: earliestEventPosition });
    await waitFor('owner 1 to be disconnected', () => a.errors.some((e) => codeOf(e) === 'ReceiverDisconnectedError'));
    await waitFor('owner 2 to receive', () => b.events.length === 1);
    await a.sub.close();

    const lower = collect(consumer(), '0', { ownerLevel: 1, startPosition: earliestEventPosition });
    await waitFor('the lower owner level to be refused', () => lower.errors.length > 0);
    assert.equal(codeOf(lower.errors[0]), 'ReceiverDisconnectedError');
    await lower.sub.close();
    const plain = collect(consumer(), '0', { startPosition: earliestEventPosition });
    await waitFor('the non-owner to be refused', () => plain.errors.length > 0);
    assert.equal(codeOf(plain.errors[0]), 'ReceiverDisconnectedError');
    await plain.sub.close();

    // The holder kept its link throughout and still receives.
    await producer.sendBatch([{ body: 'second' }]);
    await waitFor('owner 2 to receive the second event', () => b.events.length === 2);
    assert.deepEqual(
      b.events.map((e) => e.body as unknown),
      ['first', 'second'],
    );
    assert.deepEqual(lower.events, []);
    assert.deepEqual(plain.events, []);
    const equal = collect(consumer(), '0', { ownerLevel: 2, startPosition: earliestEventPosition });
    await waitFor('an equal owner level to steal', () => b.errors.some((e) => codeOf(e) === 'ReceiverDisconnectedError'));
    await waitFor('the new owner to receive', () => equal.events.length === 2);
    await b.sub.close();
    await equal.sub.close();
  });

  test('a forced detach makes the SDK reattach where it left off: nothing missed, nothing repeated', async () => {
    const hub = freshHub();
    const cs = emu.connectionString(hub);
    const producer = track(new EventHubProducerClient(cs, { retryOptions }));
    const c = collect(track(new EventHubConsumerClient('$Default', cs, { retryOptions })), '0', { startPosition: earliestEventPosition });
    await producer.sendBatch(Array.from({ length: 5 }, (_, i) => ({ body: i })));
    await waitFor('the first five', () => c.events.length === 5);
    assert.equal(emu.faults.detachReceivers(hub), 1);
    await producer.sendBatch(Array.from({ length: 5 }, (_, i) => ({ body: 5 + i })));
    await waitFor('all ten', () => c.events.length >= 10);
    // A second detach, of every hub, with another retryable condition.
    assert.ok(emu.faults.detachReceivers(undefined, 'com.microsoft:server-busy') >= 1);
    await producer.sendBatch([{ body: 10 }]);
    await waitFor('the eleventh', () => c.events.length >= 11);
    assert.deepEqual(
      c.events.map((e) => e.sequenceNumber),
      [...Array(11).keys()],
    );
    assert.deepEqual(
      c.events.map((e) => e.body as unknown),
      [...Array(11).keys()],
    );
    await c.sub.close();
  });

  test('dropped connections: producer and consumer reconnect and every event arrives once', async () => {
    const hub = freshHub(2);
    const cs = emu.connectionString(hub);
    const producer = track(new EventHubProducerClient(cs, { retryOptions }));
    const consumer = track(new EventHubConsumerClient('$Default', cs, { retryOptions }));
    const c = collect(consumer, '1', { startPosition: earliestEventPosition });
    await producer.sendBatch([{ body: 'a' }, { body: 'b' }], { partitionId: '1' });
    await waitFor('two events', () => c.events.length === 2);
    assert.ok(emu.faults.dropConnections() >= 2);
    // Let the clients see their sockets close; a send already in flight on a dead socket would
    // wait for its operation timeout before the retry, as it would against the service.
    await new Promise((r) => setTimeout(r, 300));
    await producer.sendBatch([{ body: 'c' }], { partitionId: '1' });
    await waitFor('the third event', () => c.events.length >= 3);
    assert.deepEqual(
      c.events.map((e) => e.body as unknown),
      ['a', 'b', 'c'],
    );
    assert.equal(emu.partitionEvents(hub, '1').length, 3);
    await c.sub.close();
  });

  test('delayed deliveries still arrive in order', async () => {
    const hub = freshHub();
    const cs = emu.connectionString(hub);
    const producer = track(new EventHubProducerClient(cs, { retryOptions }));
    emu.faults.delayDeliveries(300);
    try {
      const c = collect(track(new EventHubConsumerClient('$Default', cs, { retryOptions })), '0', { startPosition: earliestEventPosition });
      for (let i = 0; i < 3; i++) await producer.sendBatch([{ body: i }]);
      await waitFor('three delayed events', () => c.events.length >= 3);
      assert.deepEqual(
        c.events.map((e) => e.body as unknown),
        [0, 1, 2],
      );
      await c.sub.close();
    } finally {
      emu.faults.clear();
    }
  });

  test('runtime metrics: the last enqueued event properties are reported when asked for', async () => {
    const hub = freshHub();
    const cs = emu.connectionString(hub);
    const producer = track(new EventHubProducerClient(cs, { retryOptions }));
    await producer.sendBatch([{ body: 1 }, { body: 2 }, { body: 3 }]);
    const c = collect(track(new EventHubConsumerClient('$Default', cs, { retryOptions })), '0', {
      startPosition: earliestEventPosition,
      trackLastEnqueuedEventProperties: true,
    });
    await waitFor('three events', () => c.events.length === 3);
    const last = emu.partitionEvents(hub, '0').at(-1);
    const info = c.contexts.at(-1)?.lastEnqueuedEventProperties;
    assert.equal(info?.sequenceNumber, 2);
    assert.equal(info?.offset, last?.offset);
    assert.equal(info?.enqueuedOn?.getTime(), last?.enqueuedTime.getTime());
    assert.ok(info?.retrievedOn instanceof Date);
    await c.sub.close();
  });
});

describe('emulator options', () => {
  test('opaque offsets are non-numeric and still work as start positions', async () => {
    const emu = await startEmulator({ opaqueOffsets: true, hubs: [{ name: 'opaque', partitions: 1 }] });
    const producer = new EventHubProducerClient(emu.connectionString('opaque'), { retryOptions });
    const consumer = new EventHubConsumerClient('$Default', emu.connectionString('opaque'), { retryOptions });
    try {
      await producer.sendBatch([{ body: 'a' }, { body: 'b' }, { body: 'c' }]);
      const offsets = emu.partitionEvents('opaque', '0').map((e) => e.offset);
      for (const o of offsets) {
        assert.ok(Number.isNaN(Number(o)) && Number.isNaN(parseInt(o, 10)), `offset ${o} must not parse as a number`);
      }
      assert.equal(new Set(offsets).size, 3);
      const props = await producer.getPartitionProperties('0');
      assert.equal(props.lastEnqueuedOffset, offsets[2]);
      const c = collect(consumer, '0', { startPosition: { offset: offsets[0] as string } });
      await waitFor('events after the first offset', () => c.events.length >= 2);
      assert.deepEqual(
        c.events.map((e) => [e.body as unknown, e.offset]),
        [
          ['b', offsets[1]],
          ['c', offsets[2]],
        ],
      );
      await c.sub.close();
    } finally {
      await consumer.close();
      await producer.close();
      await emu.stop();
    }
  });

  test('retention bounds each partition; earliest then means the oldest retained event', async () => {
    const emu = await startEmulator({ retention: { maxEventsPerPartition: 5 }, hubs: [{ name: 'bounded', partitions: 1 }] });
    const producer = new EventHubProducerClient(emu.connectionString('bounded'), { retryOptions });
    const consumer = new EventHubConsumerClient('$Default', emu.connectionString('bounded'), { retryOptions });
    try {
      for (let i = 0; i < 12; i++) await producer.sendBatch([{ body: i }]);
      assert.deepEqual(
        emu.partitionEvents('bounded', '0').map((e) => e.sequenceNumber),
        [7, 8, 9, 10, 11],
      );
      const props = await producer.getPartitionProperties('0');
      assert.equal(props.beginningSequenceNumber, 7);
      assert.equal(props.lastEnqueuedSequenceNumber, 11);
      const c = collect(consumer, '0', { startPosition: earliestEventPosition });
      await waitFor('the retained events', () => c.events.length >= 5);
      assert.deepEqual(
        c.events.map((e) => e.body as unknown),
        [7, 8, 9, 10, 11],
      );
      await c.sub.close();
    } finally {
      await consumer.close();
      await producer.close();
      await emu.stop();
    }
  });
});
