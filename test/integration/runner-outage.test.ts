/**
 * A database outage does not copy the stream onto the dead-letter hub: while the database cannot be
 * reached at all (the runner's connection goes through a TCP proxy that is cut mid-stream), the
 * runner keeps its checkpoints and retries the same batches in place; nothing is dead-lettered.
 * Once the database is back, every event is written exactly once.
 */
import { test } from 'vitest';
import assert from 'node:assert/strict';
import type { TcpProxy } from '../support/tcpProxy.js';
import { testDatabaseUrl } from '../support/services.js';
import { countRows, diff, eventKeys, runnerArgs, sendLoad, spawnHubsink, stackForFile, waitFor, type RunnerProcess, type Stack } from '../support/runner-fixture.js';

let stack: Stack;
let proxy: TcpProxy;
const children: RunnerProcess[] = [];
stackForFile((s) => (stack = s), children, { partitions: 2, databaseProxy: (p) => (proxy = p) });

const deadLettered = (): number => ['0', '1'].reduce((n, p) => n + stack.emu.partitionEvents(stack.dlHub, p).length, 0);

test('database unreachable mid-stream: nothing reaches the dead-letter hub, the runner retries in place, and afterwards every event is written once', async () => {
  const { pool, schema } = stack.db;
  // A short in-process budget, so batches fail over to the runner's own retry quickly.
  const env = stack.env({ DATABASE_URL: proxy.url(testDatabaseUrl()), HUBSINK_TRANSIENT_RETRY_MS: '500' });
  const runner = spawnHubsink(runnerArgs(stack, ['--deadletter', '--json', '--status-interval', '1']), env);
  children.push(runner);
  await waitFor('both partitions claimed', () => Promise.resolve(runner.stderr()), (s) => (s.match(/ingest: claimed partition/g) ?? []).length >= 2 || runner.child.exitCode !== null, 30_000);
  const first = await sendLoad(stack, { count: 1000, duplicates: 0.02, malformed: 0, seed: 'outage-1' });
  await waitFor('the first load written', () => countRows(pool, schema, 'events'), (n) => n >= first.expected.size || runner.child.exitCode !== null, 60_000);

  await proxy.cut();
  const second = await sendLoad(stack, { count: 2000, duplicates: 0.02, malformed: 0, seed: 'outage-2' });
  await waitFor(
    'repeated failed attempts while the database is unreachable',
    () => Promise.resolve(runner.stderr()),
    (s) => (s.match(/attempt \d+ failed, not checkpointing/g) ?? []).length >= 6 || runner.child.exitCode !== null,
    90_000,
  );
  assert.equal(runner.child.exitCode, null);
  assert.match(runner.stderr(), /attempt [2-9]\d* failed, not checkpointing; retrying in \d+ ms: database unreachable .*(ECONNREFUSED|ECONNRESET|terminated)/);
  assert.equal(deadLettered(), 0, 'nothing was copied onto the dead-letter hub');

  await proxy.restore();
  const expected = new Set([...first.expected, ...second.expected]);
  await waitFor('all events', () => countRows(pool, schema, 'events'), (n) => n >= expected.size || runner.child.exitCode !== null, 120_000);
  runner.child.kill('SIGTERM');
  assert.equal((await runner.exited).code, 0, runner.stderr().slice(-2000));
  const keys = await eventKeys(pool, schema);
  assert.equal(keys.length, expected.size);
  assert.deepEqual(new Set(keys), expected, diff(keys, expected));
  assert.equal(deadLettered(), 0);
  assert.equal(await countRows(pool, schema, 'dead_letters'), 0);
});
