/**
 * Migration 005 on a deployment that already has the single-cube rollups of migration 003: the new
 * rollups start at the old cubes' watermarks, so no event already in the old cubes is folded twice.
 */
import { test } from 'vitest';
import assert from 'node:assert/strict';
import { cp, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { defaultMigrationsDir, migrate } from '../../src/db/migrate.js';
import { detectCapabilities } from '../../src/db/capabilities.js';
import { configureSession } from '../../src/db/session.js';
import { maintainPartitions } from '../../src/db/partitions.js';
import { insertEventRows } from '../../src/db/events.js';
import { GRAIN_MS, LEGACY_ROLLUPS, ROLLUPS, bucketStart, rollupForGrain } from '../../src/rollups/definitions.js';
import { loadSketchProfile, runRollups } from '../../src/rollups/run.js';
import { dropLegacy, migrateHistory } from '../../src/rollups/history.js';
import { createTestSchema, type TestSchema } from '../support/services.js';
import { assertRollupsMatchEvents, estimateDistinct, exactDistinct, recentBase, rollupCount, sampleRows, snapshot, type RollupFixture } from '../support/rollups-fixture.js';

/** A schema migrated only up to 004, as a deployment before issue 18 is. */
export async function schemaBefore005(prefix: string): Promise<{ s: TestSchema; upgrade: () => Promise<string[]> }> {
  const s = await createTestSchema(prefix);
  configureSession(s.pool, await detectCapabilities(s.pool), { citusCachedConnsPerWorker: 8 });
  const dir = await mkdtemp(path.join(tmpdir(), 'hubsink-mig-'));
  const all = await defaultMigrationsDir();
  try {
    for (const f of await readdir(all)) if (/^00[1-4]_[a-z0-9_]+\.sql$/.test(f)) await cp(path.join(all, f), path.join(dir, f));
    await migrate(s.pool, s.schema, { dir });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  await maintainPartitions(s.pool, s.schema, { now: new Date(), aheadDays: 3, retentionDays: 14, caps: await detectCapabilities(s.pool) });
  return { s, upgrade: async () => (await migrate(s.pool, s.schema)).applied };
}

test('migration 005 seeds each new rollup at the watermark of the old cube of its grain and drops the old state rows', async () => {
  const { s, upgrade } = await schemaBefore005('rmig_');
  try {
    await insertEventRows(s.pool, s.schema, sampleRows(50, { seed: 'mig', tenants: [1, 2], base: recentBase(), spreadMinutes: 30 }));
    // The old cubes had folded in different amounts (a failed hour run, say).
    for (const [name, seq] of [['minute', 40], ['hour', 30], ['day', 40]] as const) {
      await s.pool.query(`UPDATE "${s.schema}".rollup_state SET last_seq = $2 WHERE name = $1`, [name, seq]);
    }
    assert.deepEqual(await upgrade(), ['005_rollups_per_question', '006_access', '007_rollup_custom_specs']);
    const { rows } = await s.pool.query<{ name: string; last_seq: string }>(`SELECT name, last_seq::text FROM "${s.schema}".rollup_state ORDER BY name`);
    assert.deepEqual(
      rows,
      ROLLUPS.map((d) => ({ name: d.name, last_seq: d.grain === 'hour' ? '30' : '40' })).sort((a, b) => a.name.localeCompare(b.name)),
    );
    // The old tables are still there for the history copy.
    for (const t of ['rollup_minute', 'rollup_hour', 'rollup_day']) assert.ok((await s.pool.query<{ r: string | null }>(`SELECT to_regclass($1)::text AS r`, [`"${s.schema}".${t}`])).rows[0]?.r, t);
    // One run folds only what the old cubes had not: the hour rollups 20 events, the others 10,
    // all in one transaction with two windows.
    const caps = await detectCapabilities(s.pool);
    const runs = await runRollups(s.pool, s.schema, { caps, maxWindowRows: 1_000_000 });
    assert.deepEqual(
      runs.map((r) => [r.name, r.fromSeq, r.toSeq, r.rows]),
      ROLLUPS.map((d) => (d.grain === 'hour' ? [d.name, 30, 50, 20] : [d.name, 40, 50, 10])),
    );
  } finally {
    await s.drop();
  }
});

test('migrate-history: each new rollup gains exactly the old cube per tenant and bucket; resumable after a failure, safe to run twice; --drop-old only once done', async () => {
  const { s, upgrade } = await schemaBefore005('rhist_');
  try {
    const caps = await detectCapabilities(s.pool);
    // Four days of history folded into the old cubes, as a deployment before issue 18 holds it.
    await insertEventRows(s.pool, s.schema, sampleRows(1500, { seed: 'hist', tenants: [3, 4, 5], base: recentBase(), spreadMinutes: 4 * 1440 }));
    await runRollups(s.pool, s.schema, { caps, maxWindowRows: 1_000_000, rollups: LEGACY_ROLLUPS });
    await upgrade();
    const f: RollupFixture = { s, caps, sketch: await loadSketchProfile(s.pool, s.schema, caps) };
    // Nothing new since: the new rollups are empty until the history is copied.
    for (const def of ROLLUPS) assert.equal(await rollupCount(f, def), 0);
    await assert.rejects(dropLegacy(s.pool, s.schema), /not yet copied and verified/);

    // A run that fails after its first chunk keeps that chunk and nothing of the failed one.
    let chunks = 0;
    await assert.rejects(
      migrateHistory(s.pool, s.schema, {
        caps,
        chunkDays: 1,
        log: () => {
          if (++chunks === 2) throw new Error('interrupted');
        },
      }),
      /interrupted/,
    );
    const lines: string[] = [];
    const done = await migrateHistory(s.pool, s.schema, { caps, chunkDays: 1, log: (l) => lines.push(l) });
    assert.ok(done.every((p) => p.finished));
    assert.equal(done.length, ROLLUPS.length);
    assert.ok(lines.length > ROLLUPS.length, 'several chunks per pair');

    // Per tenant and bucket, every new rollup equals the old cube of its grain; per dimension and
    // for all storefronts it equals the raw events.
    for (const def of ROLLUPS) {
      const cube = LEGACY_ROLLUPS.find((l) => l.grain === def.grain);
      assert.ok(cube);
      const per = (table: string) =>
        s.pool
          .query<{ k: string; e: string; r: string }>(`SELECT tenant_id || '|' || bucket AS k, sum(events)::text AS e, sum(revenue)::text AS r FROM "${s.schema}".${table} WHERE tenant_id <> 0 GROUP BY 1 ORDER BY 1`)
          .then((x) => x.rows);
      assert.deepEqual(await per(def.table), await per(cube.table), def.name);
      assert.equal(await rollupCount(f, def), 1500, def.name);
    }
    await assertRollupsMatchEvents(f);
    // Distinct counts: the unioned sketches give the old cube's estimate.
    const from = new Date(Date.now() - 6 * GRAIN_MS.day);
    const to = new Date(Date.now() + GRAIN_MS.day);
    for (const t of [3, 0]) {
      const viaNew = await estimateDistinct(f, rollupForGrain('day'), t, bucketStart(from, 'day'), to);
      const exact = await exactDistinct(f, t, from, to);
      for (const k of ['sessions', 'users'] as const) assert.ok(Math.abs(viaNew[k] - exact[k]) <= 3 * f.sketch.relativeError * exact[k] + 1, `${t} ${k}`);
    }

    // Twice: nothing more is copied.
    const before = await Promise.all(ROLLUPS.map((d) => snapshot(f, d)));
    const again: string[] = [];
    await migrateHistory(s.pool, s.schema, { caps, chunkDays: 1, log: (l) => again.push(l) });
    assert.deepEqual(again, []);
    assert.deepEqual(await Promise.all(ROLLUPS.map((d) => snapshot(f, d))), before);

    assert.deepEqual(await dropLegacy(s.pool, s.schema), ['rollup_minute', 'rollup_hour', 'rollup_day']);
    assert.deepEqual(await migrateHistory(s.pool, s.schema, { caps }), []);
  } finally {
    await s.drop();
  }
});
