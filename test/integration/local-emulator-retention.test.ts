/**
 * The local stack's memory bound, end to end: its emulator (with the retention `hubsink local`
 * gives it) fed by the real @azure/event-hubs producer past the byte cap evicts the oldest events,
 * holds no more than the cap plus what its segments leave unused, and a consumer from the earliest position starts
 * at the oldest retained event.
 */
import { test } from 'vitest';
import assert from 'node:assert/strict';
import { EventHubConsumerClient, EventHubProducerClient, earliestEventPosition } from '@azure/event-hubs';
import { startEmulator } from '@hubsink/eventhubs-emulator';
import { LOCAL_EMULATOR_RETENTION } from '../../src/local/stackEventHubs.js';

/** The emulator's segment size (packages/eventhubs-emulator/src/partitionLog.ts). */
const SEGMENT_BYTES = 256 * 1024;

test('hubsink local\'s emulator bounds a partition by bytes: past the cap the oldest events go, and a consumer starts after them', async () => {
  const cap = LOCAL_EMULATOR_RETENTION.maxBytesPerPartition;
  const emu = await startEmulator({ port: 0, hubs: [{ name: 'bounded', partitions: 2 }], retention: LOCAL_EMULATOR_RETENTION });
  const cs = emu.connectionString('bounded');
  const producer = new EventHubProducerClient(cs);
  const consumer = new EventHubConsumerClient('$Default', cs);
  try {
    // 1.5 caps' worth of small events into partition 0, in batches of about 1 MiB.
    const body = Buffer.alloc(2000, 0x61);
    let sent = 0;
    while (sent < cap * 1.5) {
      const batch = await producer.createBatch({ partitionId: '0' });
      while (batch.tryAdd({ body })) sent += body.length;
      await producer.sendBatch(batch);
    }
    const held = emu.retained();
    assert.ok(held.bytes <= cap, `${held.bytes} bytes retained, cap ${cap}`);
    assert.ok(held.bytes > cap - 2 * body.length - 4096, 'retention drops only what it must');
    // Segments hold the events back to back; each leaves unused less than one event at its end.
    assert.ok(held.heldBytes <= cap * (SEGMENT_BYTES / (SEGMENT_BYTES - 4096)) + 2 * SEGMENT_BYTES, `${held.heldBytes} bytes of segments held`);
    const stored = emu.partitionEvents('bounded', '0');
    const first = stored[0]?.sequenceNumber ?? -1;
    assert.ok(first > 0, 'the oldest events were evicted');

    const props = await consumer.getPartitionProperties('0');
    assert.equal(props.beginningSequenceNumber, first);
    const got: number[] = [];
    const sub = consumer.subscribe(
      '0',
      {
        processEvents: (events) => {
          for (const e of events) got.push(e.sequenceNumber);
          return Promise.resolve();
        },
        processError: () => Promise.resolve(),
      },
      { startPosition: earliestEventPosition, maxBatchSize: 50, maxWaitTimeInSeconds: 1 },
    );
    const deadline = Date.now() + 30_000;
    while (got.length < stored.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await sub.close();
    assert.equal(got[0], first);
    assert.deepEqual(got.slice(0, stored.length), stored.map((e) => e.sequenceNumber));
  } finally {
    await consumer.close();
    await producer.close();
    await emu.stop();
  }
});
