/**
 * Two runners at once on the same hub, checkpoint container and consumer group: they share the
 * partitions through the checkpoint store, and `events` still holds exactly the distinct valid
 * events.
 *
 * The hand-over happens, by construction, while batches are in flight: the first runner owns every
 * partition and reaches the database through a TCP proxy, which stops answering mid-stream, so its
 * batches stay in flight (events received, not written, not checkpointed). The second runner starts
 * then and takes partitions over: the ownership blobs show a partition's owner id change from the
 * first runner's to another while that partition's checkpoint is behind its last event, and the
 * runners' logs show the claim and the release. The first runner's database comes back after that,
 * so its in-flight batches of partitions it no longer owns finish late, beside the new owner's.
 */
import { test } from 'vitest';
import assert from 'node:assert/strict';
import { readCheckpointBlobs, readOwnerBlobs } from '../support/checkpointGuard.js';
import { testDatabaseUrl } from '../support/services.js';
import type { TcpProxy } from '../support/tcpProxy.js';
import { countRows, diff, eventKeys, runnerArgs, type RunnerProcess, sendLoad, spawnHubsink, type Stack, stackForFile, waitFor } from '../support/runner-fixture.js';

const PARTITIONS = 4;
let stack: Stack;
let proxy: TcpProxy;
const children: RunnerProcess[] = [];
stackForFile((s) => (stack = s), children, { partitions: PARTITIONS, databaseProxy: (p) => (proxy = p) });

function claimed(stderr: string): Set<string> {
  return new Set([...stderr.matchAll(/ingest: claimed partition (\d+)/g)].map((m) => m[1] ?? ''));
}

function released(stderr: string): Set<string> {
  return new Set([...stderr.matchAll(/ingest: released partition (\d+)/g)].map((m) => m[1] ?? ''));
}

test('a partition changes owner while batches are in flight; the two runners stay exact', async () => {
  const { pool, schema } = stack.db;
  const a = spawnHubsink(runnerArgs(stack, ['--deadletter', '--batch-size', '100']), stack.env({ DATABASE_URL: proxy.url(testDatabaseUrl()) }));
  children.push(a);
  await waitFor('the first runner to claim every partition', () => Promise.resolve(claimed(a.stderr()).size), (n) => n === PARTITIONS || a.child.exitCode !== null, 60_000);
  const sending = sendLoad(stack, { count: 20_000, duplicates: 0.02, malformed: 0.005, seed: 'runner-two', rate: 3000 });
  await waitFor('the first runner to start writing', () => countRows(pool, schema, 'events'), (n) => n > 1000 || a.child.exitCode !== null, 180_000); // hang guard
  assert.equal(a.child.exitCode, null, a.stderr().slice(-2000));
  const owners = await readOwnerBlobs(stack);
  const ownerA = owners['0'] ?? '';
  assert.ok(ownerA !== '' && Object.values(owners).length === PARTITIONS && Object.values(owners).every((o) => o === ownerA), JSON.stringify(owners));

  // The first runner's writes now hang: whatever it has received stays in flight, unacknowledged.
  proxy.hold();
  const b = spawnHubsink(runnerArgs(stack, ['--deadletter', '--batch-size', '100']), stack.env());
  children.push(b);
  const moved = await waitFor(
    'a partition owned by the second runner',
    async () => {
      const now = await readOwnerBlobs(stack);
      const checkpoints = await readCheckpointBlobs(stack);
      const p = Object.keys(now).find((id) => now[id] !== '' && now[id] !== ownerA);
      return p === undefined ? undefined : { partition: p, owner: now[p], checkpoint: checkpoints[p] ?? -1, last: stack.emu.partitionEvents(stack.hub, p).at(-1)?.sequenceNumber ?? -1 };
    },
    (m) => m !== undefined || a.child.exitCode !== null || b.child.exitCode !== null,
    180_000, // hang guard
  );
  assert.ok(moved, `${a.stderr().slice(-1000)}\n${b.stderr().slice(-1000)}`);
  // Events of that partition were still unacknowledged when it changed owner.
  assert.ok(moved.checkpoint < moved.last, `partition ${moved.partition} moved to ${String(moved.owner)} at checkpoint ${moved.checkpoint} of ${moved.last}`);
  // The database back: the first runner's batches finish, and its pump of that partition, no longer
  // waiting on them, meets the stolen receiver and releases it (the SDK drops a pump only then).
  proxy.release();
  await waitFor('the first runner to release it', () => Promise.resolve(released(a.stderr())), (r) => r.has(moved.partition) || a.child.exitCode !== null, 120_000); // hang guard
  assert.ok(claimed(b.stderr()).has(moved.partition), b.stderr().slice(-2000));
  assert.equal(a.child.exitCode, null, a.stderr().slice(-2000));

  const load = await sending;
  await waitFor(
    'all events and dead letters',
    async () => ({ events: await countRows(pool, schema, 'events'), parked: await countRows(pool, schema, 'dead_letters') }),
    (c) => (c.events >= load.expected.size && c.parked >= load.malformed) || a.child.exitCode !== null || b.child.exitCode !== null,
    180_000,
  );
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
}, 900_000); // hang guard for the whole test: its waits add up to more than the suite's 300 s (a Citus run at load 19 took 210 s)
