/**
 * A runner killed mid-stream (SIGKILL: no shutdown, no checkpoint of the batch in flight, ownership
 * left to expire) and a new one started: `events` still holds exactly the distinct valid events and
 * each malformed one is parked once, although some batches were written or dead-lettered twice.
 */
import { test } from 'vitest';
import assert from 'node:assert/strict';
import { countRows, diff, eventKeys, runnerArgs, type RunnerProcess, sendLoad, spawnHubsink, type Stack, stackForFile, waitFor } from '../support/runner-fixture.js';

let stack: Stack;
const children: RunnerProcess[] = [];
stackForFile((s) => (stack = s), children);

test('SIGKILL mid-stream, then a restart: still exact', async () => {
  const { pool, schema } = stack.db;
  const first = spawnHubsink(runnerArgs(stack, ['--deadletter', '--batch-size', '100']), stack.env());
  children.push(first);
  // Paced so the kill lands while events are still arriving.
  const sending = sendLoad(stack, { count: 20_000, duplicates: 0.02, malformed: 0.005, seed: 'runner-kill', rate: 2500 });
  const atKill = await waitFor('the first runner to be mid-stream', () => countRows(pool, schema, 'events'), (n) => n >= 3000 || first.child.exitCode !== null, 180_000); // hang guard: a loaded machine took over 60 s to write the first 3,000
  assert.equal(first.child.exitCode, null, first.stderr().slice(-2000));
  first.child.kill('SIGKILL');
  assert.equal((await first.exited).signal, 'SIGKILL');

  const load = await sending;
  assert.ok(atKill < load.expected.size, `killed after ${atKill} of ${load.expected.size} events`);

  const second = spawnHubsink(runnerArgs(stack, ['--deadletter']), stack.env());
  children.push(second);
  await waitFor(
    'all events and dead letters after the restart',
    async () => ({ events: await countRows(pool, schema, 'events'), parked: await countRows(pool, schema, 'dead_letters') }),
    (c) => (c.events >= load.expected.size && c.parked >= load.malformed) || second.child.exitCode !== null,
    120_000,
  );
  second.child.kill('SIGTERM');
  const exit = await second.exited;
  assert.equal(exit.code, 0, second.stderr().slice(-3000));
  // The new instance took over partitions the killed one had owned.
  assert.match(second.stderr(), /ingest: claimed partition/);

  const keys = await eventKeys(pool, schema);
  assert.equal(keys.length, load.expected.size, diff(keys, load.expected));
  assert.deepEqual(new Set(keys), load.expected);
  const parked = await pool.query<{ n: string; sources: string }>(
    `SELECT count(*)::text AS n, count(DISTINCT (source_partition, source_sequence))::text AS sources FROM "${schema}".dead_letters WHERE reason = 'invalid'`,
  );
  assert.deepEqual(parked.rows[0], { n: String(load.malformed), sources: String(load.malformed) });
  assert.equal(await countRows(pool, schema, 'dead_letters'), load.malformed);
});
