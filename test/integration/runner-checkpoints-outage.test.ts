/**
 * Checkpoints under a database outage, read from the blobs themselves: while the runner's database
 * connection is cut (a TCP proxy in front of it), every poll of the checkpoint blobs finds no
 * checkpoint past an ingest event that is not yet written, dead-lettered or parked (test/support/
 * checkpointGuard.ts compares them with events, dead_letters and the dead-letter hub, by the
 * generator's labels), and events stay behind the checkpoints. The runner is then SIGKILLed during
 * the outage, the database comes back, a new runner starts: events hold exactly every distinct valid
 * event once, and each malformed one is parked once.
 */
import { test } from 'vitest';
import assert from 'node:assert/strict';
import type { TcpProxy } from '../support/tcpProxy.js';
import { testDatabaseUrl } from '../support/services.js';
import { auditCheckpoints, labelsByBody } from '../support/checkpointGuard.js';
import { countRows, diff, eventKeys, runnerArgs, sendLoad, spawnHubsink, stackForFile, waitFor, type RunnerProcess, type Stack } from '../support/runner-fixture.js';

let stack: Stack;
let proxy: TcpProxy;
const children: RunnerProcess[] = [];
stackForFile((s) => (stack = s), children, { partitions: 2, databaseProxy: (p) => (proxy = p) });

test('database outage: no checkpoint passes an unwritten event while it lasts; SIGKILL during it, a new runner after it: exact', async () => {
  const { pool, schema } = stack.db;
  const env = stack.env({ DATABASE_URL: proxy.url(testDatabaseUrl()), HUBSINK_TRANSIENT_RETRY_MS: '500' });
  const first = spawnHubsink(runnerArgs(stack, ['--deadletter', '--batch-size', '100']), env);
  children.push(first);
  await waitFor('both partitions claimed', () => Promise.resolve(first.stderr()), (s) => (s.match(/ingest: claimed partition/g) ?? []).length >= 2 || first.child.exitCode !== null, 60_000);
  const load1 = await sendLoad(stack, { count: 1000, duplicates: 0.02, malformed: 0.01, seed: 'ckpt-outage-1' });
  await waitFor(
    'the first load written and parked',
    async () => ({ events: await countRows(pool, schema, 'events'), parked: await countRows(pool, schema, 'dead_letters') }),
    (c) => (c.events >= load1.expected.size && c.parked >= load1.malformed) || first.child.exitCode !== null,
    120_000,
  );
  const labels = labelsByBody(load1.events);
  const before = await waitFor('both partitions checkpointed', () => auditCheckpoints(stack, 2, labels), (a) => Object.keys(a.checkpoints).length === 2, 30_000);
  assert.deepEqual(before.uncovered, []);

  await proxy.cut();
  const load2 = await sendLoad(stack, { count: 2000, duplicates: 0.02, malformed: 0.01, seed: 'ckpt-outage-2' });
  for (const [k, v] of labelsByBody(load2.events)) labels.set(k, v);
  const written = await countRows(pool, schema, 'events');
  // Poll the blobs while the runner fails and retries (bounded: a hang guard, not a timing claim).
  let audits = 0;
  const deadline = Date.now() + 120_000;
  while ((first.stderr().match(/attempt \d+ failed, not checkpointing/g) ?? []).length < 8 && first.child.exitCode === null) {
    assert.ok(Date.now() < deadline, `hang guard: the runner did not fail repeatedly (${first.stderr().slice(-2000)})`);
    const a = await auditCheckpoints(stack, 2, labels);
    assert.deepEqual(a.uncovered, [], `checkpoints ${JSON.stringify(a.checkpoints)}`);
    audits++;
    await new Promise((r) => setTimeout(r, 300));
  }
  assert.equal(first.child.exitCode, null, first.stderr().slice(-2000));
  assert.ok(audits >= 3, `${audits} audits during the outage`);
  assert.match(first.stderr(), /failed, not checkpointing; retrying in \d+ ms: database unreachable/);
  assert.equal(await countRows(pool, schema, 'events'), written, 'nothing written while the database is unreachable');

  first.child.kill('SIGKILL');
  assert.equal((await first.exited).signal, 'SIGKILL');
  const atKill = await auditCheckpoints(stack, 2, labels);
  assert.deepEqual(atKill.uncovered, []);
  // The second load is behind the checkpoints: the valid part of it (at least) is read again.
  assert.ok(atKill.behind >= load2.events.length - load2.malformed, `${atKill.behind} events behind the checkpoints ${JSON.stringify(atKill.checkpoints)}`);

  await proxy.restore();
  const second = spawnHubsink(runnerArgs(stack, ['--deadletter']), stack.env());
  children.push(second);
  const expected = new Set([...load1.expected, ...load2.expected]);
  const malformed = load1.malformed + load2.malformed;
  await waitFor(
    'all events and dead letters after the restart',
    async () => ({ events: await countRows(pool, schema, 'events'), parked: await countRows(pool, schema, 'dead_letters') }),
    (c) => (c.events >= expected.size && c.parked >= malformed) || second.child.exitCode !== null,
    180_000,
  );
  second.child.kill('SIGTERM');
  assert.equal((await second.exited).code, 0, second.stderr().slice(-3000));
  const keys = await eventKeys(pool, schema);
  assert.equal(keys.length, expected.size, diff(keys, expected));
  assert.deepEqual(new Set(keys), expected);
  const parked = await pool.query<{ n: string; sources: string }>(
    `SELECT count(*)::text AS n, count(DISTINCT (source_partition, source_sequence))::text AS sources FROM "${schema}".dead_letters WHERE reason = 'invalid'`,
  );
  assert.deepEqual(parked.rows[0], { n: String(malformed), sources: String(malformed) });
  assert.equal(await countRows(pool, schema, 'dead_letters'), malformed);
  assert.deepEqual((await auditCheckpoints(stack, 2, labels)).uncovered, []);
});
