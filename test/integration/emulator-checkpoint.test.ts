/**
 * The emulator with BlobCheckpointStore on Azurite: resuming from checkpoints, and load balancing
 * between two subscribers (which exercises owner-level steals with epoch 0).
 */
import { afterAll, beforeAll, describe, test } from 'vitest';
import assert from 'node:assert/strict';
import { EventHubConsumerClient, EventHubProducerClient, earliestEventPosition, type ReceivedEventData } from '@azure/event-hubs';
import { BlobCheckpointStore } from '@azure/eventhubs-checkpointstore-blob';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { startEmulator, type Emulator } from '@hubsink/eventhubs-emulator';
import { testAzuriteConnection, uniqueName } from '../support/services.js';
import { waitFor } from '../support/wait.js';

const retryOptions = { maxRetries: 3, retryDelayInMs: 100, maxRetryDelayInMs: 200, timeoutInMs: 10_000 };
const loadBalancingOptions = { updateIntervalInMs: 500, partitionOwnershipExpirationIntervalInMs: 3000 };


async function freshContainer(): Promise<ContainerClient> {
  const container = BlobServiceClient.fromConnectionString(testAzuriteConnection()).getContainerClient(uniqueName('ckpt'));
  await container.create();
  return container;
}

describe('emulator with BlobCheckpointStore on Azurite', () => {
  let emu: Emulator;
  const cleanups: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    emu = await startEmulator();
  });
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    await emu.stop();
  });

  test('checkpoint, close, publish more: a new subscriber resumes with only the new events', async () => {
    const hub = uniqueName('hub');
    emu.createHub({ name: hub, partitions: 2 });
    const cs = emu.connectionString(hub);
    const container = await freshContainer();
    cleanups.push(() => container.delete());
    const store = new BlobCheckpointStore(container);
    const producer = new EventHubProducerClient(cs, { retryOptions });
    cleanups.push(() => producer.close());
    for (const partitionId of ['0', '1']) {
      await producer.sendBatch([0, 1, 2].map((i) => ({ body: `old-${partitionId}-${i}` })), { partitionId });
    }

    const first = new EventHubConsumerClient('$Default', cs, store, { retryOptions, loadBalancingOptions });
    const seenFirst: ReceivedEventData[] = [];
    const checkpointed = new Set<string>();
    const sub1 = first.subscribe(
      {
        processEvents: async (events, ctx) => {
          seenFirst.push(...events);
          const last = events.at(-1);
          if (last) {
            await ctx.updateCheckpoint(last);
            if (last.sequenceNumber === 2) checkpointed.add(ctx.partitionId);
          }
        },
        processError: async () => Promise.resolve(),
      },
      { startPosition: earliestEventPosition, maxWaitTimeInSeconds: 1 },
    );
    await waitFor('the first subscriber to checkpoint both partitions', () => checkpointed.size === 2);
    await sub1.close();
    await first.close();
    assert.equal(seenFirst.length, 6);

    const checkpoints = await store.listCheckpoints(first.fullyQualifiedNamespace, hub, '$Default');
    assert.equal(checkpoints.length, 2);
    for (const cp of checkpoints) {
      assert.equal(cp.sequenceNumber, 2);
      assert.equal(cp.offset, emu.partitionEvents(hub, cp.partitionId)[2]?.offset);
    }

    for (const partitionId of ['0', '1']) {
      await producer.sendBatch([0, 1].map((i) => ({ body: `new-${partitionId}-${i}` })), { partitionId });
    }
    const second = new EventHubConsumerClient('$Default', cs, store, { retryOptions, loadBalancingOptions });
    cleanups.push(() => second.close());
    const seenSecond: string[] = [];
    const sub2 = second.subscribe(
      {
        processEvents: async (events) => {
          for (const e of events) seenSecond.push(String(e.body));
          await Promise.resolve();
        },
        processError: async () => Promise.resolve(),
      },
      { startPosition: earliestEventPosition, maxWaitTimeInSeconds: 1 },
    );
    await waitFor('the four new events', () => seenSecond.length >= 4);
    // A little longer, so a wrongly replayed old event would have arrived too.
    await new Promise((r) => setTimeout(r, 1500));
    await sub2.close();
    assert.deepEqual(seenSecond.sort(), ['new-0-0', 'new-0-1', 'new-1-0', 'new-1-1']);
  });

  test('two subscribers sharing a checkpoint store split the partitions between them', async () => {
    const hub = uniqueName('hub');
    emu.createHub({ name: hub, partitions: 4 });
    const cs = emu.connectionString(hub);
    const container = await freshContainer();
    cleanups.push(() => container.delete());
    const store = new BlobCheckpointStore(container);

    const owned = [new Set<string>(), new Set<string>()];
    const received = [new Map<string, string[]>(), new Map<string, string[]>()];
    const clients = [0, 1].map(() => new EventHubConsumerClient('$Default', cs, store, { retryOptions, loadBalancingOptions }));
    for (const c of clients) cleanups.push(() => c.close());
    const subscribe = (i: 0 | 1) =>
      (clients[i] as EventHubConsumerClient).subscribe(
        {
          processInitialize: async (ctx) => {
            owned[i]?.add(ctx.partitionId);
            await Promise.resolve();
          },
          processClose: async (_reason, ctx) => {
            owned[i]?.delete(ctx.partitionId);
            await Promise.resolve();
          },
          processEvents: async (events, ctx) => {
            const list = received[i]?.get(ctx.partitionId) ?? [];
            for (const e of events) list.push(String(e.body));
            received[i]?.set(ctx.partitionId, list);
            await Promise.resolve();
          },
          processError: async () => Promise.resolve(),
        },
        { startPosition: earliestEventPosition, maxWaitTimeInSeconds: 1 },
      );
    // The first subscriber takes every partition; the second must then steal two of them (the
    // checkpoint store's claim, then an owner-level 0 link that detaches the first one's).
    const subs = [subscribe(0)];
    await waitFor('the first subscriber to own all four partitions', () => owned[0]?.size === 4, 45_000);
    subs.push(subscribe(1));
    const balanced = (): boolean =>
      owned[0]?.size === 2 && owned[1]?.size === 2 && new Set([...(owned[0] ?? []), ...(owned[1] ?? [])]).size === 4;
    await waitFor('the partitions to be split two and two', balanced, 45_000);

    const producer = new EventHubProducerClient(cs, { retryOptions });
    cleanups.push(() => producer.close());
    for (const partitionId of ['0', '1', '2', '3']) await producer.sendBatch([{ body: `p${partitionId}` }], { partitionId });
    const all = (): string[] => [0, 1].flatMap((i) => [...(received[i]?.values() ?? [])].flat());
    await waitFor('every partition to deliver', () => new Set(all()).size === 4);
    assert.deepEqual([...new Set(all())].sort(), ['p0', 'p1', 'p2', 'p3']);
    // Each event came through the subscriber that owns its partition.
    for (const i of [0, 1]) {
      for (const [partitionId, bodies] of received[i] ?? []) {
        if (bodies.includes(`p${partitionId}`)) assert.ok(owned[i]?.has(partitionId), `subscriber ${i} owns partition ${partitionId}`);
      }
    }
    for (const s of subs) await s.close();
  });
});
