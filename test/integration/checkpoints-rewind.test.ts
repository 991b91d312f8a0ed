/**
 * Checkpoints in blob storage (Azurite) as the real BlobCheckpointStore and consumer read and write
 * them, lag against the emulator's partitions, and `hubsink checkpoints rewind` followed by
 * re-consuming into real PostgreSQL.
 */
import { afterAll, beforeAll, describe, test } from 'vitest';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { EventHubConsumerClient, EventHubProducerClient, earliestEventPosition, type CheckpointStore, type Subscription } from '@azure/event-hubs';
import { BlobCheckpointStore } from '@azure/eventhubs-checkpointstore-blob';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { startEmulator, type Emulator } from '@hubsink/eventhubs-emulator';
import { checkpointBlobName, lagOf, partitionStates, readCheckpoints, readOwnership, writeCheckpoint, type CheckpointScope } from '../../src/hubs/checkpoints.js';
import { checkpointLag } from '../../src/cli/checkpointLag.js';
import { ingestBatch } from '../../src/ingest/ingestBatch.js';
import { normalizeReceivedEvents } from '../../src/pipeline/normalize.js';
import { RecordingDeadLetterSink } from '../support/sinks.js';
import { testAzuriteConnection, uniqueName, type TestSchema } from '../support/services.js';
import { readySchema, runCli, testConfig } from '../support/deadLetters.js';

async function freshContainer(): Promise<ContainerClient> {
  const c = BlobServiceClient.fromConnectionString(testAzuriteConnection()).getContainerClient(uniqueName('cp'));
  await c.create();
  return c;
}

async function waitUntil(what: string, cond: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function produce(emu: Emulator, hub: string, tenants: readonly number[], perTenant: number): Promise<number> {
  const producer = new EventHubProducerClient(emu.connectionString(hub), hub);
  let n = 0;
  try {
    for (const t of tenants) {
      const batch = await producer.createBatch({ partitionKey: String(t) });
      for (let i = 0; i < perTenant; i++) {
        const ok = batch.tryAdd({ body: Buffer.from(JSON.stringify({ eventId: randomUUID(), tenantId: t, type: 'page_view', occurredAt: new Date().toISOString() })) });
        assert.ok(ok);
        n++;
      }
      await producer.sendBatch(batch);
    }
  } finally {
    await producer.close();
  }
  return n;
}

/**
 * The pipeline as the standalone runner runs it: a balanced consumer with BlobCheckpointStore that
 * writes each batch through ingestBatch and checkpoints after it.
 */
function startIngest(emu: Emulator, hub: string, group: string, container: ContainerClient, s: TestSchema) {
  const store = new BlobCheckpointStore(container) as unknown as CheckpointStore;
  const client = new EventHubConsumerClient(group, emu.connectionString(hub), hub, store, {
    loadBalancingOptions: { strategy: 'greedy', updateIntervalInMs: 200, partitionOwnershipExpirationIntervalInMs: 5_000 },
  });
  const totals = { received: 0, inserted: 0, duplicates: 0 };
  const deps = { pool: s.pool, config: testConfig(s.schema), sink: new RecordingDeadLetterSink() };
  const sub: Subscription = client.subscribe(
    {
      processEvents: async (events, ctx) => {
        if (events.length === 0) return;
        const r = await ingestBatch(deps, normalizeReceivedEvents(events, { hub, consumerGroup: group, partitionId: ctx.partitionId }));
        totals.received += r.received;
        totals.inserted += r.inserted;
        totals.duplicates += r.duplicates;
        const last = events[events.length - 1];
        if (last) await ctx.updateCheckpoint(last);
      },
      processError: () => Promise.resolve(),
    },
    { startPosition: earliestEventPosition, maxBatchSize: 50, maxWaitTimeInSeconds: 1, skipParsingBodyAsJson: true },
  );
  return {
    client,
    totals,
    sink: deps.sink,
    async stop() {
      await sub.close();
      await client.close();
    },
  };
}

describe('checkpoints', () => {
  let emu: Emulator;
  let s: TestSchema;
  beforeAll(async () => {
    emu = await startEmulator({ opaqueOffsets: true });
    s = await readySchema('cp_');
  });
  afterAll(async () => {
    await s.drop();
    await emu.stop();
  });

  test('what BlobCheckpointStore writes is read back, and what we write the real consumer resumes after (names lower-cased)', async () => {
    const hub = `Mixed${uniqueName('Hub')}`;
    const group = 'Replay-Group';
    emu.createHub({ name: hub, partitions: 2, consumerGroups: [group] });
    const container = await freshContainer();
    const n = await produce(emu, hub, [1, 2, 3, 4], 5);
    const store = new BlobCheckpointStore(container) as unknown as CheckpointStore;
    const client = new EventHubConsumerClient(group, emu.connectionString(hub), hub, store, {
      loadBalancingOptions: { strategy: 'greedy', updateIntervalInMs: 200 },
    });
    try {
      const scope: CheckpointScope = { fullyQualifiedNamespace: client.fullyQualifiedNamespace, eventHubName: hub, consumerGroup: group };
      const p0 = emu.partitionEvents(hub, '0');
      const third = p0[2];
      assert.ok(third, 'partition 0 has events');
      await store.updateCheckpoint({ ...scope, partitionId: '0', sequenceNumber: third.sequenceNumber, offset: third.offset });
      const read = await readCheckpoints(container, scope);
      assert.deepEqual([...read.keys()], ['0']);
      assert.equal(read.get('0')?.sequenceNumber, third.sequenceNumber);
      assert.equal(read.get('0')?.offset, third.offset);
      assert.match(checkpointBlobName(scope, '0'), /^[^A-Z]+$/);
      assert.equal((await container.getBlobClient(checkpointBlobName(scope, '0')).exists()), true);

      // Ours on partition 1, after its fourth event: the real consumer reads from the fifth.
      const p1 = emu.partitionEvents(hub, '1');
      const fourth = p1[3];
      assert.ok(fourth && p1.length > 4);
      await writeCheckpoint(container, scope, '1', { sequenceNumber: fourth.sequenceNumber, offset: fourth.offset });
      const seen = new Map<string, number[]>();
      const sub = client.subscribe(
        {
          processEvents: (events, ctx) => {
            seen.set(ctx.partitionId, [...(seen.get(ctx.partitionId) ?? []), ...events.map((e) => e.sequenceNumber)]);
            return Promise.resolve();
          },
          processError: () => Promise.resolve(),
        },
        { startPosition: earliestEventPosition, maxWaitTimeInSeconds: 1 },
      );
      await waitUntil('both partitions', () => (seen.get('0')?.length ?? 0) + (seen.get('1')?.length ?? 0) >= n - 3 - 4);
      await sub.close();
      assert.deepEqual(seen.get('0'), p0.slice(3).map((e) => e.sequenceNumber));
      assert.deepEqual(seen.get('1'), p1.slice(4).map((e) => e.sequenceNumber));
      // The consumer gave its ownership up when it closed: an owner id no longer, so a rewind may go ahead.
      const owners = await readOwnership(container, scope);
      assert.equal(owners.length, 2);
      assert.ok(owners.every((o) => o.ownerId === ''), JSON.stringify(owners));
    } finally {
      await client.close();
    }
  });

  test('lag: last enqueued sequence number minus the checkpoint, and everything retained without a checkpoint', async () => {
    const hub = uniqueName('lag');
    emu.createHub({ name: hub, partitions: 3 });
    const container = await freshContainer();
    await produce(emu, hub, [1, 2, 3, 4, 5, 6], 7);
    const client = new EventHubConsumerClient('$Default', emu.connectionString(hub), hub);
    try {
      const scope: CheckpointScope = { fullyQualifiedNamespace: client.fullyQualifiedNamespace, eventHubName: hub, consumerGroup: '$Default' };
      const events = ['0', '1', '2'].map((p) => emu.partitionEvents(hub, p));
      const [e0, e1, e2] = events;
      assert.ok(e0 && e1 && e2);
      const at0 = e0[1];
      assert.ok(at0);
      await writeCheckpoint(container, scope, '0', { sequenceNumber: at0.sequenceNumber, offset: at0.offset });
      const lastOf1 = e1[e1.length - 1];
      if (lastOf1) await writeCheckpoint(container, scope, '1', { sequenceNumber: lastOf1.sequenceNumber, offset: lastOf1.offset });
      const r = await checkpointLag(client, container, scope);
      const lag = Object.fromEntries(r.partitions.map((p) => [p.partitionId, p.lag]));
      assert.deepEqual(lag, { '0': e0.length - 2, '1': 0, '2': e2.length });
      assert.equal(r.totalLag, e0.length - 2 + e2.length);
      assert.match(r.partitions.find((p) => p.partitionId === '2')?.note ?? '', /no checkpoint/);
      // The pure rule, cross-checked against the partition's properties.
      const states = await partitionStates(client);
      const s0 = states.find((p) => p.partitionId === '0');
      assert.ok(s0);
      assert.equal(s0.lastEnqueuedSequenceNumber, e0.length - 1);
      assert.equal(lagOf(s0, { partitionId: '0', sequenceNumber: -1, offset: '-1' }).lag, e0.length);
    } finally {
      await client.close();
    }
  });

  test('rewind to a time, then re-consuming reads only what came after it and inserts zero new rows; --to-start reads everything again', async () => {
    const hub = uniqueName('rw');
    const group = 'hubsink-ingest';
    emu.createHub({ name: hub, partitions: 2, consumerGroups: [group] });
    const container = await freshContainer();
    const env = { EventHubConnection: emu.connectionString(), AzureWebJobsStorage: testAzuriteConnection() };
    const common = ['--hub', hub, '--consumer-group', group, '--container', container.containerName];

    const before = await produce(emu, hub, [11, 12, 13, 14], 5);
    await new Promise((r) => setTimeout(r, 30));
    const split = new Date();
    await new Promise((r) => setTimeout(r, 30));
    const afterSplit = await produce(emu, hub, [11, 12, 13, 14, 15], 4);
    const total = before + afterSplit;

    const first = startIngest(emu, hub, group, container, s);
    await waitUntil('the first pass', () => first.totals.received >= total);
    // While it runs, its ownership is fresh: a rewind refuses and says why.
    const refused = await runCli(['checkpoints', 'rewind', ...common, '--to', split.toISOString()], env);
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, /refusing to rewind .*a consumer is running \(ownership held: partition \d by /);
    assert.match(refused.stderr, /--force/);
    // --force reads with the group the running consumer holds with an epoch: the hint names the way out.
    const forced = await runCli(['checkpoints', 'rewind', ...common, '--to', split.toISOString(), '--force'], env);
    assert.equal(forced.code, 1, forced.stderr);
    assert.match(forced.stderr, /owner-level \(epoch\) receiver/);
    assert.match(forced.stderr, /--read-consumer-group/);
    // A dry run writes nothing, so it is not refused: it shows the plan and warns.
    const dryWhileRunning = await runCli(['checkpoints', 'rewind', ...common, '--to', split.toISOString(), '--dry-run', '--read-consumer-group', '$Default'], env);
    assert.equal(dryWhileRunning.code, 0, dryWhileRunning.stderr);
    assert.match(dryWhileRunning.stderr, /dry run: would rewrite \d of 2 .*a consumer is running: stop it before the real rewind/);
    await first.stop();
    assert.equal(first.totals.inserted, total);
    assert.equal(first.sink.records.length, 0);

    const shown = await runCli(['checkpoints', 'show', ...common, '--json'], env);
    assert.equal(shown.code, 0, shown.stderr);
    const lag0 = JSON.parse(shown.stdout) as { totalLag: number; partitions: { partitionId: string; lag: number }[] };
    assert.equal(lag0.totalLag, 0);

    const dry = await runCli(['checkpoints', 'rewind', ...common, '--to', split.toISOString(), '--dry-run'], env);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stderr, /dry run: would rewrite 2 of 2/);
    const afterDry = JSON.parse((await runCli(['checkpoints', 'show', ...common, '--json'], env)).stdout) as { totalLag: number };
    assert.equal(afterDry.totalLag, 0, 'a dry run changes nothing');

    const rewound = await runCli(['checkpoints', 'rewind', ...common, '--to', split.toISOString()], env);
    assert.equal(rewound.code, 0, rewound.stderr);
    assert.match(rewound.stdout, /PARTITION\s+OLD SEQ\s+NEW SEQ\s+NEW OFFSET\s+REPROCESS\s+ACTION/);
    // Each partition's checkpoint now sits on its last event before the split.
    const scope: CheckpointScope = { fullyQualifiedNamespace: first.client.fullyQualifiedNamespace, eventHubName: hub, consumerGroup: group };
    const cps = await readCheckpoints(container, scope);
    let expectedAgain = 0;
    for (const pid of ['0', '1']) {
      const evs = emu.partitionEvents(hub, pid);
      const lastBefore = [...evs].reverse().find((e) => e.enqueuedTime.getTime() < split.getTime());
      expectedAgain += evs.filter((e) => e.enqueuedTime.getTime() >= split.getTime()).length;
      assert.equal(cps.get(pid)?.sequenceNumber, lastBefore ? lastBefore.sequenceNumber : -1);
      assert.equal(cps.get(pid)?.offset, lastBefore ? lastBefore.offset : '-1');
    }
    assert.equal(expectedAgain, afterSplit);
    const lag1 = JSON.parse((await runCli(['checkpoints', 'show', ...common, '--json'], env)).stdout) as { totalLag: number };
    assert.equal(lag1.totalLag, afterSplit);

    // A rewind never moves a checkpoint forward.
    const later = await runCli(['checkpoints', 'rewind', ...common, '--to', new Date(Date.now() + 60_000).toISOString()], env);
    assert.equal(later.code, 0, later.stderr);
    assert.match(later.stdout, /kept: no event at or after the time/);

    const second = startIngest(emu, hub, group, container, s);
    await waitUntil('the second pass', () => second.totals.received >= afterSplit);
    await new Promise((r) => setTimeout(r, 1500));
    await second.stop();
    assert.equal(second.totals.received, afterSplit);
    assert.equal(second.totals.inserted, 0);
    assert.equal(second.totals.duplicates, afterSplit);

    const toStart = await runCli(['checkpoints', 'rewind', ...common, '--to-start'], env);
    assert.equal(toStart.code, 0, toStart.stderr);
    const third = startIngest(emu, hub, group, container, s);
    await waitUntil('the third pass', () => third.totals.received >= total);
    await new Promise((r) => setTimeout(r, 1500));
    await third.stop();
    assert.equal(third.totals.received, total);
    assert.equal(third.totals.inserted, 0);
    const { rows } = await s.pool.query<{ n: string }>('SELECT count(*) AS n FROM events WHERE tenant_id BETWEEN 11 AND 15');
    assert.equal(Number(rows[0]?.n), total);
  });
});
