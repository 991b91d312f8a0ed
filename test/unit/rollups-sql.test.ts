import { describe, test } from 'vitest';
import assert from 'node:assert/strict';
import {
  DIMENSIONS,
  GRAINS,
  ROLLUPS,
  bucketCeil,
  bucketStart,
  dimensionByName,
  isAligned,
  retentionCutoff,
  rollupForGrain,
} from '../../src/rollups/definitions.js';
import { KMV_K, RollupSetupError, resolveSketchProfile, sketchProfile } from '../../src/rollups/sketches.js';
import { aggregateSql, bucketExpr, dimensionParams, expectedColumnTypes, keyColumns, waitForWritersSql } from '../../src/rollups/sql.js';
import * as rollupSql from '../../src/rollups/sql.js';
import type { Statement } from '../../src/db/statement.js';
import { describeCycle, rebuildProblems } from '../../src/rollups/run.js';

describe('definitions', () => {
  test('one rollup per grain, finest first, each with the four dashboard dimensions and four measures', () => {
    assert.deepEqual(ROLLUPS.map((r) => [r.name, r.table, r.grain]), [
      ['minute', 'rollup_minute', 'minute'],
      ['hour', 'rollup_hour', 'hour'],
      ['day', 'rollup_day', 'day'],
    ]);
    for (const r of ROLLUPS) {
      assert.deepEqual(r.dimensions.map((d) => d.name), ['type', 'country', 'browser', 'campaign']);
      assert.deepEqual(r.measures.map((m) => `${m.kind}:${m.column}`), ['count:events', 'sum:revenue', 'distinct:sessions', 'distinct:users']);
    }
    assert.equal(dimensionByName('campaign')?.column, 'campaign_id');
    assert.equal(dimensionByName('campaign_id'), undefined);
    assert.equal(rollupForGrain('hour').table, 'rollup_hour');
  });

  test('bucket arithmetic is UTC', () => {
    const t = new Date('2026-03-14T23:59:30.500Z');
    assert.equal(bucketStart(t, 'minute').toISOString(), '2026-03-14T23:59:00.000Z');
    assert.equal(bucketStart(t, 'hour').toISOString(), '2026-03-14T23:00:00.000Z');
    assert.equal(bucketStart(t, 'day').toISOString(), '2026-03-14T00:00:00.000Z');
    assert.equal(bucketCeil(t, 'minute').toISOString(), '2026-03-15T00:00:00.000Z');
    assert.equal(bucketCeil(new Date('2026-03-14T00:00:00Z'), 'day').toISOString(), '2026-03-14T00:00:00.000Z');
    assert.equal(isAligned(new Date('2026-03-14T10:00:00Z'), 'hour'), true);
    assert.equal(isAligned(new Date('2026-03-14T10:01:00Z'), 'hour'), false);
    assert.equal(retentionCutoff(t, 'minute', { minute: 7, hour: 90, day: 3650 }).toISOString(), '2026-03-07T23:59:00.000Z');
    assert.equal(retentionCutoff(t, 'day', { minute: 7, hour: 90, day: 1 }).toISOString(), '2026-03-13T00:00:00.000Z');
  });
});

describe('sketch profiles: the capability difference as data', () => {
  test('the catalog decides: hll columns need the extension; bigint[] columns are the KMV fallback', () => {
    assert.equal(resolveSketchProfile({ sketchTypnames: ['hll', 'hll'], hllSchema: 'public' }, { citus: false, hllInstalled: true }).kind, 'hll');
    // Installing hll later does not switch tables that were created with the fallback.
    assert.equal(resolveSketchProfile({ sketchTypnames: ['_int8'], hllSchema: 'public' }, { citus: true, hllInstalled: true }).kind, 'kmv');
    assert.equal(resolveSketchProfile({ sketchTypnames: ['_int8', '_int8'] }, { citus: false, hllInstalled: false }).kind, 'kmv');
    assert.throws(() => resolveSketchProfile({ sketchTypnames: ['hll'] }, { citus: false, hllInstalled: false }), RollupSetupError);
    assert.throws(() => resolveSketchProfile({ sketchTypnames: [] }, { citus: false, hllInstalled: true }), /hubsink migrate/);
    assert.throws(() => resolveSketchProfile({ sketchTypnames: ['hll', '_int8'], hllSchema: 'public' }, { citus: false, hllInstalled: true }), /disagree/);
    assert.throws(() => resolveSketchProfile({ sketchTypnames: ['text'] }, { citus: false, hllInstalled: false }), /unexpected/);
  });

  test('hll functions are qualified with the extension schema; errors are the published ones', () => {
    const hll = sketchProfile('hll', { hllSchema: 'ext' });
    assert.equal(hll.build('"session_id"'), 'coalesce("ext".hll_add_agg("ext".hll_hash_text("session_id")), "ext".hll_empty())');
    assert.equal(hll.merge('r.s', 'EXCLUDED.s'), '"ext".hll_union(r.s, EXCLUDED.s)');
    assert.ok(Math.abs(hll.relativeError - 0.023) < 0.001);
    const kmv = sketchProfile('kmv');
    assert.match(kmv.build('"user_id"'), new RegExp(`\\[1:${KMV_K}\\]`));
    assert.match(kmv.merge('r.s', 'EXCLUDED.s'), new RegExp(`ORDER BY h LIMIT ${KMV_K}\\)$`));
    assert.ok(Math.abs(kmv.relativeError - 1 / Math.sqrt(KMV_K - 2)) < 1e-12);
    assert.throws(() => sketchProfile('kmv', { k: 4 }), /KMV size/);
    assert.throws(() => sketchProfile('hll', { hllSchema: 'Bad-Schema' }), /identifier/);
  });
});

describe('SQL builders', () => {
  test('bucket expression is immutable UTC truncation for every grain', () => {
    for (const g of GRAINS) assert.equal(bucketExpr(g), `timezone('UTC', date_trunc('${g}', timezone('UTC', "occurred_at")))`);
    assert.throws(() => bucketExpr('week' as never), /unknown grain/);
  });

  test('the aggregate groups by tenant_id (Citus pushdown), conflicts on the full key and adds measures', () => {
    for (const kind of ['hll', 'kmv'] as const) {
      const sketch = sketchProfile(kind);
      for (const def of ROLLUPS) {
        const st = aggregateSql(def, sketch, 'app', { source: 'window', fromSeq: 10, toSeq: 20 });
        const sql = st.text;
        assert.deepEqual(st.values, [10, 20, 64], 'the window, then the dimension length');
        assert.match(sql, new RegExp(`^INSERT INTO "app"\\."${def.table}" AS r`));
        assert.match(sql, /FROM "app"\."events"\nWHERE ingest_seq > \$1 AND ingest_seq <= \$2\nGROUP BY tenant_id, /);
        assert.match(sql, new RegExp(`ON CONFLICT \\(${keyColumns(def).map((c) => `"${c}"`).join(', ')}\\) DO UPDATE SET`));
        assert.match(sql, /"events" = r\."events" \+ EXCLUDED\."events", "revenue" = r\."revenue" \+ EXCLUDED\."revenue"/);
        assert.ok(sql.includes(sketch.merge('r."sessions"', 'EXCLUDED."sessions"')));
        for (const d of DIMENSIONS) assert.ok(sql.includes(`left(coalesce("${d.source}", ''), $3::int)`), d.name);
        assert.doesNotMatch(sql, /nextval|now\(\)|random\(\)/);
        const from = new Date('2026-03-14T00:00:00Z');
        const to = new Date('2026-03-15T00:00:00Z');
        const rebuild = aggregateSql(def, sketch, 'app', { source: 'rebuild', tenantId: 7, from, to, watermark: 99 });
        assert.deepEqual(rebuild.values, [7, from, to, 99, 64]);
        assert.match(rebuild.text, /WHERE tenant_id = \$1 AND occurred_at >= \$2 AND occurred_at < \$3 AND ingest_seq <= \$4/);
      }
    }
  });

  test('dimension bounds: the length and each allow-list are bind parameters after the source\'s own', () => {
    const def = rollupForGrain('day');
    const limits = { maxLength: 40, allow: { country: ['DE', 'FR'], campaign: ['spring'] } };
    const from = new Date('2026-03-14T00:00:00Z');
    const to = new Date('2026-03-15T00:00:00Z');
    const st = aggregateSql(def, sketchProfile('kmv'), 'app', { source: 'rebuild', tenantId: 7, from, to, watermark: 99 }, limits);
    const sql = st.text;
    assert.deepEqual(st.values, [7, from, to, 99, 40, ['DE', 'FR'], ['spring']], '$1..$4 the rebuild, $5 the length, $6 and $7 the lists');
    const window = aggregateSql(def, sketchProfile('kmv'), 'app', { source: 'window', fromSeq: 1, toSeq: 2 }, limits);
    assert.ok(window.text.includes(`left(coalesce("type", ''), $3::int)`));
    assert.ok(window.text.includes(`coalesce("campaign_id", '') = ANY($5::text[])`));
    assert.deepEqual(window.values, [1, 2, 40, ['DE', 'FR'], ['spring']]);
    assert.ok(sql.includes(`left(coalesce("type", ''), $5::int)`));
    assert.ok(sql.includes(`CASE WHEN coalesce("country", '') = '' OR coalesce("country", '') = ANY($6::text[]) THEN left(coalesce("country", ''), $5::int) ELSE 'other' END`));
    assert.ok(sql.includes(`coalesce("campaign_id", '') = ANY($7::text[])`));
    assert.doesNotMatch(sql, /\$8|'DE'|spring/);
    assert.deepEqual(dimensionParams(def, limits), [40, ['DE', 'FR'], ['spring']]);
    assert.deepEqual(dimensionParams(def), [64]);
    assert.throws(() => dimensionParams(def, { maxLength: 0, allow: {} }), RangeError);
  });

  test('expected column types follow the sketch kind', () => {
    const def = rollupForGrain('day');
    assert.deepEqual(expectedColumnTypes(def, sketchProfile('kmv')), {
      tenant_id: 'int8',
      bucket: 'timestamptz',
      type: 'text',
      country: 'text',
      browser: 'text',
      campaign_id: 'text',
      events: 'int8',
      revenue: 'numeric',
      sessions: '_int8',
      users: '_int8',
    });
    assert.equal(expectedColumnTypes(def, sketchProfile('hll')).sessions, 'hll');
  });

  test('the writer wait takes the lock inside a savepoint and rolls back to it', () => {
    const w = waitForWritersSql('app', 1500);
    assert.deepEqual(w.savepoint, { text: 'SAVEPOINT hubsink_wait_for_writers', values: [] });
    assert.deepEqual(w.lock, { text: 'LOCK TABLE "app"."events" IN EXCLUSIVE MODE', values: [] });
    assert.deepEqual(w.release, { text: 'ROLLBACK TO SAVEPOINT hubsink_wait_for_writers', values: [] });
    assert.match(w.timeout.text, /set_config\('lock_timeout', \$1, true\)/);
    assert.deepEqual(w.timeout.values, ['1500']);
    assert.throws(() => waitForWritersSql('app; DROP', 1500), /identifier/);
  });
});

/** The highest $n a statement's text refers to. */
function highestParam(text: string): number {
  return Math.max(0, ...[...text.matchAll(/\$(\d+)/g)].map((m) => Number(m[1])));
}

describe('every rollup statement carries its values', () => {
  const def = rollupForGrain('hour');
  const at = new Date('2026-03-14T10:00:00Z');
  const end = new Date('2026-03-14T12:00:00Z');
  const cases: [name: string, st: Statement, values: unknown[]][] = [
    ['ensureState', rollupSql.ensureStateSql('app', ['minute', 'hour']), [['minute', 'hour']]],
    ['lockState', rollupSql.lockStateSql('app', ['hour']), [['hour']]],
    ['state', rollupSql.stateSql('app', ['day']), [['day']]],
    ['highWater', rollupSql.highWaterSql('app'), ['"app"."events"']],
    ['countEvents window', rollupSql.countEventsSql('app', { source: 'window', fromSeq: 5, toSeq: 9 }), [5, 9]],
    ['countEvents rebuild', rollupSql.countEventsSql('app', { source: 'rebuild', tenantId: 3, from: at, to: end, watermark: 40 }), [3, at, end, 40]],
    ['advanceState', rollupSql.advanceStateSql('app', { name: 'hour', lastSeq: 9, runAt: end, rows: 4, durationMs: 12 }), ['hour', 9, end, 4, 12]],
    ['deleteBuckets', rollupSql.deleteBucketsSql(def, 'app', 3, at, end), [3, at, end]],
    ['prune', rollupSql.pruneSql(def, 'app', at), [at]],
    ['pendingCount', rollupSql.pendingCountSql('app', 7, 1000), [7, 1000]],
    ['oldestPending', rollupSql.oldestPendingSql('app', '7'), ['7']],
    ['sketchColumns', rollupSql.sketchColumnsSql('app', ['rollup_hour'], ['sessions', 'users']), ['app', ['rollup_hour'], ['sessions', 'users']]],
    ['hllSchema', rollupSql.hllSchemaSql(), []],
  ];
  for (const [name, st, values] of cases) {
    test(`${name}: values in $n order, one per parameter`, () => {
      assert.deepEqual(st.values, values);
      assert.equal(highestParam(st.text), values.length, st.text);
    });
  }

  test('the count reads exactly the events the aggregate folds in: the same filter and values', () => {
    for (const selection of [
      { source: 'window', fromSeq: 5, toSeq: 9 } as const,
      { source: 'rebuild', tenantId: 3, from: at, to: end, watermark: 40 } as const,
    ]) {
      const count = rollupSql.countEventsSql('app', selection);
      const agg = aggregateSql(def, sketchProfile('kmv'), 'app', selection);
      const where = /WHERE (.*)$/.exec(count.text)?.[1];
      assert.ok(where && agg.text.includes(`\nWHERE ${where}\n`), `${where} in\n${agg.text}`);
      assert.deepEqual(agg.values.slice(0, count.values.length), count.values);
      assert.equal(highestParam(agg.text), agg.values.length);
    }
  });

  test('names go through ident(); a bad schema is refused by every builder', () => {
    for (const build of [
      () => rollupSql.ensureStateSql('a-b', []),
      () => rollupSql.stateSql('a-b', []),
      () => rollupSql.highWaterSql('a-b'),
      () => rollupSql.countEventsSql('a-b', { source: 'window', fromSeq: 0, toSeq: 1 }),
      () => rollupSql.pruneSql(def, 'a-b', at),
      () => rollupSql.oldestPendingSql('a-b', 0),
    ]) {
      assert.throws(build, /not a valid SQL identifier/);
    }
  });
});

describe('rebuild requests and cycle log lines', () => {
  const now = new Date('2026-03-14T12:00:00Z');
  test('rebuildProblems names each problem', () => {
    assert.deepEqual(rebuildProblems({ tenantId: 3, from: new Date('2026-03-14T10:00:00Z'), to: now }), []);
    assert.deepEqual(rebuildProblems({ tenantId: 0, from: now, to: now }), ['tenant must be a positive whole number']);
    assert.match(rebuildProblems({ tenantId: 1, from: now, to: new Date('2026-03-14T11:00:00Z') }).join(), /before to/);
    assert.match(rebuildProblems({ tenantId: 1, from: new Date('x'), to: now }).join(), /from is not a valid time/);
    assert.match(
      rebuildProblems({ tenantId: 1, from: new Date('2026-01-01T00:00:00Z'), to: now, notBefore: new Date('2026-02-12T00:00:00Z') }).join(),
      /oldest partition of events that exists/,
    );
  });
  test('describeCycle', () => {
    assert.equal(
      describeCycle({
        runs: [
          { name: 'minute', fromSeq: 10, toSeq: 20, rows: 9, durationMs: 5, caughtUp: true },
          { name: 'hour', fromSeq: 0, toSeq: 20, rows: 19, durationMs: 7, caughtUp: false },
        ],
        pruned: [
          { name: 'minute', cutoff: now, deletedRows: 3 },
          { name: 'day', cutoff: now, deletedRows: 0 },
        ],
      }),
      'minute (10,20] rows=9 5ms; hour (0,20] rows=19 7ms behind; minute pruned=3',
    );
  });
});
