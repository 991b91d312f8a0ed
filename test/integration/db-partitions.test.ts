import { test } from 'vitest';
import assert from 'node:assert/strict';
import type pg from 'pg';
import { createTestSchema } from '../support/services.js';
import { makeRow } from '../support/rows.js';
import { migrate } from '../../src/db/migrate.js';
import { maintainPartitions, partitionWindow } from '../../src/db/partitions.js';
import { detectCapabilities } from '../../src/db/capabilities.js';
import { insertEventRows } from '../../src/db/events.js';
import { runRollups } from '../../src/rollups/run.js';

const DAY = 86_400_000;

/** Partition names and bounds straight from the catalog, printed in UTC. */
async function catalog(pool: pg.Pool, schema: string): Promise<{ name: string; bound: string }[]> {
  const client = await pool.connect();
  try {
    await client.query("SET TimeZone = 'UTC'");
    const { rows } = await client.query<{ name: string; bound: string }>(
      `SELECT c.relname AS name, pg_get_expr(c.relpartbound, c.oid) AS bound
       FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
       WHERE i.inhparent = to_regclass($1) ORDER BY c.relname`,
      [`"${schema}".events`],
    );
    await client.query('RESET TimeZone');
    return rows;
  } finally {
    client.release();
  }
}

function expected(fromDay: string, days: number): { name: string; bound: string }[] {
  const out: { name: string; bound: string }[] = [];
  const start = Date.parse(`${fromDay}T00:00:00Z`);
  for (let i = 0; i < days; i++) {
    const a = new Date(start + i * DAY).toISOString();
    const b = new Date(start + (i + 1) * DAY).toISOString();
    out.push({
      name: `events_p${a.slice(0, 10).replace(/-/g, '_')}`,
      bound: `FOR VALUES FROM ('${a.slice(0, 10)} 00:00:00+00') TO ('${b.slice(0, 10)} 00:00:00+00')`,
    });
  }
  return out;
}

test('partition maintenance creates daily UTC partitions for the window, is idempotent, and drops expired ones', async () => {
  const s = await createTestSchema('dbp_');
  try {
    await migrate(s.pool, s.schema);
    const caps = await detectCapabilities(s.pool);
    // Late in the day, so a local-time bug would shift names or bounds.
    const now = new Date('2031-03-15T22:30:00Z');
    const first = await maintainPartitions(s.pool, s.schema, { now, aheadDays: 3, retentionDays: 5, caps });
    // From the day holding now − 5d (03-10) through the day after the one holding now + 3d (03-19).
    const want = expected('2031-03-10', 10);
    assert.deepEqual(await catalog(s.pool, s.schema), want);
    assert.deepEqual([...first.created].sort(), want.map((p) => p.name));
    assert.deepEqual(first.dropped, []);

    const again = await maintainPartitions(s.pool, s.schema, { now, aheadDays: 3, retentionDays: 5, caps });
    assert.deepEqual(again, { created: [], dropped: [], kept: [] });
    assert.deepEqual(await catalog(s.pool, s.schema), want);

    // Data in a partition that survives is kept; the window's edges are writable.
    const w = partitionWindow(now, 3, 5);
    const edge = [makeRow({ occurredAt: w.from }), makeRow({ occurredAt: w.to }), makeRow({ occurredAt: new Date('2031-03-13T12:00:00Z') })];
    assert.equal((await insertEventRows(s.pool, s.schema, edge)).inserted, 3);

    // Two days later: 03-10 and 03-11 end at or before now − 5d. 03-11 is empty and goes; 03-10
    // holds a row no rollup has folded in yet, so it stays, and says why.
    const later = new Date(now.getTime() + 2 * DAY);
    const moved = await maintainPartitions(s.pool, s.schema, { now: later, aheadDays: 3, retentionDays: 5, caps });
    assert.deepEqual([...moved.dropped].sort(), ['events_p2031_03_11']);
    assert.deepEqual([...moved.created].sort(), ['events_p2031_03_20', 'events_p2031_03_21']);
    assert.deepEqual(moved.kept.map((k) => k.name), ['events_p2031_03_10']);
    assert.match(moved.kept[0]?.reason ?? '', /holds rows up to ingest_seq \d+ but the rollups have folded in only up to 0/);
    // Once the rollups have folded it in (here through the hook a maintenance run calls), it goes.
    let rolledUp = 0;
    const rollUp = async (): Promise<void> => {
      rolledUp++;
      await runRollups(s.pool, s.schema, { caps, maxWindowRows: 1000 });
    };
    const after = await maintainPartitions(s.pool, s.schema, { now: later, aheadDays: 3, retentionDays: 5, caps, rollUp });
    assert.equal(rolledUp, 1);
    assert.deepEqual(after, { created: [], dropped: ['events_p2031_03_10'], kept: [] });
    const day = await s.pool.query<{ n: string }>(`SELECT sum(events)::text AS n FROM "${s.schema}".rollup_total_day WHERE tenant_id <> 0`);
    assert.equal(day.rows[0]?.n, '3', 'every row, the dropped one included, is in the rollups');
    assert.deepEqual(await catalog(s.pool, s.schema), expected('2031-03-12', 10));
    // Nothing left to fold: the hook is not called again.
    await maintainPartitions(s.pool, s.schema, { now: later, aheadDays: 3, retentionDays: 5, caps, rollUp });
    assert.equal(rolledUp, 1);
    const { rows } = await s.pool.query<{ n: string }>(`SELECT count(*) AS n FROM "${s.schema}".events WHERE occurred_at >= '2031-03-12'`);
    assert.equal(Number(rows[0]?.n), 2);
  } finally {
    await s.drop();
  }
});

test('concurrent maintenance runs create each partition once', async () => {
  const s = await createTestSchema('dbp_');
  try {
    await migrate(s.pool, s.schema);
    const caps = await detectCapabilities(s.pool);
    const now = new Date('2031-07-01T00:00:00Z');
    const runs = await Promise.all([1, 2, 3].map(() => maintainPartitions(s.pool, s.schema, { now, aheadDays: 2, retentionDays: 2, caps })));
    const created = runs.flatMap((r) => r.created).sort();
    // Window [06-29T00:00, 07-03T00:00]: days 06-29 .. 07-04.
    const want = expected('2031-06-29', 6);
    assert.deepEqual(created, want.map((p) => p.name));
    assert.deepEqual(await catalog(s.pool, s.schema), want);
  } finally {
    await s.drop();
  }
});
