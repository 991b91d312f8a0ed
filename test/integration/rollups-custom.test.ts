/**
 * Analyst-defined rollups (issue 18 item 4): defined at run time, backfilled exactly from the raw
 * events still retained, then kept by the incremental fold, with values bounded. The expected
 * figures come from labels the test gives its own rows (the SKU, the URL's path), not from SQL or
 * code under test.
 */
import { test } from 'vitest';
import assert from 'node:assert/strict';
import functions, { type HttpResponseInit } from '@azure/functions';
import { makeRollupsHandler } from '../../src/serving/catalogHandler.js';
import { makeMetricsHandler } from '../../src/serving/handler.js';
import type { MetricsResponseWire, RollupCatalogWire } from '../../src/serving/wire.js';
import { bucketStart, GRAIN_MS } from '../../src/rollups/definitions.js';
import { insertEventRows } from '../../src/db/events.js';
import type { EventRow } from '../../src/pipeline/types.js';
import { loadCatalog } from '../../src/rollups/catalog.js';
import { buildCustomSpec } from '../../src/rollups/custom.js';
import { backfillCustomRollup, defineCustomRollup, type BackfillProgress } from '../../src/rollups/customStore.js';
import { runRollups } from '../../src/rollups/run.js';
import { makeRow } from '../support/rows.js';
import { recentBase, rollupSchema, runUntilCaughtUp, uuidFor, type RollupFixture } from '../support/rollups-fixture.js';

/** Properties and what `properties.sku` / `properties.cart.coupon` make of them (cut to 64). */
const PROPS: readonly { p: Record<string, unknown> | null; sku: string; coupon: string }[] = [
  { p: { sku: 'A-1' }, sku: 'A-1', coupon: '' },
  { p: { sku: 'B-2', cart: { coupon: 'X' } }, sku: 'B-2', coupon: 'X' },
  { p: { sku: 123 }, sku: '123', coupon: '' },
  { p: { sku: null, cart: { coupon: 'Y' } }, sku: '', coupon: 'Y' },
  { p: null, sku: '', coupon: '' },
  { p: { sku: 'L'.repeat(100) }, sku: 'L'.repeat(64), coupon: '' },
];
/** URLs and their paths without scheme, host, query and fragment. */
const URLS: readonly { url: string | null; path: string }[] = [
  { url: 'https://shop.example/p/1?utm_source=mail#top', path: '/p/1' },
  { url: 'http://shop.example:8080/cart', path: '/cart' },
  { url: '/relative/path?q=1', path: '/relative/path' },
  { url: 'https://shop.example/a/b/#frag', path: '/a/b/' },
  { url: null, path: '' },
];

interface Labelled {
  row: EventRow;
  sku: string;
  coupon: string;
  path: string;
}

function rows(seed: string, count: number, base: Date): Labelled[] {
  return Array.from({ length: count }, (_, i) => {
    const props = PROPS[i % PROPS.length] ?? { p: null, sku: '', coupon: '' };
    const url = URLS[(i >> 1) % URLS.length] ?? { url: null, path: '' };
    const row = makeRow({
      eventId: uuidFor(`${seed}/${i}`),
      tenantId: [11, 12, 13][i % 3] ?? 11,
      type: i % 4 === 0 ? 'purchase' : 'page_view',
      occurredAt: new Date(base.getTime() - ((i * 7919) % (6 * 3600)) * 1000),
      properties: props.p,
      url: url.url,
      revenue: i % 4 === 0 ? Number(((i % 89) + 0.5).toFixed(2)) : null,
    });
    return { row, sku: props.sku, coupon: props.coupon, path: url.path };
  });
}

async function insert(f: RollupFixture, labelled: readonly Labelled[]): Promise<void> {
  await insertEventRows(f.s.pool, f.s.schema, labelled.map((l) => l.row));
}

/** Per tenant (and 0 for all storefronts), sku, coupon, path: events and revenue in cents. */
function expected(all: readonly Labelled[]): string[] {
  const m = new Map<string, { n: number; cents: number }>();
  const add = (tenant: number, l: Labelled) => {
    const k = JSON.stringify([String(tenant), l.sku, l.coupon, l.path]);
    const v = m.get(k) ?? { n: 0, cents: 0 };
    v.n += 1;
    v.cents += Math.round((l.row.revenue ?? 0) * 100);
    m.set(k, v);
  };
  for (const l of all) {
    add(l.row.tenantId, l);
    add(0, l);
  }
  return [...m.entries()].map(([k, v]) => `${k} ${v.n} ${v.cents}`).sort();
}

async function stored(f: RollupFixture, table: string): Promise<string[]> {
  const { rows: r } = await f.s.pool.query<{ t: string; sku: string; coupon: string; page: string; n: string; cents: string }>(
    `SELECT tenant_id::text AS t, sku, coupon, page, sum(events)::text AS n, (sum(revenue) * 100)::bigint::text AS cents FROM "${f.s.schema}"."${table}" GROUP BY 1, 2, 3, 4`,
  );
  return r.map((x) => `${JSON.stringify([x.t, x.sku, x.coupon, x.page])} ${x.n} ${x.cents}`).sort();
}

const SPEC_INPUT = {
  name: 'skus',
  dimensions: ['sku=properties.sku', 'coupon=properties.cart.coupon', 'page=urlpath(url)'],
  grains: ['hour', 'day'],
  measures: ['revenue'],
  allTenants: true,
};

function specOf() {
  const built = buildCustomSpec(SPEC_INPUT, []);
  assert.ok(built.ok, JSON.stringify(built));
  return built.spec;
}

async function assertExact(f: RollupFixture, all: readonly Labelled[]): Promise<void> {
  const want = expected(all);
  assert.deepEqual(await stored(f, 'rollup_skus_hour'), want, 'rollup_skus_hour');
  assert.deepEqual(await stored(f, 'rollup_skus_day'), want, 'rollup_skus_day');
}

test('define, backfill in chunks, ingest more: the custom rollup equals the labelled events exactly, tenant and all storefronts', async () => {
  const f = await rollupSchema('rc_');
  try {
    const base = recentBase();
    const before = rows('before', 300, base);
    await insert(f, before);
    await runUntilCaughtUp(f);
    // Not yet folded by the built-in rollups when the analyst defines: still below the horizon.
    const pending = rows('pending', 200, base);
    await insert(f, pending);

    // A page that loaded before the analyst defined the rollup: GET /api/rollups has already
    // answered once without it.
    const { HttpRequest, InvocationContext } = functions;
    const ctx = new InvocationContext({ invocationId: 't', functionName: 'rollups', logHandler: () => undefined });
    const catalogHandler = makeRollupsHandler(() => Promise.resolve({ pool: f.s.pool, schema: f.s.schema }));
    const getCatalog = async (): Promise<RollupCatalogWire> => {
      const r = await catalogHandler(new HttpRequest({ method: 'GET', url: 'http://127.0.0.1/api/rollups' }), ctx);
      assert.equal(r.status, 200, JSON.stringify(r.jsonBody));
      return r.jsonBody as RollupCatalogWire;
    };
    assert.ok(!(await getCatalog()).rollups.some((r) => r.name === 'skus'));

    const defined = await defineCustomRollup(f.s.pool, f.s.schema, specOf(), { caps: f.caps });
    assert.deepEqual(defined.definitions.map((d) => d.table), ['rollup_skus_hour', 'rollup_skus_day']);
    // Until backfilled, the API and rebuilds do not offer it; the fold does.
    assert.ok(!(await loadCatalog(f.s.pool, f.s.schema, { serving: true })).specs.some((s) => s.name === 'skus'));
    assert.ok((await loadCatalog(f.s.pool, f.s.schema)).rollups.some((r) => r.table === 'rollup_skus_hour'));

    const after = rows('after', 150, base);
    await insert(f, after);
    const seen: BackfillProgress[] = [];
    const done = await backfillCustomRollup(f.s.pool, f.s.schema, 'skus', { caps: f.caps, chunkRows: 97, onProgress: (p) => seen.push(p) });
    assert.equal(done.finished, true);
    assert.equal(done.rows, 500, 'every event at or below the horizon, once');
    assert.equal(seen.length, Math.ceil(500 / 97));
    assert.deepEqual(seen.map((p) => p.rows), seen.map((_, i) => Math.min(500, 97 * (i + 1))), 'progress after each chunk');
    await assertExact(f, [...before, ...pending]);

    // The incremental fold takes it from the horizon: the events after it, once.
    await runUntilCaughtUp(f);
    await assertExact(f, [...before, ...pending, ...after]);
    const more = rows('more', 80, base);
    await insert(f, more);
    await runUntilCaughtUp(f);
    await assertExact(f, [...before, ...pending, ...after, ...more]);
    assert.ok((await loadCatalog(f.s.pool, f.s.schema, { serving: true })).specs.some((s) => s.name === 'skus' && s.custom === true));

    // The API offers it at once (no restart, and the handler that answered before the define reads
    // the catalog afresh): GET /api/rollups lists it, the metrics API answers by its dimensions, per
    // storefront and for all storefronts, with the labelled totals.
    const ok = <T>(r: HttpResponseInit): T => {
      assert.equal(r.status, 200, JSON.stringify(r.jsonBody));
      return r.jsonBody as T;
    };
    const cat = await getCatalog();
    assert.deepEqual(cat.rollups.find((r) => r.name === 'skus'), { name: 'skus', dimensions: ['sku', 'coupon', 'page'], measures: ['events', 'revenue'], grains: ['hour', 'day'], allTenants: true, custom: true });
    assert.deepEqual(cat.dimensions.filter((d) => ['sku', 'coupon', 'page'].includes(d.name)), [
      { name: 'sku', source: 'properties.sku' },
      { name: 'coupon', source: 'properties.cart.coupon' },
      { name: 'page', source: 'urlpath(url)' },
    ]);
    const metrics = makeMetricsHandler(() => Promise.resolve({ pool: f.s.pool, schema: f.s.schema, caps: f.caps, retentionDays: { minute: 7, hour: 90, day: 3650 } }));
    const from = new Date(bucketStart(base, 'day').getTime() - GRAIN_MS.day).toISOString();
    const to = new Date(bucketStart(base, 'day').getTime() + GRAIN_MS.day).toISOString();
    const everything = [...before, ...pending, ...after, ...more];
    for (const tenant of ['11', 'all']) {
      const body = ok<MetricsResponseWire>(
        await metrics(new HttpRequest({ method: 'GET', url: `http://127.0.0.1/api/tenants/${tenant}/metrics?from=${from}&to=${to}&grain=day&by=page&top=50`, params: { tenantId: tenant } }), ctx),
      );
      assert.equal(body.rollup, 'skus_day');
      const got = Object.fromEntries(body.series.map((x) => [x.key ?? 'other', x.points.reduce((a, p) => a + p.events, 0)]));
      const want: Record<string, number> = {};
      for (const l of everything) if (tenant === 'all' || String(l.row.tenantId) === tenant) want[l.path] = (want[l.path] ?? 0) + 1;
      assert.deepEqual(got, want, `tenant ${tenant} by page`);
    }

    // A second backfill finds nothing to do and changes nothing.
    const again = await backfillCustomRollup(f.s.pool, f.s.schema, 'skus', { caps: f.caps, chunkRows: 97 });
    assert.deepEqual([again.finished, again.rows, again.chunks], [true, 500, 0]);
    await assertExact(f, [...before, ...pending, ...after, ...more]);
  } finally {
    await f.s.drop();
  }
});

test('ingest and folds running during the backfill: still exact', async () => {
  const f = await rollupSchema('rc_');
  try {
    const base = recentBase();
    const first = rows('c0', 400, base);
    await insert(f, first);
    await defineCustomRollup(f.s.pool, f.s.schema, specOf(), { caps: f.caps });
    const later: Labelled[] = [];
    const ingest = (async () => {
      for (let i = 0; i < 6; i++) {
        const batch = rows(`c${i + 1}`, 60, base);
        await insert(f, batch);
        later.push(...batch);
        await runRollups(f.s.pool, f.s.schema, { caps: f.caps, maxWindowRows: 1_000_000 });
      }
    })();
    const backfill = backfillCustomRollup(f.s.pool, f.s.schema, 'skus', { caps: f.caps, chunkRows: 23 });
    const [, done] = await Promise.all([ingest, backfill]);
    assert.equal(done.rows, 400);
    await runUntilCaughtUp(f);
    await assertExact(f, [...first, ...later]);
  } finally {
    await f.s.drop();
  }
});

test('an interrupted backfill resumes where it stopped; meanwhile the fold goes on and the API does not offer it', async () => {
  const f = await rollupSchema('rc_');
  try {
    const base = recentBase();
    const first = rows('i0', 250, base);
    await insert(f, first);
    await defineCustomRollup(f.s.pool, f.s.schema, specOf(), { caps: f.caps });
    const stopped = await backfillCustomRollup(f.s.pool, f.s.schema, 'skus', { caps: f.caps, chunkRows: 40, maxChunks: 2 });
    assert.deepEqual([stopped.finished, stopped.rows, stopped.chunks], [false, 80, 2]);
    const later = rows('i1', 70, base);
    await insert(f, later);
    await runUntilCaughtUp(f);
    assert.ok(!(await loadCatalog(f.s.pool, f.s.schema, { serving: true })).specs.some((s) => s.name === 'skus'));
    const { rows: partial } = await f.s.pool.query<{ n: string }>(`SELECT sum(events)::text AS n FROM "${f.s.schema}".rollup_skus_day WHERE tenant_id <> 0`);
    assert.equal(Number(partial[0]?.n), 80 + 70, 'two chunks and the fold, nothing else');

    const resumed = await backfillCustomRollup(f.s.pool, f.s.schema, 'skus', { caps: f.caps, chunkRows: 40 });
    assert.deepEqual([resumed.finished, resumed.rows, resumed.chunks], [true, 250, Math.ceil(170 / 40)]);
    await assertExact(f, [...first, ...later]);
    assert.ok((await loadCatalog(f.s.pool, f.s.schema, { serving: true })).specs.some((s) => s.name === 'skus'));
  } finally {
    await f.s.drop();
  }
});
