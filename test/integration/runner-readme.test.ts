/**
 * The README's runner steps, followed literally on a fresh schema: `hubsink migrate`, then
 * `hubsink run --deadletter` with nothing but the settings (no fixture partitions, no extra flags).
 * Every valid event must be written and only the malformed ones parked. Before partitions were part
 * of `migrate` and of the runner, this path parked every valid event as `rejected`.
 */
import { test } from 'vitest';
import assert from 'node:assert/strict';
import { listPartitions, partitionPlan } from '../../src/db/partitions.js';
import { countRows, diff, eventKeys, type RunnerProcess, sendLoad, spawnHubsink, type Stack, stackForFile, waitFor } from '../support/runner-fixture.js';

let stack: Stack;
const children: RunnerProcess[] = [];
stackForFile((s) => (stack = s), children, { prepare: false });

test('README runner steps on a fresh schema: migrate, then run --deadletter, writes every valid event', async () => {
  const { pool, schema } = stack.db;
  assert.deepEqual(await listPartitions(pool, schema).catch(() => []), [], 'the schema starts empty');

  const planBefore = partitionPlan(new Date(), 3, 30).days.map((d) => d.name);
  const migrate = spawnHubsink(['migrate'], stack.env());
  children.push(migrate);
  const m = await migrate.exited;
  assert.equal(m.code, 0, migrate.stderr());
  // migrate leaves the database ready to take events: the whole accepted window has partitions.
  const planAfter = partitionPlan(new Date(), 3, 30).days.map((d) => d.name);
  const names = (await listPartitions(pool, schema)).map((p) => p.name);
  const covered = (plan: string[]) => plan.every((n) => names.includes(n));
  assert.ok(covered(planBefore) || covered(planAfter), `partitions after migrate: ${names.join(', ')}`);
  assert.match(migrate.stdoutLines().join('\n'), /created events_p\d{4}_\d{2}_\d{2}/);

  const runner = spawnHubsink(['run', '--deadletter'], stack.env());
  children.push(runner);
  const load = await sendLoad(stack, { count: 3000, duplicates: 0.01, malformed: 0.01, seed: 'runner-readme' });
  assert.ok(load.malformed > 5);
  // Wait until every event is accounted for somewhere (written or parked), whatever the outcome.
  await waitFor(
    'every event written or parked',
    async () => (await countRows(pool, schema, 'events')) + (await countRows(pool, schema, 'dead_letters')),
    (n) => n >= load.expected.size + load.malformed || runner.child.exitCode !== null,
    120_000,
  );
  const parked = await pool.query<{ reason: string; n: string }>(`SELECT reason, count(*)::text AS n FROM "${schema}".dead_letters GROUP BY reason ORDER BY reason`);
  assert.deepEqual(parked.rows, [{ reason: 'invalid', n: String(load.malformed) }], runner.stderr().slice(-2000));
  const keys = await eventKeys(pool, schema);
  assert.equal(keys.length, load.expected.size, diff(keys, load.expected));
  assert.deepEqual(new Set(keys), load.expected);

  runner.child.kill('SIGTERM');
  const exit = await runner.exited;
  assert.equal(exit.code, 0, runner.stderr().slice(-2000));
});
