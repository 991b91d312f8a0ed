/**
 * Shared set-up for the rollup tests: a migrated schema with partitions, deterministic event rows
 * over several tenants and dimensions, and the comparisons between raw events and rollups.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createTestSchema, type TestSchema } from './services.js';
import { makeRow } from './rows.js';
import { migrate } from '../../src/db/migrate.js';
import { maintainPartitions } from '../../src/db/partitions.js';
import { detectCapabilities, type Capabilities } from '../../src/db/capabilities.js';
import { configureSession } from '../../src/db/session.js';
import { loadSketchProfile, rollUpUntilCaughtUp, type FoldMode, type RollupRunResult } from '../../src/rollups/run.js';
import { ROLLUPS, type Dimension, type RollupDefinition } from '../../src/rollups/definitions.js';
import { keyColumns, measureColumns } from '../../src/rollups/sql.js';
import type { SketchProfile } from '../../src/rollups/sketches.js';
import type { EventRow } from '../../src/pipeline/types.js';

export interface RollupFixture {
  s: TestSchema;
  caps: Capabilities;
  sketch: SketchProfile;
}

export async function rollupSchema(prefix = 'ru_'): Promise<RollupFixture> {
  const s = await createTestSchema(prefix);
  const before = await detectCapabilities(s.pool);
  configureSession(s.pool, before, { citusCachedConnsPerWorker: 8 });
  await migrate(s.pool, s.schema);
  // 14 days of partitions cover every test's data and keep set-up short on Citus.
  await maintainPartitions(s.pool, s.schema, { now: new Date(), aheadDays: 3, retentionDays: 14, caps: before });
  // The migration may have installed hll.
  const caps = await detectCapabilities(s.pool);
  const sketch = await loadSketchProfile(s.pool, s.schema, caps);
  return { s, caps, sketch };
}

/** A deterministic UUID, so generated data (and hence sketches) is the same on every run. */
export function uuidFor(seed: string): string {
  const h = createHash('sha256').update(seed).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

const TYPES = ['page_view', 'click', 'add_to_cart', 'purchase', 'ad_click'];
const COUNTRIES = ['DE', 'FR', 'US', null];
const BROWSERS = ['firefox', 'chrome', 'safari'];
const CAMPAIGNS = ['spring', 'email-7', null];

/**
 * `count` events spread over tenants, dimension values (NULLs included) and minutes of the last
 * hours before `base`; some purchases carry revenue.
 */
export function sampleRows(count: number, opts: { seed: string; tenants: readonly number[]; base: Date; spreadMinutes?: number }): EventRow[] {
  const spread = opts.spreadMinutes ?? 300;
  const rows: EventRow[] = [];
  for (let i = 0; i < count; i++) {
    const type = TYPES[i % TYPES.length] ?? 'page_view';
    rows.push(
      makeRow({
        eventId: uuidFor(`${opts.seed}/${i}`),
        tenantId: opts.tenants[i % opts.tenants.length] ?? 1,
        type,
        occurredAt: new Date(opts.base.getTime() - ((i * 7919) % (spread * 60)) * 1000),
        sessionId: i % 11 === 0 ? null : `s-${i % 173}`,
        userId: i % 13 === 0 ? null : `u-${i % 59}`,
        country: COUNTRIES[i % COUNTRIES.length] ?? null,
        browser: BROWSERS[(i >> 1) % BROWSERS.length] ?? null,
        campaignId: CAMPAIGNS[(i >> 2) % CAMPAIGNS.length] ?? null,
        revenue: type === 'purchase' ? Number(((i % 97) + 0.25).toFixed(2)) : null,
      }),
    );
  }
  return rows;
}

/** A minute boundary a little in the past: inside today's and yesterday's partitions. */
export function recentBase(): Date {
  return new Date(Math.floor((Date.now() - 120_000) / 60_000) * 60_000);
}

export async function runUntilCaughtUp(f: RollupFixture, maxWindowRows = 1_000_000, maxRuns = 1000, foldMode?: FoldMode): Promise<RollupRunResult[][]> {
  const r = await rollUpUntilCaughtUp(f.s.pool, f.s.schema, { caps: f.caps, maxWindowRows, maxRuns, ...(foldMode ? { foldMode } : {}) });
  if (!r.caughtUp) throw new Error(`rollups did not catch up in ${maxRuns} runs`);
  return r.runs;
}

type Row = Record<string, string>;

async function rowsOf(f: RollupFixture, sql: string, params: unknown[] = []): Promise<Row[]> {
  const { rows } = await f.s.pool.query<Row>(sql, params);
  return rows;
}

/** The events expression a dimension reads (the tests' catalogs use events columns). */
export function sourceColumn(d: Dimension): string {
  if (d.source.kind !== 'column') throw new Error(`test helper: dimension ${d.name} does not read a column`);
  return d.source.column;
}

/**
 * Per tenant and value of one dimension (an events expression; `''` for none): event count and
 * revenue, from raw events. With `allTenants`, one row per value under tenant 0.
 */
export function rawByDimension(f: RollupFixture, source: string, opts: { allTenants?: boolean } = {}): Promise<Row[]> {
  const tenant = opts.allTenants ? `'0'` : 'tenant_id::text';
  return rowsOf(
    f,
    `SELECT ${tenant} AS tenant, coalesce(${source}, '') AS k, count(*)::text AS n, coalesce(sum(revenue), 0)::numeric(30,4)::text AS revenue
     FROM "${f.s.schema}".events GROUP BY 1, 2 ORDER BY 1, 2`,
  );
}

/** The same from a rollup table (`''` for no dimension): per-tenant rows, or the tenant-0 rows. */
export function rollupByDimension(f: RollupFixture, def: RollupDefinition, column: string, opts: { allTenants?: boolean } = {}): Promise<Row[]> {
  return rowsOf(
    f,
    `SELECT tenant_id::text AS tenant, ${column} AS k, sum(events)::text AS n, sum(revenue)::numeric(30,4)::text AS revenue
     FROM "${f.s.schema}".${def.table} WHERE tenant_id ${opts.allTenants ? '=' : '<>'} 0 GROUP BY 1, 2 ORDER BY 1, 2`,
  );
}

/**
 * Asserts count and revenue of every rollup equal raw events per tenant, in total and per
 * dimension it keeps; and its all-storefronts rows equal the raw events of every tenant.
 */
export async function assertRollupsMatchEvents(f: RollupFixture, rollups: readonly RollupDefinition[] = ROLLUPS): Promise<void> {
  for (const def of rollups) {
    for (const dim of [null, ...def.dimensions]) {
      const source = dim ? sourceColumn(dim) : `''`;
      const column = dim ? dim.column : `''`;
      const what = `${def.name} rollup by ${dim?.name ?? 'nothing'}`;
      assert.deepEqual(await rollupByDimension(f, def, column), await rawByDimension(f, source), `${what} differs from events`);
      const all = await rollupByDimension(f, def, column, { allTenants: true });
      if (def.allTenants) assert.deepEqual(all, await rawByDimension(f, source, { allTenants: true }), `${what}: all storefronts differ from events`);
      else assert.deepEqual(all, [], `${def.name} keeps no all-storefronts rows`);
    }
  }
}

/** A coarser rollup, row by row, equals the finer one re-bucketed (both per tenant and tenant 0). */
export async function assertCoarserAgrees(f: RollupFixture, finer: RollupDefinition, coarser: RollupDefinition): Promise<number> {
  const dims = coarser.dimensions.map((d) => d.column);
  const keys = ['tenant_id', 'b', ...dims].join(', ');
  const dimList = dims.map((d) => `${d}, `).join('');
  const fromFiner = await rowsOf(
    f,
    `SELECT tenant_id::text, timezone('UTC', date_trunc('${coarser.grain}', timezone('UTC', bucket))) AS b, ${dimList}
            sum(events)::text AS n, sum(revenue)::numeric(30,4)::text AS revenue
     FROM "${f.s.schema}".${finer.table} GROUP BY ${keys} ORDER BY ${keys}`,
  );
  const direct = await rowsOf(
    f,
    `SELECT tenant_id::text, bucket AS b, ${dimList} events::text AS n, revenue::numeric(30,4)::text AS revenue
     FROM "${f.s.schema}".${coarser.table} ORDER BY ${keys}`,
  );
  assert.deepEqual(direct, fromFiner, `${coarser.name} rows differ from ${finer.name} rows re-bucketed`);
  return direct.length;
}

/** Every spec's coarser grains agree with its finer ones; returns the rows compared. */
export async function assertCatalogCoarserAgrees(f: RollupFixture, rollups: readonly RollupDefinition[] = ROLLUPS): Promise<number> {
  let n = 0;
  for (const [i, def] of rollups.entries()) {
    const next = rollups[i + 1];
    if (next && next.spec === def.spec) n += await assertCoarserAgrees(f, def, next);
  }
  return n;
}

/** Full content of a rollup table, sketches as text, for before/after comparisons. */
export function snapshot(f: RollupFixture, def: RollupDefinition, where = 'true', params: unknown[] = []): Promise<Row[]> {
  const keys = keyColumns(def).join(', ');
  const cols = [...keyColumns(def), ...measureColumns(def)].map((c) => `${c}::text`).join(', ');
  return rowsOf(f, `SELECT ${cols} FROM "${f.s.schema}".${def.table} WHERE ${where} ORDER BY ${keys}`, params);
}

/** Estimated distinct sessions and users of a tenant's buckets in [from, to) of a rollup. */
export async function estimateDistinct(
  f: RollupFixture,
  def: RollupDefinition,
  tenantId: number,
  from: Date,
  to: Date,
  sketch: SketchProfile = f.sketch,
): Promise<{ sessions: number; users: number }> {
  const rows = await rowsOf(
    f,
    `SELECT ${sketch.estimate('u.s')}::text AS sessions, ${sketch.estimate('u.u')}::text AS users
     FROM (SELECT ${sketch.union('sessions')} AS s, ${sketch.union('users')} AS u FROM "${f.s.schema}".${def.table}
           WHERE tenant_id = $1 AND bucket >= $2 AND bucket < $3) AS u`,
    [tenantId, from, to],
  );
  return { sessions: Number(rows[0]?.sessions), users: Number(rows[0]?.users) };
}

/** Tenant 0: every tenant's events (the all-storefronts view). */
export async function exactDistinct(f: RollupFixture, tenantId: number, from: Date, to: Date): Promise<{ sessions: number; users: number }> {
  const rows = await rowsOf(
    f,
    `SELECT count(DISTINCT session_id)::text AS sessions, count(DISTINCT user_id)::text AS users FROM "${f.s.schema}".events
     WHERE (tenant_id = $1 OR $1 = 0) AND occurred_at >= $2 AND occurred_at < $3`,
    [tenantId, from, to],
  );
  return { sessions: Number(rows[0]?.sessions), users: Number(rows[0]?.users) };
}

export async function eventCount(f: RollupFixture): Promise<number> {
  const rows = await rowsOf(f, `SELECT count(*)::text AS n FROM "${f.s.schema}".events`);
  return Number(rows[0]?.n);
}

/**
 * Events a rollup holds over every tenant. Its all-storefronts rows (tenant 0) must hold the same
 * number: checked here, so every test that counts checks them too.
 */
export async function rollupCount(f: RollupFixture, def: RollupDefinition): Promise<number> {
  const rows = await rowsOf(
    f,
    `SELECT coalesce(sum(events) FILTER (WHERE tenant_id <> 0), 0)::text AS n, coalesce(sum(events) FILTER (WHERE tenant_id = 0), 0)::text AS all_tenants
     FROM "${f.s.schema}".${def.table}`,
  );
  const n = Number(rows[0]?.n);
  assert.equal(Number(rows[0]?.all_tenants), def.allTenants ? n : 0, `${def.name}: all-storefronts rows hold every tenant's events`);
  return n;
}
