import { test } from 'vitest';
import assert from 'node:assert/strict';
import { insertEventRows } from '../../src/db/events.js';
import { eventsFolded, rollupStatus, rollUpUntilCaughtUp } from '../../src/rollups/run.js';
import { ROLLUPS } from '../../src/rollups/definitions.js';
import { assertRollupsMatchEvents, recentBase, rollupSchema, sampleRows } from './rollups-fixture.js';

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
