import { test } from 'vitest';
import assert from 'node:assert/strict';
import { insertEventRows } from '../../src/db/events.js';
import { eventsFolded, rollupStatus, rollUpUntilCaughtUp } from '../../src/rollups/run.js';
import { ROLLUPS } from '../../src/rollups/definitions.js';
import { assertRollupsMatchEvents, recentBase, rollupSchema, sampleRows } from '../support/rollups-fixture.js';

const RETENTION = { minute: 2, hour: 90, day: 3650 };

test('rollUpUntilCaughtUp: stops at maxRuns behind, resumes to caught up, prunes only when asked and not stopped', async () => {
  const f = await rollupSchema();
  try {
    await insertEventRows(f.s.pool, f.s.schema, sampleRows(25, { seed: 'catch-up', tenants: [91, 92], base: recentBase(), spreadMinutes: 30 }));
    const seen: number[] = [];
    const bounded = await rollUpUntilCaughtUp(f.s.pool, f.s.schema, {
      caps: f.caps,
      maxWindowRows: 10,
      maxRuns: 2,
      onRun: (results, run) => {
        seen.push(run);
        assert.equal(results.length, ROLLUPS.length);
      },
    });
    assert.deepEqual(seen, [1, 2]);
    assert.equal(bounded.runs.length, 2);
    assert.equal(bounded.caughtUp, false);
    assert.deepEqual(bounded.pruned, [], 'no retentionDays: nothing pruned');
    assert.deepEqual(bounded.runs.map(eventsFolded), [10, 10]);
    assert.ok((await rollupStatus(f.s.pool, f.s.schema)).every((s) => s.lastSeq === 20 && s.pendingRows === 5));

    // A stop asked before the first run: nothing folded, nothing pruned.
    const stopped = await rollUpUntilCaughtUp(f.s.pool, f.s.schema, { caps: f.caps, maxWindowRows: 10, maxRuns: 5, retentionDays: RETENTION, stopped: () => true });
    assert.deepEqual(stopped, { runs: [], caughtUp: false, pruned: [] });
    assert.ok((await rollupStatus(f.s.pool, f.s.schema)).every((s) => s.lastSeq === 20));

    const rest = await rollUpUntilCaughtUp(f.s.pool, f.s.schema, { caps: f.caps, maxWindowRows: 10, maxRuns: 5, retentionDays: RETENTION });
    assert.equal(rest.runs.length, 1, 'stops at the first run that catches up');
    assert.equal(rest.caughtUp, true);
    assert.equal(eventsFolded(rest.runs[0] ?? []), 5);
    assert.deepEqual(rest.pruned.map((p) => [p.name, p.deletedRows]), ROLLUPS.map((r) => [r.name, 0]));
    await assertRollupsMatchEvents(f);
  } finally {
    await f.s.drop();
  }
});

for (const foldMode of ['deltas', 'direct'] as const) {
  test(`the fold writes no minute rows past the minute retention, hour and day rows for every event (${foldMode})`, async () => {
    const f = await rollupSchema();
    try {
      const now = recentBase();
      // 30 events of the last 30 minutes, 20 of three days ago: a catch-up after a long outage.
      await insertEventRows(f.s.pool, f.s.schema, [
        ...sampleRows(30, { seed: 'retained', tenants: [81, 82], base: now, spreadMinutes: 30 }),
        ...sampleRows(20, { seed: 'old', tenants: [81, 82], base: new Date(now.getTime() - 3 * 86_400_000), spreadMinutes: 30 }),
      ]);
      const r = await rollUpUntilCaughtUp(f.s.pool, f.s.schema, { caps: f.caps, maxWindowRows: 1_000_000, maxRuns: 5, foldMode, now: () => now, retentionDays: { minute: 1, hour: 90, day: 3650 } });
      assert.equal(r.caughtUp, true);
      assert.equal(eventsFolded(r.runs[0] ?? []), 50, 'every event of the window is counted once');
      const sum = async (table: string, tenants: 'one' | 'all') =>
        Number(
          (await f.s.pool.query<{ n: string }>(`SELECT coalesce(sum(events), 0)::text AS n FROM "${f.s.schema}"."${table}" WHERE ${tenants === 'all' ? 'tenant_id = 0' : 'tenant_id <> 0'}`)).rows[0]?.n,
        );
      for (const def of ROLLUPS) {
        const expected = def.grain === 'minute' ? 30 : 50;
        assert.equal(await sum(def.table, 'one'), expected, `${def.name}: storefront rows`);
        if (def.allTenants) assert.equal(await sum(def.table, 'all'), expected, `${def.name}: all-storefronts rows`);
      }
      const oldest = await f.s.pool.query<{ b: Date | null }>(`SELECT min(bucket) AS b FROM "${f.s.schema}".rollup_total_minute`);
      assert.ok((oldest.rows[0]?.b?.getTime() ?? 0) >= now.getTime() - 86_400_000, 'no minute bucket older than a day');
    } finally {
      await f.s.drop();
    }
  });
}
