import { describe, test } from 'vitest';
import assert from 'node:assert/strict';
import {
  DEFAULT_SPECS,
  GRAINS,
  LEGACY_ROLLUPS,
  ROLLUPS,
  answeringRollups,
  expandCatalog,
  specProblems,
  type RollupQuestion,
  type RollupSpec,
  bucketCeil,
  bucketStart,
  dimensionByName,
  isAligned,
  retentionCutoff,
  rollupForGrain,
} from '../../src/rollups/definitions.js';
import type { RollupDefinition } from '../../src/rollups/definitions.js';
import { KMV_K, RollupSetupError, resolveSketchProfile, sketchProfile } from '../../src/rollups/sketches.js';
import { aggregateSql, bucketExpr, dimensionParams, expectedColumnTypes, keyColumns, waitForWritersSql } from '../../src/rollups/sql.js';
import * as rollupSql from '../../src/rollups/sql.js';
import type { Statement } from '../../src/db/statement.js';
import { describeCycle, eventsFolded, foldModeFor, foldTrees, planFold, rebuildProblems } from '../../src/rollups/run.js';

describe('definitions', () => {
  test('the default catalog: one table per spec and grain, sketches only on the totals, minute only where a live panel reads it', () => {
    assert.deepEqual(
      ROLLUPS.map((r) => [r.name, r.table, r.grain, r.dimensions.map((d) => d.name).join('+'), r.measures.join('+'), r.allTenants]),
      [
        ['total_minute', 'rollup_total_minute', 'minute', '', 'events+revenue+sessions+users', true],
        ['total_hour', 'rollup_total_hour', 'hour', '', 'events+revenue+sessions+users', true],
        ['total_day', 'rollup_total_day', 'day', '', 'events+revenue+sessions+users', true],
        ['type_minute', 'rollup_type_minute', 'minute', 'type', 'events+revenue', true],
        ['type_hour', 'rollup_type_hour', 'hour', 'type', 'events+revenue', true],
        ['type_day', 'rollup_type_day', 'day', 'type', 'events+revenue', true],
        ['country_hour', 'rollup_country_hour', 'hour', 'country', 'events+revenue', true],
        ['country_day', 'rollup_country_day', 'day', 'country', 'events+revenue', true],
        ['browser_hour', 'rollup_browser_hour', 'hour', 'browser', 'events+revenue', true],
        ['browser_day', 'rollup_browser_day', 'day', 'browser', 'events+revenue', true],
        ['campaign_type_hour', 'rollup_campaign_type_hour', 'hour', 'campaign+type', 'events+revenue', true],
        ['campaign_type_day', 'rollup_campaign_type_day', 'day', 'campaign+type', 'events+revenue', true],
      ],
    );
    assert.equal(expandCatalog(DEFAULT_SPECS).length, ROLLUPS.length);
    assert.equal(dimensionByName('campaign')?.column, 'campaign_id');
    assert.equal(dimensionByName('campaign_id'), undefined);
    assert.equal(rollupForGrain('hour').table, 'rollup_total_hour');
    assert.deepEqual(LEGACY_ROLLUPS.map((r) => r.table), ['rollup_minute', 'rollup_hour', 'rollup_day']);
  });

  test('specs are checked: names, measures, grains, dimension columns and sources', () => {
    const ok: RollupSpec = { name: 'sku', dimensions: [{ name: 'sku', column: 'sku', source: { kind: 'property', path: ['item', 'sku'] } }], measures: ['events'], grains: ['day'], allTenants: false, custom: true };
    assert.deepEqual(specProblems(ok), []);
    assert.deepEqual(expandCatalog([ok]).map((d) => [d.name, d.table, d.custom]), [['sku_day', 'rollup_sku_day', true]]);
    const bad: [Partial<RollupSpec>, RegExp][] = [
      [{ name: 'Bad-Name' }, /rollup name/],
      [{ measures: ['revenue'] }, /must include events/],
      [{ grains: [] }, /at least one grain/],
      [{ grains: ['week' as never] }, /unknown grain/],
      [{ dimensions: [{ name: 'x', column: 'events', source: { kind: 'column', column: 'type' } }] }, /column "events" is not allowed/],
      [{ dimensions: [{ name: 'x', column: 'x', source: { kind: 'column', column: 'session_id' } }] }, /not one of type, country/],
      [{ dimensions: [{ name: 'x', column: 'x', source: { kind: 'property', path: [] } }] }, /properties path/],
    ];
    for (const [change, message] of bad) assert.match(specProblems({ ...ok, ...change }).join('; '), message);
    assert.throws(() => expandCatalog([ok, ok]), /defined twice/);
  });

  test('the smallest rollup that answers: fewest dimensions, the grain, the measures, the all-storefronts rows', () => {
    const pick = (q: Partial<RollupQuestion>) => answeringRollups({ grain: 'hour', by: null, filters: [], measures: ['events'], allTenants: false, ...q })[0]?.name;
    assert.equal(pick({}), 'total_hour');
    assert.equal(pick({ by: 'type' }), 'type_hour');
    assert.equal(pick({ by: 'campaign' }), 'campaign_type_hour', 'campaign is summed over type');
    assert.equal(pick({ by: 'campaign', filters: ['type'] }), 'campaign_type_hour');
    assert.equal(pick({ by: 'country', filters: ['type'] }), undefined);
    assert.equal(pick({ by: 'country', measures: ['events', 'sessions'] }), undefined);
    assert.equal(pick({ measures: ['events', 'users'], grain: 'minute', allTenants: true }), 'total_minute');
    assert.equal(pick({ by: 'country', grain: 'minute' }), undefined);
    assert.equal(pick({ filters: ['type'], grain: 'minute' }), 'type_minute');
  });

  test('the fold plan reads events once per question and derives the rest from finer deltas', () => {
    const plan = planFold(ROLLUPS).map((s) => `${s.def.name}<-${s.from === 'events' ? 'events' : s.from.name}`);
    assert.deepEqual(plan, [
      'type_minute<-events',
      'total_minute<-events',
      'campaign_type_hour<-events',
      'type_hour<-campaign_type_hour',
      'country_hour<-events',
      'browser_hour<-events',
      'total_hour<-total_minute',
      'campaign_type_day<-campaign_type_hour',
      'type_day<-campaign_type_day',
      'country_day<-country_hour',
      'browser_day<-browser_hour',
      'total_day<-total_hour',
    ]);
    // Minute deltas cut at the minute retention feed no coarser grain.
    const filtered = planFold(ROLLUPS, { minuteFiltered: true }).map((s) => `${s.def.name}<-${s.from === 'events' ? 'events' : s.from.name}`);
    assert.ok(filtered.includes('total_hour<-events'));
    assert.ok(filtered.includes('type_hour<-campaign_type_hour'));
    assert.ok(filtered.includes('total_day<-total_hour'));
    assert.equal(filtered.filter((x) => x.endsWith('<-total_minute') || x.endsWith('<-type_minute')).length, 0);
    assert.equal(foldModeFor({ citus: true, hllInstalled: true }), 'direct');
    assert.equal(foldModeFor({ citus: false, hllInstalled: false }), 'deltas');
  });

  test('the fold trees keep each delta with the definitions derived from it, dearest first', () => {
    const names = (trees: RollupDefinition[][]) => trees.map((t) => t.map((d) => d.name));
    // Catching up (minute deltas cut at the retention): type_hour comes from campaign_type_hour's
    // delta, so the two are one tree, and that tree is the dearest (two text dimensions by the hour); sketches make the totals next.
    assert.deepEqual(names(foldTrees(ROLLUPS, { minuteFiltered: true })), [
      ['type_hour', 'type_day', 'campaign_type_hour', 'campaign_type_day'],
      ['total_hour', 'total_day'],
      ['country_hour', 'country_day'],
      ['browser_hour', 'browser_day'],
      ['type_minute'],
      ['total_minute'],
    ]);
    // Uncut: the hour totals come from the minute totals' delta.
    const whole = names(foldTrees(ROLLUPS));
    assert.ok(whole.some((t) => t.join() === 'total_minute,total_hour,total_day'), JSON.stringify(whole));
    for (const minuteFiltered of [false, true]) {
      const trees = foldTrees(ROLLUPS, { minuteFiltered });
      assert.deepEqual(trees.flat().map((d) => d.name).sort(), ROLLUPS.map((d) => d.name).sort(), 'every definition exactly once');
      for (const step of planFold(ROLLUPS, { minuteFiltered })) {
        const parent = step.from;
        if (parent === 'events') continue;
        assert.ok(trees.some((t) => t.includes(step.def) && t.includes(parent)), `${step.def.name} is folded with ${parent.name}`);
      }
    }
    assert.deepEqual(foldTrees([]), []);
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
        assert.deepEqual(st.values, def.dimensions.length > 0 ? [10, 20, 64] : [10, 20], 'the window, then the dimension length');
        assert.match(sql, new RegExp(`^INSERT INTO "app"\\."${def.table}" AS r`));
        assert.match(sql, /FROM "app"\."events"\nWHERE ingest_seq > \$1 AND ingest_seq <= \$2\nGROUP BY tenant_id, /);
        assert.match(sql, new RegExp(`ON CONFLICT \\(${keyColumns(def).map((c) => `"${c}"`).join(', ')}\\) DO UPDATE SET`));
        assert.match(sql, /"events" = r\."events" \+ EXCLUDED\."events", "revenue" = r\."revenue" \+ EXCLUDED\."revenue"/);
        assert.equal(sql.includes(sketch.merge('r."sessions"', 'EXCLUDED."sessions"')), def.measures.includes('sessions'));
        for (const d of def.dimensions) assert.ok(sql.includes(`left(coalesce("${d.source.kind === 'column' ? d.source.column : ''}", ''), $3::int)`), d.name);
        assert.doesNotMatch(sql, /nextval|now\(\)|random\(\)/);
        // Citus pushes no subquery with OFFSET down to the shards: the direct fold stays flat.
        assert.doesNotMatch(sql, /OFFSET/);
        // The delta of plain PostgreSQL groups the output of a fenced subquery, the same columns
        // under positional names.
        const delta = rollupSql.deltaFromEventsSql(def, sketch, 'app', { source: 'window', fromSeq: 10, toSeq: 20 });
        assert.deepEqual(delta.values, st.values);
        assert.match(delta.text, /\nFROM "app"\."events"\nWHERE ingest_seq > \$1 AND ingest_seq <= \$2\nOFFSET 0\) AS e\nGROUP BY tenant_id, b/);
        for (const [i, d] of def.dimensions.entries()) assert.ok(delta.text.includes(`d${i + 1} AS "${d.column}"`), d.name);
        const from = new Date('2026-03-14T00:00:00Z');
        const to = new Date('2026-03-15T00:00:00Z');
        const rebuild = aggregateSql(def, sketch, 'app', { source: 'rebuild', tenantId: 7, from, to, watermark: 99 });
        assert.deepEqual(rebuild.values, def.dimensions.length > 0 ? [7, from, to, 99, 64] : [7, from, to, 99]);
        assert.match(rebuild.text, /WHERE tenant_id = \$1 AND occurred_at >= \$2 AND occurred_at < \$3 AND ingest_seq <= \$4/);
      }
    }
  });

  test('dimension bounds: the length and each allow-list are bind parameters after the source\'s own', () => {
    const def = LEGACY_ROLLUPS[2] ?? rollupForGrain('day');
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
      events: 'int8',
      revenue: 'numeric',
      sessions: '_int8',
      users: '_int8',
    });
    assert.equal(expectedColumnTypes(def, sketchProfile('hll')).sessions, 'hll');
    const split = ROLLUPS.find((r) => r.name === 'campaign_type_hour');
    assert.ok(split);
    assert.deepEqual(expectedColumnTypes(split, sketchProfile('hll')), { tenant_id: 'int8', bucket: 'timestamptz', campaign_id: 'text', type: 'text', events: 'int8', revenue: 'numeric' });
  });

  test('properties paths and URL paths: the path a bind value, the URL pattern a constant', () => {
    const def = expandCatalog([
      {
        name: 'pages',
        dimensions: [
          { name: 'sku', column: 'sku', source: { kind: 'property', path: ['item', 'sku'] } },
          { name: 'page', column: 'page', source: { kind: 'urlPath', column: 'url' } },
        ],
        measures: ['events'],
        grains: ['day'],
        allTenants: true,
      },
    ])[0];
    assert.ok(def);
    const st = aggregateSql(def, sketchProfile('kmv'), 'app', { source: 'window', fromSeq: 1, toSeq: 2 }, { maxLength: 50, allow: { sku: ['A1'] } });
    assert.deepEqual(st.values, [1, 2, 50, ['item', 'sku'], ['A1']]);
    assert.ok(st.text.includes(`CASE WHEN coalesce((properties #>> $4::text[]), '') = '' OR coalesce((properties #>> $4::text[]), '') = ANY($5::text[]) THEN left(coalesce((properties #>> $4::text[]), ''), $3::int) ELSE 'other' END`), st.text);
    assert.ok(st.text.includes(`left(coalesce(substring("url" from '^(?:[A-Za-z][A-Za-z0-9+.-]*:)?(?://[^/?#]*)?([^?#]*)'), ''), $3::int)`), st.text);
    assert.equal(highestParam(st.text), st.values.length);
  });

  test('the writer wait takes the lock inside a savepoint and rolls back to it', () => {
    const w = waitForWritersSql('app', 1500);
    assert.deepEqual(w.savepoint, { text: 'SAVEPOINT hubsink_wait_for_writers', values: [] });
    assert.deepEqual(w.lock, { text: 'LOCK TABLE "app"."events" IN SHARE MODE', values: [] });
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
    ['allTenantsFromRows range', rollupSql.allTenantsFromRowsSql(def, sketchProfile('kmv'), 'app', { range: { from: at, to: end } }), [at, end]],
    ['allTenantsFromRows delta', rollupSql.allTenantsFromRowsSql(def, sketchProfile('hll'), 'app', { delta: true }), []],
    ['mergeDelta', rollupSql.mergeDeltaSql(def, sketchProfile('hll'), 'app'), []],
    ['deltaFromDelta', rollupSql.deltaFromDeltaSql(def, rollupForGrain('minute'), sketchProfile('kmv')), []],
    ['deltaFromEvents', rollupSql.deltaFromEventsSql(def, sketchProfile('kmv'), 'app', { source: 'window', fromSeq: 5, toSeq: 9 }), [5, 9]],
    ['aggregateAllTenants', rollupSql.aggregateAllTenantsSql(def, sketchProfile('kmv'), 'app', { source: 'window', fromSeq: 5, toSeq: 9 }), [5, 9]],
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

describe('events folded by a run', () => {
  const r = (name: string, fromSeq: number, toSeq: number, rows: number) => ({ name, fromSeq, toSeq, rows, durationMs: 1, caughtUp: true });
  test('rollups sharing a window count its events once; rollups in other windows add theirs', () => {
    assert.equal(eventsFolded([r('total_minute', 10, 20, 7), r('total_hour', 10, 20, 7), r('type_day', 10, 20, 7)]), 7);
    // An analyst-defined rollup still catching up folds its own window, older events included.
    assert.equal(eventsFolded([r('total_minute', 10, 20, 7), r('sku_hour', 0, 10, 4)]), 11);
    assert.equal(eventsFolded([]), 0);
  });
});
