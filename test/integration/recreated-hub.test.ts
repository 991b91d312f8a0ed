/**
 * An event hub deleted and created again under the same name restarts its sequence numbers at 0,
 * while the checkpoints keep the old, higher ones. Before, a runner resumed there and read nothing
 * until the new numbering passed the old checkpoint (then skipped everything before it) without a
 * word, and `checkpoints show` counted no lag. Now: `checkpoints show` flags each such partition,
 * a runner holds them and names the command that fixes them, `checkpoints rewind --recreated` puts
 * back exactly those checkpoints, and a runner started after it writes the new events exactly.
 * The lag gauge flags each such partition (checkpoint=ahead, last enqueued minus the checkpoint, so
 * negative) on the runner's /metrics and in the Function App's source read through an in-memory
 * reader; before, it left those partitions out, so no alert on lag could see them.
 * The hub is deleted and created again in the emulator, read through the real SDK.
 */
import { test } from 'vitest';
import assert from 'node:assert/strict';
import { EventHubConsumerClient } from '@azure/event-hubs';
import { BlobServiceClient } from '@azure/storage-blob';
import { ingestLagSource } from '../../src/telemetry/hubGauges.js';
import { INSTRUMENTS } from '../../src/telemetry/telemetry.js';
import { findMetric, sample, testTelemetry } from '../support/metrics.js';
import { testAzuriteConnection } from '../support/services.js';
import { countRows, diff, eventKeys, runnerArgs, sendLoad, spawnHubsink, stackForFile, waitFor, type RunnerProcess, type Stack } from '../support/runner-fixture.js';

let stack: Stack;
const children: RunnerProcess[] = [];
stackForFile((s) => (stack = s), children, { partitions: 4 });

async function cli(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const p = spawnHubsink(args, stack.env());
  children.push(p);
  const exit = await p.exited;
  return { code: exit.code, out: p.stdoutLines().join('\n'), err: p.stderr() };
}

interface ShowJson {
  partitions: { partitionId: string; lag: number | null; note?: string; checkpoint?: { sequenceNumber?: number } }[];
  totalLag: number | null;
}

test('a re-created hub: show flags it, the runner holds the partitions and names the fix, rewind --recreated fixes exactly those, and the new events arrive exactly', async () => {
  const { pool, schema } = stack.db;
  const scope = ['--hub', stack.hub, '--consumer-group', '$Default', '--container', stack.container];

  const first = spawnHubsink(runnerArgs(stack), stack.env());
  children.push(first);
  const load1 = await sendLoad(stack, { count: 400, duplicates: 0, malformed: 0, seed: 'recreated-1' });
  await waitFor('the first load', () => countRows(pool, schema, 'events'), (n) => n >= load1.expected.size || first.child.exitCode !== null, 120_000);
  first.child.kill('SIGTERM');
  assert.equal((await first.exited).code, 0, first.stderr().slice(-2000));

  stack.emu.deleteHub(stack.hub);
  stack.emu.createHub({ name: stack.hub, partitions: 4 });
  // 40 events over 4 partitions: every new sequence number lies below the old checkpoints (~100 each).
  const load2 = await sendLoad(stack, { count: 40, duplicates: 0, malformed: 0, seed: 'recreated-2' });

  const show = await cli(['checkpoints', 'show', ...scope, '--json']);
  assert.equal(show.code, 0, show.err);
  const shown = JSON.parse(show.out) as ShowJson;
  assert.equal(shown.partitions.length, 4);
  for (const p of shown.partitions) {
    assert.ok((p.checkpoint?.sequenceNumber ?? -1) > 20, JSON.stringify(p));
    assert.equal(p.lag, null, JSON.stringify(p));
    assert.match(p.note ?? '', /ahead of the last event.*--recreated/);
  }
  assert.equal(shown.totalLag, null);

  // What the lag gauge must show per partition: last enqueued of the new hub minus the old checkpoint.
  const aheadBy = new Map(shown.partitions.map((p) => [p.partitionId, stack.emu.partitionEvents(stack.hub, p.partitionId).length - 1 - (p.checkpoint?.sequenceNumber ?? 0)]));
  for (const v of aheadBy.values()) assert.ok(v < 0);

  // The Function App's source (every partition of the hub, from the checkpoints), through an in-memory reader.
  const consumer = new EventHubConsumerClient('$Default', stack.emu.connectionString(stack.hub));
  try {
    const container = BlobServiceClient.fromConnectionString(testAzuriteConnection()).getContainerClient(stack.container);
    const source = ingestLagSource({ hub: stack.hub, client: consumer, container, scope: { fullyQualifiedNamespace: consumer.fullyQualifiedNamespace, eventHubName: stack.hub, consumerGroup: '$Default' } });
    const { telemetry, reader } = testTelemetry();
    telemetry.observe({ ingestLag: source });
    const points = findMetric(await reader.read(), INSTRUMENTS.ingestLag.name)?.dataPoints ?? [];
    assert.deepEqual(
      new Map(points.map((d) => [`${String(d.attributes.partition)} ${String(d.attributes.checkpoint)}`, Number(d.value)])),
      new Map([...aheadBy].map(([p, v]) => [`${p} ahead`, v])),
    );
  } finally {
    await consumer.close();
  }

  const second = spawnHubsink(runnerArgs(stack, ['--metrics-port', '0']), stack.env());
  children.push(second);
  const heldAll = (s: string) => ['0', '1', '2', '3'].every((p) => new RegExp(`: holding partition ${p} `).test(s));
  await waitFor('every partition held', () => Promise.resolve(second.stderr()), (s) => heldAll(s) || second.child.exitCode !== null, 120_000);
  assert.ok(heldAll(second.stderr()), second.stderr().slice(-3000));
  // The runner's gauge on the partitions it holds, scraped as Prometheus would.
  const base = /metrics on (http:\/\/127\.0\.0\.1:\d+)\/metrics/.exec(second.stderr())?.[1];
  assert.ok(base, second.stderr().slice(-2000));
  const metrics = await waitFor(
    'the gauge on all four partitions',
    async () => (await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(30_000) })).text(),
    (m) => (m.match(/^hubsink_ingest_lag\{/gm) ?? []).length >= 4 || second.child.exitCode !== null,
    60_000,
  );
  for (const [partition, v] of aheadBy) {
    assert.equal(sample(metrics, 'hubsink_ingest_lag', { hub: stack.hub, partition, checkpoint: 'ahead' }), v, `partition ${partition}:\n${metrics}`);
  }
  const fix = `hubsink checkpoints rewind --hub ${stack.hub} --consumer-group '$Default' --container ${stack.container} --recreated`;
  assert.ok(second.stderr().includes(fix), second.stderr().slice(-3000));
  assert.match(second.stderr(), /checkpoint of consumer group \$Default is at sequence \d+, but its last event is \d+: the hub was deleted and created again/);
  // Held: the new events are neither written nor checkpointed past.
  await new Promise((r) => setTimeout(r, 3000));
  assert.equal(await countRows(pool, schema, 'events'), load1.expected.size);
  second.child.kill('SIGTERM');
  assert.equal((await second.exited).code, 0, second.stderr().slice(-2000));
  const afterHold = JSON.parse((await cli(['checkpoints', 'show', ...scope, '--json'])).out) as ShowJson;
  assert.deepEqual(afterHold.partitions.map((p) => p.checkpoint?.sequenceNumber), shown.partitions.map((p) => p.checkpoint?.sequenceNumber));

  // The guarded rewind: the exact command the runner printed, run as printed (minus the shell quotes).
  const rewind = await cli(['checkpoints', 'rewind', ...scope, '--recreated', '--stale-after', '1']);
  assert.equal(rewind.code, 0, rewind.err);
  assert.match(rewind.err, /rewrote 4 of 4 checkpoint\(s\) .*ahead of their partition/);
  // Run again, it finds nothing ahead and touches nothing.
  const again = await cli(['checkpoints', 'rewind', ...scope, '--recreated', '--stale-after', '1']);
  assert.equal(again.code, 0, again.err);
  assert.match(again.err, /rewrote 0 of 4/);
  assert.match(again.out, /kept: not ahead/);

  const third = spawnHubsink(runnerArgs(stack), stack.env());
  children.push(third);
  const expected = new Set([...load1.expected, ...load2.expected]);
  await waitFor('the new events', () => countRows(pool, schema, 'events'), (n) => n >= expected.size || third.child.exitCode !== null, 120_000);
  third.child.kill('SIGTERM');
  assert.equal((await third.exited).code, 0, third.stderr().slice(-2000));
  assert.doesNotMatch(third.stderr(), /holding partition/);
  const keys = await eventKeys(pool, schema);
  assert.equal(keys.length, expected.size, diff(keys, expected));
  assert.deepEqual(new Set(keys), expected);
});
