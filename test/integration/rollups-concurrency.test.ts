import { test } from 'vitest';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { insertEventRows } from '../../src/db/events.js';
import { RollupBusyError, runRollups, type RollupRunResult } from '../../src/rollups/run.js';
import { ROLLUPS, rollupForGrain } from '../../src/rollups/definitions.js';
import { makeRow } from '../support/rows.js';
import {
  assertCatalogCoarserAgrees,
  assertRollupsMatchEvents,
  eventCount,
  recentBase,
  rollupCount,
  rollupSchema,
  runUntilCaughtUp,
  sampleRows,
  uuidFor,
  type RollupFixture,
} from '../support/rollups-fixture.js';

/** Bounded wait until some session waits for a SHARE lock on the events table (a rollup run's wait for writers). */
async function waitForBlockedLock(f: RollupFixture): Promise<void> {
  for (let i = 0; i < 400; i++) {
    const { rows } = await f.s.pool.query<{ n: string }>(
      `SELECT count(*)::text AS n FROM pg_locks WHERE NOT granted AND mode = 'ShareLock' AND relation = $1::regclass`,
      [`"${f.s.schema}".events`],
    );
    if (rows[0]?.n !== '0') return;
    await delay(25);
  }
  throw new Error('no rollup run queued for the events lock within 10 s');
}

async function lastSeqs(f: RollupFixture): Promise<Record<string, string>> {
  const { rows } = await f.s.pool.query<{ name: string; last_seq: string }>(`SELECT name, last_seq::text FROM "${f.s.schema}".rollup_state`);
  return Object.fromEntries(rows.map((r) => [r.name, r.last_seq]));
}

test('a run waits for an in-flight writer whose sequence value is below the high-water mark', async () => {
  const f = await rollupSchema();
  const writer = await f.s.pool.connect();
  try {
    const base = recentBase();
    await writer.query('BEGIN');
    // Takes ingest_seq 1 and stays uncommitted ...
    await insertEventRows(writer, f.s.schema, [makeRow({ eventId: uuidFor('inflight-a'), tenantId: 91, occurredAt: base })]);
    // ... while ingest_seq 2 commits.
    await insertEventRows(f.s.pool, f.s.schema, [makeRow({ eventId: uuidFor('inflight-b'), tenantId: 91, occurredAt: base })]);
    const run = runRollups(f.s.pool, f.s.schema, { caps: f.caps, maxWindowRows: 1000, lockTimeoutMs: 60_000 });
    await waitForBlockedLock(f);
    await writer.query('COMMIT');
    const results = await run;
    // Had the run not waited, it would have folded in only seq 2 and moved past seq 1 for good.
    assert.deepEqual(
      results.map((r) => [r.name, r.fromSeq, r.toSeq, r.rows]),
      ROLLUPS.map((d) => [d.name, 0, 2, 2]),
    );
    for (const def of ROLLUPS) assert.equal(await rollupCount(f, def), 2);
  } finally {
    writer.release();
    await f.s.drop();
  }
});

test('a writer holding the events lock past the lock timeout: RollupBusyError, state unchanged, the next run catches up', async () => {
  const f = await rollupSchema();
  const writer = await f.s.pool.connect();
  try {
    await insertEventRows(f.s.pool, f.s.schema, sampleRows(10, { seed: 'busy', tenants: [92], base: recentBase() }));
    await writer.query('BEGIN');
    await insertEventRows(writer, f.s.schema, [makeRow({ eventId: uuidFor('busy-held'), tenantId: 92, occurredAt: recentBase() })]);
    await assert.rejects(runRollups(f.s.pool, f.s.schema, { caps: f.caps, maxWindowRows: 1000, lockTimeoutMs: 200 }), RollupBusyError);
    assert.deepEqual(await lastSeqs(f), Object.fromEntries(ROLLUPS.map((d) => [d.name, '0'])));
    assert.equal(await rollupCount(f, rollupForGrain('minute')), 0);
    await writer.query('COMMIT');
    await runUntilCaughtUp(f);
    for (const def of ROLLUPS) assert.equal(await rollupCount(f, def), 11);
  } finally {
    writer.release();
    await f.s.drop();
  }
});

test('five runs at once over one backlog: each event is folded in exactly once per rollup', async () => {
  const f = await rollupSchema();
  try {
    await insertEventRows(f.s.pool, f.s.schema, sampleRows(700, { seed: 'five', tenants: [93, 94], base: recentBase() }));
    const runs = await Promise.all(Array.from({ length: 5 }, () => runRollups(f.s.pool, f.s.schema, { caps: f.caps, maxWindowRows: 200 })));
    await runUntilCaughtUp(f, 200);
    const all = runs.flat();
    for (const def of ROLLUPS) {
      // Windows claimed by concurrent runs are disjoint and consecutive.
      const mine = all.filter((r) => r.name === def.name && r.toSeq > r.fromSeq).sort((a, b) => a.fromSeq - b.fromSeq);
      assert.equal(mine.length, 4, `${def.name}: 700 values in windows of 200`);
      mine.forEach((r, i) => assert.equal(r.fromSeq, i * 200));
      assert.equal(await rollupCount(f, def), 700);
    }
    await assertRollupsMatchEvents(f);
  } finally {
    await f.s.drop();
  }
});

test('ingest running in parallel with several concurrent rollup runs: totals equal exactly', async () => {
  const f = await rollupSchema();
  try {
    const base = recentBase();
    const writers = 4;
    const batches = 12;
    let stop = false;
    const folded: RollupRunResult[] = [];

    const writer = async (w: number): Promise<number> => {
      let inserted = 0;
      for (let b = 0; b < batches; b++) {
        const rows = sampleRows(40, { seed: `par-${w}-${b}`, tenants: [101, 102, 103], base, spreadMinutes: 120 });
        const client = await f.s.pool.connect();
        try {
          await client.query('BEGIN');
          inserted += (await insertEventRows(client, f.s.schema, rows)).inserted;
          // Hold the transaction open a little so commits land out of sequence order.
          await client.query('SELECT pg_sleep($1)', [((w + b) % 4) * 0.02]);
          await client.query('COMMIT');
        } catch (err) {
          await client.query('ROLLBACK');
          throw err;
        } finally {
          client.release();
        }
        // Redeliver the batch now and then: no new rows, no new rollup counts.
        if (b % 3 === 0) assert.equal((await insertEventRows(f.s.pool, f.s.schema, rows)).inserted, 0);
      }
      return inserted;
    };
    const roller = async (): Promise<void> => {
      for (let i = 0; i < 40 && !stop; i++) folded.push(...(await runRollups(f.s.pool, f.s.schema, { caps: f.caps, maxWindowRows: i % 2 ? 100 : 100_000, lockTimeoutMs: 60_000 })));
    };

    const rollers = [roller(), roller(), roller()];
    const inserted = await Promise.all(Array.from({ length: writers }, (_, w) => writer(w)));
    stop = true;
    await Promise.all(rollers);
    for (const run of await runUntilCaughtUp(f)) folded.push(...run);

    const total = inserted.reduce((a, b) => a + b, 0);
    assert.equal(total, writers * batches * 40);
    assert.equal(await eventCount(f), total);
    for (const def of ROLLUPS) {
      assert.equal(await rollupCount(f, def), total, def.name);
      assert.equal(folded.filter((r) => r.name === def.name).reduce((a, r) => a + r.rows, 0), total, `${def.name}: rows folded across all runs`);
    }
    assert.ok(folded.filter((r) => r.name === rollupForGrain('minute').name && r.rows > 0).length > 1, 'rollups ran while ingest was writing');
    await assertRollupsMatchEvents(f);
    await assertCatalogCoarserAgrees(f);
  } finally {
    await f.s.drop();
  }
});
