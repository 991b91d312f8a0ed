/**
 * `hubsink checkpoints rewind` in its dangerous forms: a checkpoint with an offset but no sequence
 * number (as the .NET host can write it), no checkpoint at all, times far in the past and in the
 * future, bad numbers, a container that does not exist. A rewind never moves a consumer forward.
 */
import { afterAll, beforeAll, test } from 'vitest';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { EventHubConsumerClient, EventHubProducerClient } from '@azure/event-hubs';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { startEmulator, type Emulator } from '@hubsink/eventhubs-emulator';
import { checkpointBlobName, readCheckpoints, type CheckpointScope } from '../../src/hubs/checkpoints.js';
import { testAzuriteConnection, uniqueName } from '../support/services.js';
import { runCli } from '../support/deadLetters.js';

let emu: Emulator;
beforeAll(async () => {
  emu = await startEmulator({ port: 0 });
});
afterAll(async () => {
  await emu.stop();
});

async function freshContainer(): Promise<ContainerClient> {
  const c = BlobServiceClient.fromConnectionString(testAzuriteConnection()).getContainerClient(uniqueName('cpg'));
  await c.create();
  return c;
}

async function produce(hub: string, partitionId: string, n: number): Promise<void> {
  const producer = new EventHubProducerClient(emu.connectionString(hub), hub);
  try {
    const batch = await producer.createBatch({ partitionId });
    for (let i = 0; i < n; i++) assert.ok(batch.tryAdd({ body: Buffer.from(JSON.stringify({ eventId: randomUUID(), tenantId: 1, type: 'click', occurredAt: new Date().toISOString() })) }));
    await producer.sendBatch(batch);
  } finally {
    await producer.close();
  }
}

/** Five events, a split time, five more, on each of two partitions. */
async function hubWithSplit(): Promise<{ hub: string; split: Date; scope: CheckpointScope }> {
  const hub = uniqueName('cpg');
  emu.createHub({ name: hub, partitions: 2 });
  for (const p of ['0', '1']) await produce(hub, p, 5);
  await new Promise((r) => setTimeout(r, 30));
  const split = new Date();
  await new Promise((r) => setTimeout(r, 30));
  for (const p of ['0', '1']) await produce(hub, p, 5);
  const client = new EventHubConsumerClient('$Default', emu.connectionString(hub), hub);
  const scope = { fullyQualifiedNamespace: client.fullyQualifiedNamespace, eventHubName: hub, consumerGroup: '$Default' };
  await client.close();
  return { hub, split, scope };
}

/** A checkpoint blob as the .NET processor may leave it: an offset, no sequence number. */
async function offsetOnly(container: ContainerClient, scope: CheckpointScope, partitionId: string, offset: string): Promise<void> {
  await container.getBlockBlobClient(checkpointBlobName(scope, partitionId)).upload('', 0, { metadata: { offset } });
}

test('an offset-only checkpoint is placed through the hub: one before the target is kept, one after it is rewound', async () => {
  const { hub, split, scope } = await hubWithSplit();
  const container = await freshContainer();
  const env = { EventHubConnection: emu.connectionString(), AzureWebJobsStorage: testAzuriteConnection() };
  const common = ['--hub', hub, '--consumer-group', '$Default', '--container', container.containerName];
  const p0 = emu.partitionEvents(hub, '0');
  const p1 = emu.partitionEvents(hub, '1');
  // Partition 0 was processed up to its third event (before the split); partition 1 up to its ninth.
  const at0 = p0[2];
  const at1 = p1[8];
  assert.ok(at0 && at1);
  await offsetOnly(container, scope, '0', at0.offset);
  await offsetOnly(container, scope, '1', at1.offset);

  const r = await runCli(['checkpoints', 'rewind', ...common, '--to', split.toISOString(), '--json'], env);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { actions: { partitionId: string; action: string; sequenceNumber?: number; reason?: string; previous?: { sequenceNumber?: number } }[] };
  const [a0, a1] = out.actions;
  // Moving partition 0 to just before the split would skip its fourth and fifth events.
  assert.equal(a0?.action, 'keep', JSON.stringify(a0));
  assert.equal(a0.previous?.sequenceNumber, at0.sequenceNumber);
  assert.match(a0.reason ?? '', /already at or before the target/);
  assert.equal(a1?.action, 'write', JSON.stringify(a1));
  assert.equal(a1.previous?.sequenceNumber, at1.sequenceNumber);
  assert.equal(a1.sequenceNumber, p1[4]?.sequenceNumber);
  const cps = await readCheckpoints(container, scope);
  assert.equal(cps.get('0')?.sequenceNumber, undefined, 'partition 0 untouched');
  assert.equal(cps.get('0')?.offset, at0.offset);
  assert.equal(cps.get('1')?.sequenceNumber, p1[4]?.sequenceNumber);

  // An offset the hub cannot place: kept, never overwritten blindly.
  await offsetOnly(container, scope, '0', 'no-such-offset');
  const unknown = await runCli(['checkpoints', 'rewind', ...common, '--to', split.toISOString(), '--json'], env);
  assert.equal(unknown.code, 0, unknown.stderr);
  const u0 = (JSON.parse(unknown.stdout) as typeof out).actions[0];
  assert.equal(u0?.action, 'keep', JSON.stringify(u0));
  assert.equal((await readCheckpoints(container, scope)).get('0')?.offset, 'no-such-offset');
});

test('no checkpoint: --to is refused without --force and says where the consumer starts; --to-start and --force write', async () => {
  const { hub, split, scope } = await hubWithSplit();
  const container = await freshContainer();
  const env = { EventHubConnection: emu.connectionString(), AzureWebJobsStorage: testAzuriteConnection() };
  const common = ['--hub', hub, '--consumer-group', '$Default', '--container', container.containerName];

  const refused = await runCli(['checkpoints', 'rewind', ...common, '--to', split.toISOString()], env);
  assert.equal(refused.code, 1, refused.stderr);
  assert.match(refused.stderr, /partition\(s\) 0, 1 have no checkpoint/);
  assert.match(refused.stderr, /initialOffsetOptions/);
  assert.match(refused.stderr, /--force/);
  assert.equal((await readCheckpoints(container, scope)).size, 0, 'nothing written');

  const start = await runCli(['checkpoints', 'rewind', ...common, '--to-start', '--json'], env);
  assert.equal(start.code, 0, start.stderr);
  assert.deepEqual([...(await readCheckpoints(container, scope)).values()].map((c) => c.sequenceNumber), [-1, -1]);

  // Far in the past: everything retained is read again (the start), which is never forward.
  const far = await runCli(['checkpoints', 'rewind', ...common, '--to', '2000-01-01T00:00:00Z', '--json'], env);
  assert.equal(far.code, 0, far.stderr);
  assert.match(far.stdout, /already at or before the target/);
  assert.match(far.stderr, /warning: --to is 2000-01-01T00:00:00\.000Z, before anything a hub keeps .*rewound to its start/);
  // An age that far back is a date in 1753: said, not silently taken.
  const ancient = await runCli(['checkpoints', 'rewind', ...common, '--to', '99999d', '--dry-run'], env);
  assert.equal(ancient.code, 0, ancient.stderr);
  assert.match(ancient.stderr, /warning: --to is 17\d\d-.*before anything a hub keeps/);

  const other = await freshContainer();
  const forced = await runCli(['checkpoints', 'rewind', '--hub', hub, '--consumer-group', '$Default', '--container', other.containerName, '--to', split.toISOString(), '--force'], env);
  assert.equal(forced.code, 0, forced.stderr);
  const written = await readCheckpoints(other, scope);
  assert.equal(written.get('0')?.sequenceNumber, emu.partitionEvents(hub, '0')[4]?.sequenceNumber);
});

test('bad numbers and missing state: exit 2 for arguments, 1 for a container that does not exist', async () => {
  const { hub } = await hubWithSplit();
  const env = { EventHubConnection: emu.connectionString(), AzureWebJobsStorage: testAzuriteConnection() };
  const common = ['--hub', hub, '--consumer-group', '$Default'];
  for (const args of [
    ['--to', '-2h'],
    ['--to', '0'],
    ['--to-start', '--stale-after', '0'],
    ['--to-start', '--stale-after', '-5'],
    ['--to', '1h', '--to-start'],
    ['--to', '999999999999d'],
  ]) {
    const r = await runCli(['checkpoints', 'rewind', ...common, ...args], env);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
  }
  const missing = await runCli(['checkpoints', 'rewind', ...common, '--container', uniqueName('nope'), '--to-start'], env);
  assert.equal(missing.code, 1, missing.stderr);
  assert.match(missing.stderr, /container \S+ does not exist/);
});

test('show before any consumer has checkpointed (no container yet): exit 0, everything retained is lag, and it says why', async () => {
  const { hub } = await hubWithSplit();
  const env = { EventHubConnection: emu.connectionString(), AzureWebJobsStorage: testAzuriteConnection() };
  const container = uniqueName('never');
  const common = ['--hub', hub, '--consumer-group', '$Default', '--container', container];
  const retained = emu.partitionEvents(hub, '0').length + emu.partitionEvents(hub, '1').length;
  assert.equal(retained, 20);
  const json = await runCli(['checkpoints', 'show', ...common, '--json'], env);
  assert.equal(json.code, 0, json.stderr);
  const r = JSON.parse(json.stdout) as { totalLag: number; containerExists: boolean };
  assert.equal(r.containerExists, false);
  assert.equal(r.totalLag, retained);
  const text = await runCli(['checkpoints', 'show', ...common], env);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stderr, new RegExp(`container ${container} does not exist yet.*everything retained is lag`));
  // Looking did not create it: a wrong --container must stay visible.
  assert.equal(await BlobServiceClient.fromConnectionString(testAzuriteConnection()).getContainerClient(container).exists(), false);
});
