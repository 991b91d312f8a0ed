/**
 * One proof, run for each way a batch's write can fail (a database outage, a table the role may not
 * write, the dead-letter hub refusing sends): a runner has written and checkpointed a first load;
 * then the failure starts and a second load arrives. While the runner fails and retries, every poll
 * of the checkpoint blobs finds no checkpoint past an ingest event that is not written,
 * dead-lettered or parked (checkpointGuard.ts). The runner is SIGKILLed during the failure, the
 * failure ends, a new runner starts: `events` holds exactly every distinct valid event once (by the
 * generator's labels) and each malformed event is parked exactly once.
 */
import assert from 'node:assert/strict';
import { auditCheckpoints, labelsByBody } from './checkpointGuard.js';
import { countRows, diff, eventKeys, runnerArgs, sendLoad, spawnHubsink, waitFor, type RunnerProcess, type SentLoad, type Stack } from './runner-fixture.js';

export interface WriteFailure {
  /** Settings of both runners (the killed one and the one started after the failure). */
  env: NodeJS.ProcessEnv;
  /** Starts the failure; called once the first load is written and checkpointed. */
  start(): Promise<void>;
  /** Ends it; called after the failing runner was killed. */
  end(): Promise<void>;
  /** The cause the runner's retry lines must name ("attempt N failed, not checkpointing; retrying in M ms: <cause>"). */
  cause: RegExp;
  /**
   * What reaches `events` while it lasts: nothing (the write itself fails), or the valid rows of the
   * held batches (they are written before their failures are dead-lettered, and the checkpoint must
   * still stay behind the malformed events the dead-letter hub did not take).
   */
  writesWhileFailing: 'nothing' | 'valid rows';
}

const PARTITIONS = 2;
/** Failed attempts (over both partitions) the blobs are polled through. */
const FAILED_ATTEMPTS = 8;

function failedAttempts(stderr: string): number {
  return (stderr.match(/attempt \d+ failed, not checkpointing/g) ?? []).length;
}

async function stored(stack: Stack): Promise<{ events: number; parked: number }> {
  const { pool, schema } = stack.db;
  return { events: await countRows(pool, schema, 'events'), parked: await countRows(pool, schema, 'dead_letters') };
}

/** The stack must have 2 ingest partitions (stackForFile(..., { partitions: 2 })). */
export async function checkpointsHoldThroughFailure(stack: Stack, children: RunnerProcess[], failure: WriteFailure, seed: string): Promise<void> {
  const { pool, schema } = stack.db;
  const first = spawnHubsink(runnerArgs(stack, ['--deadletter', '--batch-size', '100']), failure.env);
  children.push(first);
  await waitFor('both partitions claimed', () => Promise.resolve(first.stderr()), (s) => (s.match(/ingest: claimed partition/g) ?? []).length >= PARTITIONS || first.child.exitCode !== null, 60_000);
  const load1 = await sendLoad(stack, { count: 1000, duplicates: 0.02, malformed: 0.01, seed: `${seed}-1` });
  await waitFor('the first load written and parked', () => stored(stack), (c) => (c.events >= load1.expected.size && c.parked >= load1.malformed) || first.child.exitCode !== null, 120_000);
  assert.equal(first.child.exitCode, null, first.stderr().slice(-2000));
  const labels = labelsByBody(load1.events);
  const before = await waitFor('both partitions checkpointed', () => auditCheckpoints(stack, PARTITIONS, labels), (a) => Object.keys(a.checkpoints).length === PARTITIONS, 60_000);
  assert.deepEqual(before.uncovered, []);

  await failure.start();
  const written = await countRows(pool, schema, 'events');
  const load2: SentLoad = await sendLoad(stack, { count: 2000, duplicates: 0.02, malformed: 0.01, seed: `${seed}-2` });
  for (const [k, v] of labelsByBody(load2.events)) labels.set(k, v);
  // Poll the blobs while the runner fails and retries (bounded: a hang guard, not a timing claim).
  let audits = 0;
  const deadline = Date.now() + 180_000;
  while (failedAttempts(first.stderr()) < FAILED_ATTEMPTS && first.child.exitCode === null) {
    assert.ok(Date.now() < deadline, `hang guard: the runner did not fail repeatedly (${first.stderr().slice(-2000)})`);
    const a = await auditCheckpoints(stack, PARTITIONS, labels);
    assert.deepEqual(a.uncovered, [], `checkpoints ${JSON.stringify(a.checkpoints)}`);
    audits++;
    await new Promise((r) => setTimeout(r, 300));
  }
  assert.equal(first.child.exitCode, null, first.stderr().slice(-2000));
  assert.ok(audits >= 3, `${audits} audits during the failure`);
  const retries = first.stderr().split('\n').filter((l) => /failed, not checkpointing; retrying in \d+ ms: /.test(l));
  assert.ok(retries.length >= FAILED_ATTEMPTS && retries.every((l) => failure.cause.test(l)), `every retry names the cause ${String(failure.cause)}:\n${retries.slice(0, 4).join('\n')}`);
  if (failure.writesWhileFailing === 'nothing') assert.equal(await countRows(pool, schema, 'events'), written, 'nothing written while the write fails');
  else assert.ok((await countRows(pool, schema, 'events')) > written, 'the held batches wrote their valid rows');

  first.child.kill('SIGKILL');
  assert.equal((await first.exited).signal, 'SIGKILL');
  const atKill = await auditCheckpoints(stack, PARTITIONS, labels);
  assert.deepEqual(atKill.uncovered, []);
  // The failure held the checkpoints back: each malformed event of the second load (which nothing
  // dead-lettered or parked), and with a failed write every valid one too, is read again.
  const held = failure.writesWhileFailing === 'nothing' ? load2.events.length - load2.malformed : load2.malformed;
  assert.ok(atKill.behind >= held, `${atKill.behind} events behind the checkpoints ${JSON.stringify(atKill.checkpoints)}, expected at least ${held}`);

  await failure.end();
  const second = spawnHubsink(runnerArgs(stack, ['--deadletter']), failure.env);
  children.push(second);
  const expected = new Set([...load1.expected, ...load2.expected]);
  const malformed = load1.malformed + load2.malformed;
  await waitFor('all events and dead letters after the restart', () => stored(stack), (c) => (c.events >= expected.size && c.parked >= malformed) || second.child.exitCode !== null, 180_000);
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
  assert.deepEqual((await auditCheckpoints(stack, PARTITIONS, labels)).uncovered, []);
}
