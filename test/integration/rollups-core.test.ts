import { test } from 'vitest';
import assert from 'node:assert/strict';
import { insertEventRows } from '../../src/db/events.js';
import { loadSketchProfile, pruneRollups, rebuildRollups, RebuildRangeError, rollupStatus, runRollups } from '../../src/rollups/run.js';
import { listPartitions } from '../../src/db/partitions.js';
import { GRAIN_MS, LEGACY_ROLLUPS, ROLLUPS, bucketStart, isDistinctMeasure, rollupForGrain, type RollupDefinition } from '../../src/rollups/definitions.js';
import { KMV_K, sketchProfile } from '../../src/rollups/sketches.js';
import { expectedColumnTypes } from '../../src/rollups/sql.js';
import { makeRow } from '../support/rows.js';
import { noCitus, noHll } from '../support/services.js';
import {
  assertCatalogCoarserAgrees,
  assertRollupsMatchEvents,
  estimateDistinct,
  eventCount,
  exactDistinct,
  recentBase,
  rollupCount,
  rollupSchema,
  runUntilCaughtUp,
  sampleRows,
  snapshot,
  uuidFor,
} from '../support/rollups-fixture.js';

const minute = rollupForGrain('minute');
const hour = rollupForGrain('hour');
const day = rollupForGrain('day');
const names = ROLLUPS.map((r) => r.name);
const withSketches = ROLLUPS.filter((r) => r.measures.some(isDistinctMeasure));

test('migration: rollup tables match the definitions and the sketch profile the server supports', async () => {
  const f = await rollupSchema();
  try {
    for (const def of ROLLUPS) {
      const { rows } = await f.s.pool.query<{ attname: string; typname: string }>(
        `SELECT a.attname, t.typname FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
         WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped`,
        [`"${f.s.schema}".${def.table}`],
      );
      assert.deepEqual(Object.fromEntries(rows.map((r) => [r.attname, r.typname])), expectedColumnTypes(def, f.sketch), def.table);
      const seq = await f.s.pool.query(
        `SELECT 1 FROM pg_depend d JOIN pg_class c ON c.oid = d.objid WHERE d.refobjid = $1::regclass AND c.relkind = 'S'`,
        [`"${f.s.schema}".${def.table}`],
      );
      assert.equal(seq.rowCount, 0, `${def.table} must not own a sequence (it would stop Citus pushdown)`);
    }
    // Small rows: no reserved free space on tables that are appended bucket after bucket.
    const opts = await f.s.pool.query<{ relname: string; reloptions: string[] | null }>(
      `SELECT c.relname, c.reloptions FROM pg_class c WHERE c.oid = ANY($1::regclass[])`,
      [ROLLUPS.map((r) => `"${f.s.schema}".${r.table}`)],
    );
    assert.equal(opts.rows.length, ROLLUPS.length);
    for (const r of opts.rows) assert.equal(r.reloptions, null, r.relname);
    // One state row per definition; the old cubes' are gone (they are never folded again).
    const state = await f.s.pool.query<{ name: string; last_seq: string }>(`SELECT name, last_seq::text FROM "${f.s.schema}".rollup_state ORDER BY name`);
    assert.deepEqual(
      state.rows,
      [...names].sort().map((name) => ({ name, last_seq: '0' })),
    );
  } finally {
    await f.s.drop();
  }
});

test.skipIf(noHll())('with hll on the server, the migration installs it and distinct counts use hll [needs the hll extension]', async () => {
  const f = await rollupSchema();
  try {
    assert.equal(f.caps.hllInstalled, true);
    assert.equal(f.sketch.kind, 'hll');
  } finally {
    await f.s.drop();
  }
});

test.skipIf(!noHll())('without hll on the server, distinct counts use the bigint[] KMV fallback [needs a server without hll]', async () => {
  const f = await rollupSchema();
  try {
    assert.equal(f.caps.hllInstalled, false);
    assert.equal(f.sketch.kind, 'kmv');
  } finally {
    await f.s.drop();
  }
});

test.skipIf(noCitus())('on Citus, the rollup tables are distributed and colocated with events [needs Citus]', async () => {
  const f = await rollupSchema();
  try {
    const { rows } = await f.s.pool.query<{ logicalrelid: string; colocationid: number }>(
      `SELECT logicalrelid::text, colocationid FROM pg_dist_partition WHERE logicalrelid = ANY($1::regclass[])`,
      [['events', ...ROLLUPS.map((r) => r.table)].map((t) => `"${f.s.schema}".${t}`)],
    );
    assert.equal(rows.length, 1 + ROLLUPS.length);
    assert.equal(new Set(rows.map((r) => r.colocationid)).size, 1, 'rollup tables are colocated with events');
  } finally {
    await f.s.drop();
  }
});

for (const foldMode of ['deltas', 'direct'] as const) {
test(`N events with redeliveries (${foldMode} fold): every rollup's counts and revenue equal events per tenant, dimension and all storefronts; coarser grains agree with finer`, async () => {
  const f = await rollupSchema();
  try {
    const rows = sampleRows(2400, { seed: 'totals', tenants: [11, 12, 13, 14], base: recentBase(), spreadMinutes: 240 });
    let inserted = 0;
    for (let i = 0; i < rows.length; i += 300) {
      const batch = rows.slice(i, i + 300);
      inserted += (await insertEventRows(f.s.pool, f.s.schema, batch)).inserted;
      // Redeliver part of the previous batch as well (rebalancing, retries, replays).
      const again = await insertEventRows(f.s.pool, f.s.schema, rows.slice(Math.max(0, i - 150), i + 50));
      assert.equal(again.inserted, 0);
      if (i % 600 === 0) await runRollups(f.s.pool, f.s.schema, { caps: f.caps, maxWindowRows: 1_000_000, foldMode });
    }
    assert.equal(inserted, 2400);
    await runUntilCaughtUp(f, 1_000_000, 1000, foldMode);

    assert.equal(await eventCount(f), 2400);
    for (const def of ROLLUPS) assert.equal(await rollupCount(f, def), 2400, def.name);
    await assertRollupsMatchEvents(f);
    assert.ok((await assertCatalogCoarserAgrees(f)) > 0);
    // Distinct counts of the coarser rollup agree with the finer rollup's sketches unioned.
    const from = bucketStart(new Date(recentBase().getTime() - 2 * GRAIN_MS.day), 'day');
    const to = new Date(from.getTime() + 4 * GRAIN_MS.day);
    for (const t of [11, 14, 0]) {
      const viaMinute = await estimateDistinct(f, minute, t, from, to);
      const viaDay = await estimateDistinct(f, day, t, from, to);
      const exact = await exactDistinct(f, t, from, to);
      assert.ok(exact.sessions > 0);
      for (const k of ['sessions', 'users'] as const) {
        assert.ok(Math.abs(viaMinute[k] - viaDay[k]) <= 3 * f.sketch.relativeError * exact[k] + 1, `${k}: ${viaMinute[k]} vs ${viaDay[k]}`);
      }
    }
  } finally {
    await f.s.drop();
  }
});
}

test('redelivered batches never change rollups', async () => {
  const f = await rollupSchema();
  try {
    const rows = sampleRows(500, { seed: 'redeliver', tenants: [21, 22], base: recentBase(), spreadMinutes: 60 });
    await insertEventRows(f.s.pool, f.s.schema, rows);
    await runUntilCaughtUp(f);
    const before = await Promise.all(ROLLUPS.map((d) => snapshot(f, d)));
    // The same batch three more times, whole and in pieces, with runs in between.
    for (let i = 0; i < 3; i++) {
      const r = await insertEventRows(f.s.pool, f.s.schema, i === 1 ? rows.slice(100, 300) : rows);
      assert.equal(r.inserted, 0);
      const runs = await runRollups(f.s.pool, f.s.schema, { caps: f.caps, maxWindowRows: 1_000_000 });
      for (const run of runs) assert.equal(run.rows, 0, `${run.name} folded in a redelivered row`);
    }
    const after = await Promise.all(ROLLUPS.map((d) => snapshot(f, d)));
    assert.deepEqual(after, before);
    assert.ok(before.every((t) => t.length > 0));
  } finally {
    await f.s.drop();
  }
});

test('a late event lands in its own old minute, hour and day buckets', async () => {
  const f = await rollupSchema();
  try {
    await insertEventRows(f.s.pool, f.s.schema, sampleRows(200, { seed: 'late-now', tenants: [31], base: recentBase(), spreadMinutes: 30 }));
    await runUntilCaughtUp(f);
    const lateAt = new Date(bucketStart(new Date(Date.now() - 3 * GRAIN_MS.day), 'hour').getTime() + 17 * 60_000 + 5_000);
    const before = await Promise.all(ROLLUPS.map((d) => snapshot(f, d)));
    const late = makeRow({ eventId: uuidFor('late-1'), tenantId: 31, type: 'purchase', occurredAt: lateAt, country: 'NL', revenue: 12.5, sessionId: 's-late', userId: 'u-late' });
    assert.equal((await insertEventRows(f.s.pool, f.s.schema, [late])).inserted, 1);
    const runs = await runRollups(f.s.pool, f.s.schema, { caps: f.caps, maxWindowRows: 1_000_000 });
    assert.deepEqual(runs.map((r) => [r.name, r.rows]), names.map((n) => [n, 1]));
    const expected: Record<string, string> = { type: 'purchase', country: 'NL', browser: '', campaign_id: '', events: '1' };
    for (const [i, def] of ROLLUPS.entries()) {
      const after = await snapshot(f, def);
      const bucket = bucketStart(lateAt, def.grain);
      const added = after.filter((r) => !before[i]?.some((b) => JSON.stringify(b) === JSON.stringify(r)));
      // The tenant's row, and the all-storefronts row of that old bucket.
      const tenants = def.allTenants ? ['0', '31'] : ['31'];
      assert.deepEqual(added.map((r) => r.tenant_id).sort(), tenants, `${def.name}: exactly one new row per tenant kept`);
      for (const row of added) {
        assert.equal(new Date(String(row.bucket)).getTime(), bucket.getTime(), `${def.name} bucket`);
        for (const c of [...def.dimensions.map((d) => d.column), 'events']) assert.equal(row[c], expected[c], `${def.name}.${c}`);
        assert.equal(Number(row.revenue), 12.5);
      }
      assert.equal(after.length, (before[i]?.length ?? 0) + tenants.length, `${def.name}: no other row changed`);
    }
  } finally {
    await f.s.drop();
  }
});

test('window cap: after a backlog, catching up takes several bounded runs and totals stay exact', async () => {
  const f = await rollupSchema();
  try {
    await insertEventRows(f.s.pool, f.s.schema, sampleRows(250, { seed: 'cap', tenants: [41, 42, 43], base: recentBase(), spreadMinutes: 90 }));
    const runs = await runUntilCaughtUp(f, 60);
    // 250 sequence values in windows of at most 60: five runs, the first four not caught up.
    assert.equal(runs.length, 5);
    assert.deepEqual(runs.map((r) => r.every((x) => x.caughtUp)), [false, false, false, false, true]);
    for (const run of runs) for (const r of run) assert.ok(r.toSeq - r.fromSeq <= 60 && r.rows <= 60);
    for (const name of names) {
      assert.equal(runs.flat().filter((r) => r.name === name).reduce((a, r) => a + r.rows, 0), 250, name);
    }
    await assertRollupsMatchEvents(f);
  } finally {
    await f.s.drop();
  }
});

test(`distinct sessions and users are within the sketch's error of the exact counts (hll when installed, else KMV, exact below ${KMV_K})`, async () => {
  const f = await rollupSchema();
  try {
    const base = recentBase();
    const rows = [];
    // 6,000 events, 4,000 distinct sessions and 700 distinct users, in one tenant over 3 hours.
    for (let i = 0; i < 6000; i++) {
      rows.push(
        makeRow({
          eventId: uuidFor(`hll/${i}`),
          tenantId: 51,
          occurredAt: new Date(base.getTime() - (i % 180) * 60_000),
          type: i % 2 ? 'click' : 'page_view',
          sessionId: `session-${i % 4000}`,
          userId: `user-${i % 700}`,
        }),
      );
    }
    for (let i = 0; i < rows.length; i += 1000) await insertEventRows(f.s.pool, f.s.schema, rows.slice(i, i + 1000));
    await runUntilCaughtUp(f);
    const from = new Date(base.getTime() - 2 * GRAIN_MS.day);
    const to = new Date(base.getTime() + GRAIN_MS.day);
    const exact = await exactDistinct(f, 51, from, to);
    assert.deepEqual(exact, { sessions: 4000, users: 700 });
    for (const def of withSketches) {
      const est = await estimateDistinct(f, def, 51, bucketStart(from, 'day'), to);
      for (const k of ['sessions', 'users'] as const) {
        // Three standard errors: the data is fixed, so the estimate is too, and this bound holds
        // with a wide margin (both sketches measured well inside one).
        const bound = 3 * f.sketch.relativeError * exact[k];
        assert.ok(Math.abs(est[k] - exact[k]) <= bound, `${def.name} ${k} (${f.sketch.kind}): estimate ${est[k]}, exact ${exact[k]}, bound ±${bound.toFixed(1)}`);
      }
      if (f.sketch.kind === 'kmv') {
        // Below K members the fallback is exact: 700 users < 1024.
        assert.equal(est.users, 700, `${def.name} kmv users`);
      }
    }
    // Small sets (one minute) are exact in both encodings.
    const oneMinute = await estimateDistinct(f, minute, 51, bucketStart(base, 'minute'), new Date(base.getTime() + 60_000));
    const oneMinuteExact = await exactDistinct(f, 51, bucketStart(base, 'minute'), new Date(base.getTime() + 60_000));
    assert.deepEqual(oneMinute, oneMinuteExact);
  } finally {
    await f.s.drop();
  }
});

test('rebuild of a range gives the incremental numbers; events above the watermark are left to the next run', async () => {
  const f = await rollupSchema();
  try {
    const base = recentBase();
    await insertEventRows(f.s.pool, f.s.schema, sampleRows(900, { seed: 'rebuild', tenants: [61, 62], base, spreadMinutes: 180 }));
    await runUntilCaughtUp(f);
    const expected = await Promise.all(ROLLUPS.map((d) => snapshot(f, d)));
    // Damage tenant 61's rollups, then rebuild a range that is not bucket-aligned.
    for (const def of ROLLUPS) await f.s.pool.query(`DELETE FROM "${f.s.schema}".${def.table} WHERE tenant_id = 61`);
    // And the all-storefronts rows, which the rebuild sums again from every tenant's rows.
    await f.s.pool.query(`UPDATE "${f.s.schema}".${minute.table} SET events = events + 5 WHERE tenant_id = 0`);
    // New events inside the range that the incremental path has not folded in yet.
    const fresh = sampleRows(40, { seed: 'rebuild-fresh', tenants: [61], base, spreadMinutes: 60 });
    await insertEventRows(f.s.pool, f.s.schema, fresh);

    const from = new Date(base.getTime() - 2 * GRAIN_MS.day + 1234);
    const to = new Date(base.getTime() + 90_000);
    const result = await rebuildRollups(f.s.pool, f.s.schema, { tenantId: 61, from, to, caps: f.caps });
    assert.deepEqual(result.map((r) => r.name), names);
    for (const r of result) {
      assert.equal(r.from.getTime(), bucketStart(from, r.grain).getTime());
      assert.equal(r.rows, 450, `${r.name}: only events at or below the watermark`);
    }
    // Tenant 61 and the all-storefronts rows are back to the incremental numbers, sketches byte for
    // byte; tenant 62 was not touched.
    for (const [i, def] of ROLLUPS.entries()) {
      for (const t of ['61', '62', '0']) {
        const now = await snapshot(f, def, 'tenant_id = $1', [t]);
        assert.ok(now.length > 0);
        assert.deepEqual(now, (expected[i] ?? []).filter((r) => r.tenant_id === t), `${def.name} tenant ${t}`);
      }
    }
    // The next incremental run adds the fresh events exactly once.
    const runs = await runRollups(f.s.pool, f.s.schema, { caps: f.caps, maxWindowRows: 1_000_000 });
    assert.deepEqual(runs.map((r) => r.rows), names.map(() => 40));
    await assertRollupsMatchEvents(f);
    await assertCatalogCoarserAgrees(f);
  } finally {
    await f.s.drop();
  }
});

test('rebuild refuses bad ranges, and ranges whose raw events may be gone', async () => {
  const f = await rollupSchema();
  try {
    const now = new Date();
    const bad = [
      { tenantId: 0, from: new Date(now.getTime() - 3_600_000), to: now },
      { tenantId: 1, from: now, to: now },
      { tenantId: 1, from: new Date('nope'), to: now },
      { tenantId: 1, from: new Date(now.getTime() - 40 * GRAIN_MS.day), to: now, notBefore: new Date(now.getTime() - 30 * GRAIN_MS.day) },
    ];
    for (const b of bad) await assert.rejects(rebuildRollups(f.s.pool, f.s.schema, { ...b, caps: f.caps }), RebuildRangeError);
  } finally {
    await f.s.drop();
  }
});

test('retention: pruning drops only buckets past each grain’s retention; dropping raw partitions never changes rollups', async () => {
  const f = await rollupSchema();
  try {
    const now = new Date();
    const old = new Date(bucketStart(new Date(now.getTime() - 10 * GRAIN_MS.day), 'day').getTime() + 3 * GRAIN_MS.hour);
    await insertEventRows(f.s.pool, f.s.schema, [
      ...sampleRows(30, { seed: 'ret-old', tenants: [71], base: old, spreadMinutes: 20 }),
      ...sampleRows(30, { seed: 'ret-new', tenants: [71], base: recentBase(), spreadMinutes: 20 }),
    ]);
    await runUntilCaughtUp(f);
    const pruned = await pruneRollups(f.s.pool, f.s.schema, now, { minute: 7, hour: 90, day: 3650 });
    assert.deepEqual(pruned.map((p) => p.name), names);
    for (const [i, def] of ROLLUPS.entries()) {
      if (def.grain === 'minute') assert.ok((pruned[i]?.deletedRows ?? 0) > 0, def.name);
      else assert.equal(pruned[i]?.deletedRows, 0, def.name);
    }
    const cut = (sql: string) => f.s.pool.query<{ n: string }>(sql).then((r) => Number(r.rows[0]?.n));
    for (const def of ROLLUPS.filter((r) => r.grain === 'minute')) {
      assert.equal(await cut(`SELECT count(*) AS n FROM "${f.s.schema}".${def.table} WHERE bucket < now() - interval '7 days'`), 0);
      assert.equal(await cut(`SELECT sum(events) AS n FROM "${f.s.schema}".${def.table} WHERE tenant_id = 71`), 30);
    }
    assert.equal(await cut(`SELECT sum(events) AS n FROM "${f.s.schema}".${hour.table} WHERE tenant_id = 71`), 60);

    // Drop the raw partitions that held the old events: rollups stay, and later runs keep them.
    const hourBefore = await snapshot(f, hour);
    const dayBefore = await snapshot(f, day);
    const parts = await listPartitions(f.s.pool, f.s.schema);
    const oldParts = parts.filter((p) => p.to !== null && p.to.getTime() <= bucketStart(now, 'day').getTime() - 5 * GRAIN_MS.day);
    assert.ok(oldParts.length > 0);
    for (const p of oldParts) await f.s.pool.query(`DROP TABLE "${f.s.schema}"."${p.name}"`);
    assert.equal(await eventCount(f), 30);
    await runRollups(f.s.pool, f.s.schema, { caps: f.caps, maxWindowRows: 1_000_000 });
    assert.deepEqual(await snapshot(f, hour), hourBefore);
    assert.deepEqual(await snapshot(f, day), dayBefore);
  } finally {
    await f.s.drop();
  }
});

test('status: watermark, pending rows, lag in seconds and last run, per rollup', async () => {
  const f = await rollupSchema();
  try {
    await insertEventRows(f.s.pool, f.s.schema, sampleRows(25, { seed: 'status', tenants: [81], base: recentBase(), spreadMinutes: 5 }));
    const ingested = await f.s.pool.query<{ t: Date }>(`SELECT min(ingested_at) AS t FROM "${f.s.schema}".events`);
    const t0 = ingested.rows[0]?.t ?? new Date();
    const later = () => new Date(t0.getTime() + 42_000);
    const before = await rollupStatus(f.s.pool, f.s.schema, { now: later });
    assert.deepEqual(before.map((s) => s.name), names);
    for (const s of before) {
      assert.equal(s.lastSeq, 0);
      assert.equal(s.highWater, 25);
      assert.equal(s.pendingRows, 25);
      assert.equal(s.pendingCapped, false);
      assert.equal(s.lagSeconds, 42);
      assert.equal(s.lastRunAt, null);
    }
    const capped = await rollupStatus(f.s.pool, f.s.schema, { now: later, pendingBound: 10 });
    assert.ok(capped.every((s) => s.pendingRows === 10 && s.pendingCapped));
    const runAt = new Date('2030-01-01T00:00:00Z');
    await runRollups(f.s.pool, f.s.schema, { caps: f.caps, maxWindowRows: 1000, now: () => runAt });
    const after = await rollupStatus(f.s.pool, f.s.schema, { now: later });
    for (const s of after) {
      assert.deepEqual(
        { lastSeq: s.lastSeq, pendingRows: s.pendingRows, lagSeconds: s.lagSeconds, lastRows: s.lastRows, lastRunAt: s.lastRunAt?.toISOString(), lastDurationMs: s.lastDurationMs },
        { lastSeq: 25, pendingRows: 0, lagSeconds: 0, lastRows: 25, lastRunAt: runAt.toISOString(), lastDurationMs: 0 },
      );
    }
  } finally {
    await f.s.drop();
  }
});

test('the bigint[] (KMV) fallback on this server too, as an extra rollup added by definition alone', async () => {
  const f = await rollupSchema();
  try {
    // Where hll is installed the main tables use it; a table with bigint[] sketches exercises the
    // fallback here as well. Nothing but a definition and a table: no new code.
    const cube = LEGACY_ROLLUPS[0];
    assert.ok(cube);
    const def: RollupDefinition = { ...cube, name: 'minute_kmv', spec: 'minute_kmv', table: 'rollup_minute_kmv', allTenants: true };
    const q = (t: string) => `"${f.s.schema}".${t}`;
    await f.s.pool.query(`CREATE TABLE ${q(def.table)} (LIKE ${q('rollup_minute')} INCLUDING ALL)`);
    await f.s.pool.query(`ALTER TABLE ${q(def.table)} ALTER sessions TYPE bigint[] USING '{}', ALTER users TYPE bigint[] USING '{}'`);
    if (f.caps.citus) await f.s.pool.query(`SELECT create_distributed_table($1, 'tenant_id', colocate_with => $2)`, [q(def.table), q('events')]);
    const kmv = await loadSketchProfile(f.s.pool, f.s.schema, f.caps, [def]);
    assert.equal(kmv.kind, 'kmv');
    assert.equal(kmv.relativeError, sketchProfile('kmv').relativeError);

    const base = recentBase();
    const rows = [];
    for (let i = 0; i < 4000; i++) {
      rows.push(
        makeRow({
          eventId: uuidFor(`kmv/${i}`),
          tenantId: 55,
          occurredAt: new Date(base.getTime() - (i % 120) * 60_000),
          type: i % 3 ? 'page_view' : 'purchase',
          country: i % 4 ? 'DE' : null,
          revenue: i % 3 ? null : 1.5,
          sessionId: `ks-${i % 2500}`,
          userId: `ku-${i % 400}`,
        }),
      );
    }
    for (let i = 0; i < rows.length; i += 1000) await insertEventRows(f.s.pool, f.s.schema, rows.slice(i, i + 1000));
    for (let i = 0; i < 20; i++) {
      const r = await runRollups(f.s.pool, f.s.schema, { caps: f.caps, maxWindowRows: 700, rollups: [def] });
      if (r.every((x) => x.caughtUp)) break;
    }
    await assertRollupsMatchEvents(f, [def]);
    const from = bucketStart(new Date(base.getTime() - GRAIN_MS.day), 'day');
    const to = new Date(base.getTime() + GRAIN_MS.hour);
    const est = await estimateDistinct(f, def, 55, from, to, kmv);
    assert.equal(est.users, 400, 'exact below K');
    const bound = 3 * kmv.relativeError * 2500;
    assert.ok(Math.abs(est.sessions - 2500) <= bound, `sessions estimate ${est.sessions}, exact 2500, bound ±${bound.toFixed(0)}`);
  } finally {
    await f.s.drop();
  }
});
