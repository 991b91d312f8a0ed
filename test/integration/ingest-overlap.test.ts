/**
 * Overlap within a partition, for real: the runner's consumer (CheckpointingConsumer with prepare =
 * prepareIngest, handle = writePrepared) on the project's Event Hubs emulator through the real
 * @azure/event-hubs client, BlobCheckpointStore on Azurite and real PostgreSQL. One batch's write is
 * held and then fails: meanwhile the next batch of that partition is already decoded, the stored
 * checkpoint stays on the last written event, and afterwards every event arrives exactly once
 * (events table and dead letters).
 */
import { afterAll, beforeAll, test } from 'vitest';
import assert from 'node:assert/strict';
import { EventHubConsumerClient, type CheckpointStore, type ReceivedEventData } from '@azure/event-hubs';
import { BlobCheckpointStore } from '@azure/eventhubs-checkpointstore-blob';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { startEmulator, type Emulator } from '@hubsink/eventhubs-emulator';
import { createProducer } from '../../src/hubs/clients.js';
import { readCheckpoints } from '../../src/hubs/checkpoints.js';
import { createGenerator, type GeneratedEvent } from '../../src/generator/generator.js';
import { sendGenerated } from '../../src/generator/send.js';
import { ingestBatch, prepareIngest, writePrepared, type IngestResult, type PreparedIngest } from '../../src/ingest/ingestBatch.js';
import { normalizeReceivedEvents } from '../../src/pipeline/normalize.js';
import { CheckpointingConsumer } from '../../src/runner/checkpointingConsumer.js';
import { RecordingDeadLetterSink } from '../support/sinks.js';
import { testAzuriteConnection, uniqueName, type TestSchema } from '../support/services.js';
import { readySchema, testConfig } from '../support/deadLetters.js';
import { diff, eventKeys, expectedOf } from '../support/runner-fixture.js';

let emu: Emulator;
let db: TestSchema;
let container: ContainerClient;
const hub = uniqueName('ovl');

beforeAll(async () => {
  emu = await startEmulator({ port: 0, hubs: [{ name: hub, partitions: 2 }] });
  db = await readySchema('ovl_');
  container = BlobServiceClient.fromConnectionString(testAzuriteConnection()).getContainerClient(uniqueName('ckpt'));
  await container.create();
});
afterAll(async () => {
  await container?.delete().catch(() => undefined);
  await db?.drop();
  await emu?.stop();
});

/** Hang guard only: polls until `cond` holds, failing with `what` after a generous minute. */
async function waitUntil(what: string, cond: () => boolean | Promise<boolean>, hangGuardMs = 60_000): Promise<void> {
  const deadline = Date.now() + hangGuardMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`hang guard: still waiting for ${what} after ${hangGuardMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const range = (events: readonly ReceivedEventData[]): { first: number; last: number } => ({ first: events[0]?.sequenceNumber ?? -1, last: events[events.length - 1]?.sequenceNumber ?? -1 });

test('while one batch\'s write is held and then fails, the next batch is decoded, the checkpoint stays on the last written event, and everything arrives exactly once', async () => {
  const producer = await createProducer({ kind: 'connectionString', connectionString: emu.connectionString() }, hub);
  const sent: GeneratedEvent[] = [];
  try {
    const gen = createGenerator({ seed: 'overlap', tenants: 20, duplicates: 0.03, malformed: 0.02 });
    await sendGenerated(producer, gen, { count: 1500, onSent: (evs) => sent.push(...evs) });
  } finally {
    await producer.close();
  }
  const { expected, malformed } = expectedOf(sent);

  const sink = new RecordingDeadLetterSink();
  const deps = { pool: db.pool, config: testConfig(db.schema), sink };
  const store = new BlobCheckpointStore(container) as unknown as CheckpointStore;
  const client = new EventHubConsumerClient('$Default', emu.connectionString(hub), hub, store, {
    loadBalancingOptions: { strategy: 'greedy', updateIntervalInMs: 200, partitionOwnershipExpirationIntervalInMs: 5_000 },
  });
  const scope = { fullyQualifiedNamespace: client.fullyQualifiedNamespace, eventHubName: hub, consumerGroup: '$Default' };
  const normalize = (events: ReceivedEventData[], partitionId: string) => normalizeReceivedEvents(events, { hub, consumerGroup: '$Default', partitionId });

  // Partition 0's third batch is the one held; what happens around it is recorded.
  const prepared: { partitionId: string; first: number; last: number }[] = [];
  const handled: { partitionId: string; first: number; last: number; prepared: boolean }[] = [];
  let held: { first: number; last: number } | undefined;
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  let handledOn0 = 0;
  let failedOnce = false;
  const logs: string[] = [];

  const consumer = new CheckpointingConsumer<IngestResult, PreparedIngest>({
    client,
    name: 'ingest',
    log: (level, m) => logs.push(`${level} ${m}`),
    maxBatchSize: 100,
    maxWaitTimeInSeconds: 0.5,
    retryBaseMs: 50,
    retryCapMs: 200,
    prepare: (events, partitionId) => {
      prepared.push({ partitionId, ...range(events) });
      return prepareIngest(deps, normalize(events, partitionId));
    },
    handle: async (events, partitionId, ahead) => {
      handled.push({ partitionId, ...range(events), prepared: ahead !== undefined });
      if (partitionId === '0' && !failedOnce && ++handledOn0 === 3) {
        held = range(events);
        await released;
        failedOnce = true;
        throw new Error('injected write failure after a slow write');
      }
      return ahead ? writePrepared(deps, ahead) : ingestBatch(deps, normalize(events, partitionId));
    },
  });
  consumer.start();
  try {
    await waitUntil('the third batch of partition 0 held', () => held !== undefined);
    const h = held;
    assert.ok(h);
    await waitUntil('the next batch of partition 0 decoded while the held one writes', () => prepared.some((p) => p.partitionId === '0' && p.first === h.last + 1));
    // The pump is one batch ahead at most: nothing after that next batch is decoded, and it is not written.
    await new Promise((r) => setTimeout(r, 1_000));
    const ahead = prepared.filter((p) => p.partitionId === '0' && p.first > h.last);
    assert.equal(ahead.length, 1, `one batch ahead at most: ${JSON.stringify(ahead)}`);
    assert.ok(!handled.some((b) => b.partitionId === '0' && b.first > h.last), 'no batch after the held one is written');
    const during = (await readCheckpoints(container, scope)).get('0');
    assert.equal(during?.sequenceNumber, h.first - 1, 'the checkpoint is on the last event written before the held batch');

    release();
    await waitUntil('the held batch retried', () => failedOnce && handled.filter((b) => b.partitionId === '0' && b.first === h.first).length >= 2);
    assert.ok(logs.some((l) => l.includes(`events ${h.first}..${h.last}`) && l.includes('attempt 1 failed, not checkpointing')), logs.join('\n'));
    const retry = handled.filter((b) => b.partitionId === '0' && b.first === h.first)[1];
    assert.equal(retry?.prepared, false, 'the retry decodes afresh');

    const lastOf = (p: string): number => emu.partitionEvents(hub, p).length - 1;
    await waitUntil('every partition checkpointed at its last event', async () => {
      const cps = await readCheckpoints(container, scope);
      return ['0', '1'].every((p) => cps.get(p)?.sequenceNumber === lastOf(p));
    });
  } finally {
    release();
    await consumer.stop(30_000);
    await client.close();
  }

  // Every write on partition 0 followed the one before it: batches were handled in sequence order.
  const firsts = handled.filter((b) => b.partitionId === '0').map((b) => b.first);
  assert.deepEqual(firsts, [...firsts].sort((a, b) => a - b));
  const keys = await eventKeys(db.pool, db.schema);
  assert.equal(keys.length, expected.size, diff(keys, expected));
  assert.deepEqual(new Set(keys), expected, diff(keys, expected));
  assert.ok(malformed > 0, 'the load has invalid events');
  assert.equal(sink.records.length, malformed, 'each invalid event dead-lettered once');
});
