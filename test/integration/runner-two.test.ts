/**
 * Two runners at once on the same hub, checkpoint container and consumer group: they share the
 * partitions through the checkpoint store (the second joins mid-stream, so partitions move while
 * batches are in flight), and `events` still holds exactly the distinct valid events.
 */
import { test } from 'vitest';
import assert from 'node:assert/strict';
import { countRows, diff, eventKeys, runnerArgs, type RunnerProcess, sendLoad, spawnHubsink, type Stack, stackForFile, waitFor } from '../support/runner-fixture.js';

let stack: Stack;
const children: RunnerProcess[] = [];
stackForFile((s) => (stack = s), children);

function claimed(stderr: string): Set<string> {
  return new Set([...stderr.matchAll(/ingest: claimed partition (\d+)/g)].map((m) => m[1] ?? ''));
}

test('two runners at once share the partitions and stay exact', async () => {
  const { pool, schema } = stack.db;
  const a = spawnHubsink(runnerArgs(stack, ['--deadletter', '--batch-size', '100']), stack.env());
  children.push(a);
  const sending = sendLoad(stack, { count: 20_000, duplicates: 0.02, malformed: 0.005, seed: 'runner-two', rate: 3000 });
  await waitFor('the first runner to start writing', () => countRows(pool, schema, 'events'), (n) => n > 1000 || a.child.exitCode !== null, 60_000);
  const b = spawnHubsink(runnerArgs(stack, ['--deadletter', '--batch-size', '100']), stack.env());
  children.push(b);
  const load = await sending;
  await waitFor(
    'all events and dead letters',
    async () => ({ events: await countRows(pool, schema, 'events'), parked: await countRows(pool, schema, 'dead_letters') }),
    (c) => (c.events >= load.expected.size && c.parked >= load.malformed) || a.child.exitCode !== null || b.child.exitCode !== null,
    120_000,
  );
  // Both took part: each owned ingest partitions at some point.
  await waitFor('the second runner to claim a partition', () => Promise.resolve(claimed(b.stderr()).size), (n) => n > 0, 30_000);
  assert.ok(claimed(a.stderr()).size > 0);
  a.child.kill('SIGTERM');
  b.child.kill('SIGTERM');
  const [ea, eb] = await Promise.all([a.exited, b.exited]);
  assert.equal(ea.code, 0, a.stderr().slice(-2000));
  assert.equal(eb.code, 0, b.stderr().slice(-2000));

  const keys = await eventKeys(pool, schema);
  assert.equal(keys.length, load.expected.size, diff(keys, load.expected));
  assert.deepEqual(new Set(keys), load.expected);
  const parked = await pool.query<{ n: string; sources: string }>(
    `SELECT count(*)::text AS n, count(DISTINCT (source_partition, source_sequence))::text AS sources FROM "${schema}".dead_letters`,
  );
  assert.deepEqual(parked.rows[0], { n: String(load.malformed), sources: String(load.malformed) });
});
