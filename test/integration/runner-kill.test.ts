/**
 * A runner killed mid-stream (SIGKILL: no shutdown, no checkpoint of the batch in flight, ownership
 * left to expire) and a new one started: `events` still holds exactly the distinct valid events and
 * each malformed one is parked once.
 *
 * The kill lands, by construction rather than by luck of timing, where batches are written but not
 * checkpointed: the runner reaches its checkpoint store through a TCP proxy, which is made to stop
 * answering mid-stream, so a batch written after that keeps waiting for its checkpoint. The
 * checkpoint blobs and `events` read after the kill show rows written past the checkpoints, which the
 * new runner (starting from those checkpoints) must receive again: it counts them as duplicates and
 * inserts only what was missing, which is the idempotent path this test proves.
 */
import { test } from 'vitest';
import assert from 'node:assert/strict';
import { readCheckpointBlobs, writtenPastCheckpoints } from '../support/checkpointGuard.js';
import { startAzuriteProxy, type TcpProxy } from '../support/tcpProxy.js';
import { countRows, diff, eventKeys, runnerArgs, type RunnerProcess, sendLoad, spawnHubsink, type Stack, stackForFile, waitFor } from '../support/runner-fixture.js';

let stack: Stack;
const children: RunnerProcess[] = [];
stackForFile((s) => (stack = s), children);

test('SIGKILL mid-stream with batches written past their checkpoints, then a restart: they are delivered again, and it is still exact', async (ctx) => {
  const { pool, schema } = stack.db;
  const storage: { proxy: TcpProxy; connection: string } = await startAzuriteProxy();
  ctx.onTestFinished(() => storage.proxy.stop());
  const first = spawnHubsink(runnerArgs(stack, ['--deadletter', '--batch-size', '100']), stack.env({ AzureWebJobsStorage: storage.connection }));
  children.push(first);
  // Paced so the kill lands while events are still arriving.
  const sending = sendLoad(stack, { count: 20_000, duplicates: 0.02, malformed: 0.005, seed: 'runner-kill', rate: 2500 });
  const midStream = await waitFor('the first runner to be mid-stream', () => countRows(pool, schema, 'events'), (n) => n >= 3000 || first.child.exitCode !== null, 180_000); // hang guard: a loaded machine took over 60 s to write the first 3,000
  assert.equal(first.child.exitCode, null, first.stderr().slice(-2000));

  // The checkpoint store stops answering: the next batch written on a partition waits for its checkpoint.
  storage.proxy.hold();
  await waitFor(
    'a batch written past its checkpoint',
    async () => writtenPastCheckpoints(stack, await readCheckpointBlobs(stack)),
    (n) => n > 0 || first.child.exitCode !== null,
    120_000, // hang guard
  );
  first.child.kill('SIGKILL');
  assert.equal((await first.exited).signal, 'SIGKILL');

  const load = await sending;
  // Read after the kill: nothing can move these checkpoints any more.
  const atKill = await readCheckpointBlobs(stack);
  const past = await writtenPastCheckpoints(stack, atKill);
  assert.ok(past > 0, `rows written past the checkpoints ${JSON.stringify(atKill)} at the kill`);
  const present = await countRows(pool, schema, 'events');
  assert.ok(midStream <= present && present < load.expected.size, `killed after ${present} of ${load.expected.size} events`);

  const second = spawnHubsink(runnerArgs(stack, ['--deadletter', '--json']), stack.env());
  children.push(second);
  await waitFor(
    'all events and dead letters after the restart',
    async () => ({ events: await countRows(pool, schema, 'events'), parked: await countRows(pool, schema, 'dead_letters') }),
    (c) => (c.events >= load.expected.size && c.parked >= load.malformed) || second.child.exitCode !== null,
    300_000, // hang guard: a Citus run at load 19 had 11,667 of the events after 120 s
  ).catch((err: unknown) => {
    throw new Error(`${String(err)}\n${second.stderr().slice(-3000)}`);
  });
  second.child.kill('SIGTERM');
  const exit = await second.exited;
  assert.equal(exit.code, 0, second.stderr().slice(-3000));
  // The new instance took over partitions the killed one had owned.
  assert.match(second.stderr(), /ingest: claimed partition/);
  // Its final stats (the last --json line): it received the rows written past the checkpoints again,
  // and wrote none of them twice.
  const stats = JSON.parse(second.stdoutLines().at(-1) ?? '{}') as { ingest?: { inserted: number; duplicates: number } };
  assert.ok(stats.ingest, second.stdoutLines().slice(-3).join('\n'));
  assert.equal(stats.ingest.inserted, load.expected.size - present);
  assert.ok(stats.ingest.duplicates >= past, `${stats.ingest.duplicates} duplicates seen, ${past} rows were written past the checkpoints`);

  const keys = await eventKeys(pool, schema);
  assert.equal(keys.length, load.expected.size, diff(keys, load.expected));
  assert.deepEqual(new Set(keys), load.expected);
  const parked = await pool.query<{ n: string; sources: string }>(
    `SELECT count(*)::text AS n, count(DISTINCT (source_partition, source_sequence))::text AS sources FROM "${schema}".dead_letters WHERE reason = 'invalid'`,
  );
  assert.deepEqual(parked.rows[0], { n: String(load.malformed), sources: String(load.malformed) });
  assert.equal(await countRows(pool, schema, 'dead_letters'), load.malformed);
}, 900_000); // hang guard for the whole test: its waits add up to more than the suite's 300 s
