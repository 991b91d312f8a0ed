/**
 * A batch the runner cannot write is held, not skipped: while `events` is unusable (renamed away:
 * every insert fails with a fatal error, so ingestBatch throws), the runner retries the same batches
 * without checkpointing; once the table is back, everything is written exactly once.
 */
import { test } from 'vitest';
import assert from 'node:assert/strict';
import { countRows, diff, eventKeys, runnerArgs, type RunnerProcess, sendLoad, spawnHubsink, type Stack, stackForFile, waitFor } from '../support/runner-fixture.js';

let stack: Stack;
const children: RunnerProcess[] = [];
stackForFile((s) => (stack = s), children, { partitions: 2 });

test('while every write fails the runner retries the same batches; afterwards the result is exact', async () => {
  const { pool, schema } = stack.db;
  const runner = spawnHubsink(runnerArgs(stack, ['--json', '--status-interval', '1']), stack.env());
  children.push(runner);
  await waitFor('both partitions claimed', () => Promise.resolve(runner.stderr()), (s) => (s.match(/ingest: claimed partition/g) ?? []).length >= 2 || runner.child.exitCode !== null, 30_000);
  await pool.query(`ALTER TABLE "${schema}".events RENAME TO events_away`);
  try {
    const load = await sendLoad(stack, { count: 3000, duplicates: 0.02, malformed: 0, seed: 'runner-hold' });
    // Several failed attempts per partition, each logged as not checkpointed.
    await waitFor('repeated failed attempts', () => Promise.resolve(runner.stderr()), (s) => (s.match(/attempt \d+ failed, not checkpointing/g) ?? []).length >= 4 || runner.child.exitCode !== null, 60_000);
    assert.equal(runner.child.exitCode, null);
    assert.match(runner.stderr(), /attempt [2-9]\d* failed, not checkpointing; retrying in \d+ ms: .*events.* does not exist/);
    await pool.query(`ALTER TABLE "${schema}".events_away RENAME TO events`);

    await waitFor('all events', () => countRows(pool, schema, 'events'), (n) => n >= load.expected.size || runner.child.exitCode !== null, 90_000);
    runner.child.kill('SIGTERM');
    assert.equal((await runner.exited).code, 0, runner.stderr().slice(-2000));
    const keys = await eventKeys(pool, schema);
    assert.deepEqual(new Set(keys), load.expected, diff(keys, load.expected));
    assert.equal(keys.length, load.expected.size);
    const stats = JSON.parse(runner.stdoutLines().at(-1) ?? '{}') as { ingest: { received: number; failedAttempts: number; inserted: number } };
    assert.ok(stats.ingest.failedAttempts >= 4);
    // Nothing was skipped: every event sent was received and handled once (the failed attempts do not count).
    assert.equal(stats.ingest.received, 3000);
    assert.equal(stats.ingest.inserted, load.expected.size);
  } finally {
    await pool.query(`ALTER TABLE IF EXISTS "${schema}".events_away RENAME TO events`);
  }
});
