/**
 * The rollup cycle's wait for in-flight writers never stalls ingest for long: one wait per cycle
 * for all rollups together, bounded by a short lock_timeout, and a cycle that cannot get the lock
 * within it skips with nothing changed. (How long inserts actually stall is measured by
 * bench/stall.ts, not here.)
 */
import { test } from 'vitest';
import assert from 'node:assert/strict';
import { insertEventRows } from '../../src/db/events.js';
import { DEFAULT_LOCK_TIMEOUT_MS, RollupBusyError, runRollups } from '../../src/rollups/run.js';
import { ROLLUPS } from '../../src/rollups/definitions.js';
import { makeRow } from '../support/rows.js';
import { countingPool } from '../support/countingPool.js';
import { testDatabaseUrl } from '../support/services.js';
import { assertRollupsMatchEvents, eventCount, recentBase, rollupCount, rollupSchema, runUntilCaughtUp, sampleRows, uuidFor } from '../support/rollups-fixture.js';

test('a cycle waits for writers once for all rollups, with a lock_timeout of at most 2 s, and none when there is nothing new', async () => {
  const f = await rollupSchema('rlock_');
  const counted = countingPool({ connectionString: testDatabaseUrl(), max: 2, options: `-c search_path=${f.s.schema},public` });
  try {
    await insertEventRows(f.s.pool, f.s.schema, sampleRows(300, { seed: 'lock-once', tenants: [71, 72], base: recentBase() }));
    const runs = await runRollups(counted.pool, f.s.schema, { caps: f.caps, maxWindowRows: 1_000_000 });
    assert.equal(runs.length, ROLLUPS.length);
    assert.ok(runs.every((r) => r.caughtUp && r.rows === 300));
    const locks = counted.statements.filter((t) => /^LOCK TABLE .* IN SHARE MODE$/.test(t));
    assert.equal(locks.length, 1, counted.statements.join('\n'));
    const timeouts = counted.calls.filter((c) => c.text.includes("set_config('lock_timeout'"));
    assert.equal(timeouts.length, 1);
    const ms = Number(timeouts[0]?.values[0]);
    assert.ok(ms >= 500 && ms <= 2000, `lock_timeout ${ms} ms`);
    assert.equal(ms, DEFAULT_LOCK_TIMEOUT_MS);
    // Caught up: the next cycle does not queue for the lock at all.
    counted.reset();
    await runRollups(counted.pool, f.s.schema, { caps: f.caps, maxWindowRows: 1_000_000 });
    assert.equal(counted.statements.filter((t) => t.startsWith('LOCK TABLE')).length, 0);
    await assertRollupsMatchEvents(f);
  } finally {
    await counted.pool.end();
    await f.s.drop();
  }
});

test('a cycle that cannot get the lock within the default bound skips: RollupBusyError, every watermark unchanged; totals exact once the writer commits', async () => {
  const f = await rollupSchema('rlock_busy_');
  const writer = await f.s.pool.connect();
  try {
    await insertEventRows(f.s.pool, f.s.schema, sampleRows(50, { seed: 'lock-busy', tenants: [73], base: recentBase() }));
    await runUntilCaughtUp(f);
    const before = await f.s.pool.query<{ name: string; last_seq: string; last_run_at: Date }>(`SELECT name, last_seq::text, last_run_at FROM "${f.s.schema}".rollup_state ORDER BY name`);
    await insertEventRows(f.s.pool, f.s.schema, sampleRows(20, { seed: 'lock-busy-2', tenants: [73], base: recentBase() }));
    await writer.query('BEGIN');
    await insertEventRows(writer, f.s.schema, [makeRow({ eventId: uuidFor('lock-busy-held'), tenantId: 73, occurredAt: recentBase() })]);
    await assert.rejects(runRollups(f.s.pool, f.s.schema, { caps: f.caps, maxWindowRows: 1_000_000 }), RollupBusyError);
    const after = await f.s.pool.query<{ name: string; last_seq: string; last_run_at: Date }>(`SELECT name, last_seq::text, last_run_at FROM "${f.s.schema}".rollup_state ORDER BY name`);
    assert.deepEqual(after.rows, before.rows);
    for (const def of ROLLUPS) assert.equal(await rollupCount(f, def), 50);
    await writer.query('COMMIT');
    await runUntilCaughtUp(f);
    assert.equal(await eventCount(f), 71);
    for (const def of ROLLUPS) assert.equal(await rollupCount(f, def), 71);
    await assertRollupsMatchEvents(f);
  } finally {
    writer.release();
    await f.s.drop();
  }
});

test("runs that start together wait for the writers at once: one run's grant does not make another busy, a writer still does", async () => {
  const f = await rollupSchema('rlock_share_');
  const other = await f.s.pool.connect();
  const writer = await f.s.pool.connect();
  try {
    await insertEventRows(f.s.pool, f.s.schema, sampleRows(40, { seed: 'lock-share', tenants: [74], base: recentBase() }));
    // Another run holding its wait's lock, as it does for an instant (held here for the whole run).
    await other.query('BEGIN');
    await other.query(`LOCK TABLE "${f.s.schema}".events IN SHARE MODE`);
    const runs = await runRollups(f.s.pool, f.s.schema, { caps: f.caps, maxWindowRows: 1_000_000, lockTimeoutMs: 500 });
    assert.ok(runs.length === ROLLUPS.length && runs.every((r) => r.caughtUp && r.rows === 40), JSON.stringify(runs));
    await other.query('ROLLBACK');
    // A writer's open insert still holds a cycle off.
    await writer.query('BEGIN');
    await insertEventRows(writer, f.s.schema, [makeRow({ eventId: uuidFor('lock-share-held'), tenantId: 74, occurredAt: recentBase() })]);
    await assert.rejects(runRollups(f.s.pool, f.s.schema, { caps: f.caps, maxWindowRows: 1_000_000, lockTimeoutMs: 500 }), RollupBusyError);
    await writer.query('COMMIT');
    await runUntilCaughtUp(f);
    for (const def of ROLLUPS) assert.equal(await rollupCount(f, def), 41);
    await assertRollupsMatchEvents(f);
  } finally {
    await other.query('ROLLBACK').catch(() => undefined);
    await writer.query('ROLLBACK').catch(() => undefined);
    other.release();
    writer.release();
    await f.s.drop();
  }
});
