/**
 * `hubsink run` end to end, as a child process: emulator + Azurite + PostgreSQL, real SDK clients.
 * 20,000 generated events with 2% exact re-sends and 0.5% malformed bodies: `events` must hold
 * exactly the distinct valid ones, and every malformed one must be parked once.
 */
import { test } from 'vitest';
import assert from 'node:assert/strict';
import { countRows, diff, eventKeys, runnerArgs, type RunnerProcess, sendLoad, spawnHubsink, type Stack, stackForFile, waitFor } from '../support/runner-fixture.js';
import type { RunnerStats } from '../../src/runner/stats.js';

let stack: Stack;
const children: RunnerProcess[] = [];
stackForFile((s) => (stack = s), children);

async function rolledUp(pool: import('pg').Pool, schema: string): Promise<number[]> {
  const out: number[] = [];
  for (const grain of ['minute', 'hour', 'day']) {
    const { rows } = await pool.query<{ n: string }>(`SELECT coalesce(sum(events), 0)::text AS n FROM "${schema}".rollup_total_${grain} WHERE tenant_id <> 0`);
    out.push(Number(rows[0]?.n ?? 0));
  }
  return out;
}

test('20,000 events with 2% duplicates and 0.5% malformed: events holds exactly the distinct valid ones, malformed are parked, rollups count each once', async () => {
  const load = await sendLoad(stack, { count: 20_000, duplicates: 0.02, malformed: 0.005, seed: 'runner-exact' });
  assert.equal(load.events.length, 20_000);
  assert.ok(load.malformed > 50 && load.expected.size < 20_000 - load.malformed, 'the load has malformed events and duplicates');

  const runner = spawnHubsink([...runnerArgs(stack, ['--deadletter', '--rollups', '--rollup-interval', '1', '--json'])], stack.env());
  children.push(runner);
  const { pool, schema } = stack.db;
  await waitFor(
    'all events and dead letters',
    async () => ({ events: await countRows(pool, schema, 'events'), parked: await countRows(pool, schema, 'dead_letters') }),
    (c) => (c.events >= load.expected.size && c.parked >= load.malformed) || runner.child.exitCode !== null,
    120_000,
  );
  // The rollup timer folds every written event into each grain exactly once.
  const sums = await waitFor('rollups to catch up', () => rolledUp(pool, schema), (s) => s.every((n) => n >= load.expected.size) || runner.child.exitCode !== null, 60_000);
  assert.deepEqual(sums, [load.expected.size, load.expected.size, load.expected.size]);
  runner.child.kill('SIGTERM');
  const exit = await runner.exited;
  assert.equal(exit.code, 0, `runner exit ${JSON.stringify(exit)}\n${runner.stderr().slice(-3000)}`);

  const keys = await eventKeys(pool, schema);
  assert.equal(keys.length, load.expected.size, diff(keys, load.expected));
  assert.deepEqual(new Set(keys), load.expected, diff(keys, load.expected));

  const parked = await pool.query<{ reason: string; n: string; sources: string }>(
    `SELECT reason, count(*)::text AS n, count(DISTINCT (source_partition, source_sequence))::text AS sources FROM "${schema}".dead_letters GROUP BY reason`,
  );
  assert.deepEqual(parked.rows, [{ reason: 'invalid', n: String(load.malformed), sources: String(load.malformed) }]);
  // Every parked body is one of the malformed bodies sent.
  const malformedBodies = new Set(load.events.filter((e) => e.kind === 'malformed').map((e) => e.body.toString('hex')));
  const bodies = await pool.query<{ body: Buffer }>(`SELECT body FROM "${schema}".dead_letters`);
  for (const r of bodies.rows) assert.ok(malformedBodies.has(r.body.toString('hex')));

  // The final status line (JSON on stdout) accounts for every event.
  const last = runner.stdoutLines().at(-1);
  assert.ok(last, 'a final status line');
  const stats = JSON.parse(last) as RunnerStats;
  assert.equal(stats.ingest.inserted, load.expected.size);
  assert.equal(stats.ingest.received, 20_000);
  assert.equal(stats.ingest.deadLettered.invalid, load.malformed);
  assert.equal(stats.ingest.inserted + stats.ingest.duplicates + stats.ingest.deadLettered.invalid, 20_000);
  assert.equal(stats.deadletter.parked.invalid, load.malformed);
  assert.ok(stats.rollups.runs > 0);
  // Each event once, however many rollups it was folded into.
  assert.equal(stats.rollups.folded, load.expected.size);
  assert.match(runner.stderr(), /runner stopped/);
});

test('a missing setting is named in a clear error with exit code 2', async () => {
  const env = stack.env();
  delete env.EventHubConnection;
  delete env.AzureWebJobsStorage;
  const p = spawnHubsink(['run'], env);
  children.push(p);
  const exit = await p.exited;
  assert.equal(exit.code, 2);
  assert.match(p.stderr(), /EventHubConnection is not set/);
  assert.match(p.stderr(), /AzureWebJobsStorage is not set/);
  assert.doesNotMatch(p.stderr(), /DATABASE_URL/);
});

test('bad arguments are usage errors (exit 2); --help documents the settings', async () => {
  const bad = spawnHubsink(['run', '--batch-size', 'zero'], stack.env());
  children.push(bad);
  assert.equal((await bad.exited).code, 2);
  assert.match(bad.stderr(), /batch-size/);
  const help = spawnHubsink(['run', '--help'], stack.env());
  children.push(help);
  assert.equal((await help.exited).code, 0);
  assert.match(help.stdoutLines().join('\n'), /--deadletter[\s\S]*AzureWebJobsStorage/);
});

test('an unmigrated schema is refused at start-up, not retried forever', async () => {
  const p = spawnHubsink(runnerArgs(stack), stack.env({ HUBSINK_SCHEMA: 'no_such_schema_here' }));
  children.push(p);
  const exit = await p.exited;
  assert.equal(exit.code, 2);
  assert.match(p.stderr(), /no_such_schema_here\.events does not exist: run `hubsink migrate` first/);
});
