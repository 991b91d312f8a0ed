/**
 * The standalone runner maintains partitions itself: before it consumes anything at start, and every
 * few hours after that by its (injected) clock, so a runner that stays up for weeks keeps writing.
 * Simulated time: the clock jumps days while the test waits only for the runner's real poll.
 */
import { afterAll, beforeAll, test } from 'vitest';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { loadConfig } from '../../src/config.js';
import { migrate } from '../../src/db/migrate.js';
import { listPartitions, partitionPlan } from '../../src/db/partitions.js';
import { createProducer } from '../../src/hubs/clients.js';
import { startRunner, type Runner } from '../../src/runner/runner.js';
import { countRows, startStack, waitFor, type Stack } from '../support/runner-fixture.js';

const DAY = 86_400_000;
let stack: Stack;
let runner: Runner | undefined;

beforeAll(async () => {
  stack = await startStack({ partitions: 2, prepare: false });
});
afterAll(async () => {
  await runner?.stop();
  await stack.close();
});

async function names(): Promise<string[]> {
  return (await listPartitions(stack.db.pool, stack.db.schema)).map((p) => p.name).sort();
}

async function send(occurredAt: Date, n: number): Promise<void> {
  const producer = await createProducer({ kind: 'connectionString', connectionString: stack.emu.connectionString() }, stack.hub);
  try {
    const batch = await producer.createBatch({ partitionKey: '7' });
    for (let i = 0; i < n; i++) {
      assert.ok(batch.tryAdd({ body: Buffer.from(JSON.stringify({ eventId: randomUUID(), tenantId: 7, type: 'click', occurredAt: new Date(occurredAt.getTime() + i).toISOString() })) }));
    }
    await producer.sendBatch(batch);
  } finally {
    await producer.close();
  }
}

test('the runner creates partitions before consuming, and keeps them moving with its clock for weeks', async () => {
  const { pool, schema } = stack.db;
  await migrate(pool, schema);
  assert.deepEqual(await names(), [], 'migrate without partitions: nothing yet');
  let now = new Date('2031-05-10T21:00:00Z');
  const config = loadConfig(stack.env({ HUBSINK_RETENTION_DAYS: '5', HUBSINK_PARTITIONS_AHEAD_DAYS: '2' }));
  const logs: string[] = [];
  runner = await startRunner({
    config,
    log: (level, m) => logs.push(`${level} ${m}`),
    deadLetter: false,
    checkpointContainer: stack.container,
    loadBalancingIntervalMs: 500,
    maxWaitTimeInSeconds: 0.5,
    clock: () => now,
    partitionCheckMs: 50,
  });
  // When start resolves the window already has its partitions: none of it waits for a timer.
  const plan = (at: Date) => partitionPlan(at, 2, 5).days.map((d) => d.name).sort();
  assert.deepEqual(await names(), plan(now));
  await send(now, 20);
  await waitFor('the first events', () => countRows(pool, schema, 'events'), (n) => n >= 20, 30_000);

  // Two hours later nothing is due; three weeks later, a run every three hours of clock time has
  // moved the window along: new days exist, days past retention are gone.
  for (let day = 1; day <= 21; day++) {
    for (let h = 0; h < 24; h += 6) {
      now = new Date(now.getTime() + 6 * 3600_000);
      await waitFor(`partitions at ${now.toISOString()}`, () => names(), (n) => JSON.stringify(n) === JSON.stringify(plan(now)), 60_000);
    }
  }
  assert.equal(now.getTime(), new Date('2031-05-10T21:00:00Z').getTime() + 21 * DAY);
  await send(now, 30);
  await waitFor('the events three weeks on', () => countRows(pool, schema, 'events'), (n) => n >= 30, 30_000);
  // The first 20 went with their partition; the 30 sent three weeks later were written, none parked or dead-lettered.
  assert.equal(await countRows(pool, schema, 'events'), 30);
  const stats = runner.stats();
  assert.equal(stats.ingest.inserted, 50);
  assert.deepEqual(stats.ingest.deadLettered, { invalid: 0, rejected: 0, transient: 0 });
  assert.ok(logs.some((l) => /partitions: .*dropped events_p2031_05_05/.test(l)), logs.join('\n'));
});
