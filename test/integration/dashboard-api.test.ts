/**
 * The dashboard's endpoints against real PostgreSQL with real rollups: GET /api/tenants (storefronts
 * by activity), GET /api/freshness (lag and pending events) and the metrics API's type filter,
 * each compared with SQL on the raw events.
 */
import { afterAll, beforeAll, test } from 'vitest';
import assert from 'node:assert/strict';
import functions, { type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { insertEventRows } from '../../src/db/events.js';
import { ensureTenantsSql } from '../../src/db/tenants.js';
import { makeFreshnessHandler, type FreshnessResponse } from '../../src/serving/freshnessHandler.js';
import { makeMetricsHandler } from '../../src/serving/handler.js';
import type { MetricsResponse } from '../../src/serving/query.js';
import { makeTenantsHandler, type TenantsResponse } from '../../src/serving/tenantsHandler.js';
import { GRAIN_MS, bucketStart, ROLLUPS } from '../../src/rollups/definitions.js';
import { makeRow } from '../support/rows.js';
import { rollupSchema, runUntilCaughtUp, uuidFor, type RollupFixture } from '../support/rollups-fixture.js';

const { HttpRequest, InvocationContext: Context } = functions;
const retentionDays = { minute: 7, hour: 90, day: 3650 };

let f: RollupFixture;
const day0 = new Date(bucketStart(new Date(), 'day').getTime() - GRAIN_MS.day);
const at = (h: number, m: number) => new Date(day0.getTime() + h * GRAIN_MS.hour + m * 60_000);
const dayRange = `from=${day0.toISOString()}&to=${new Date(day0.getTime() + GRAIN_MS.day).toISOString()}`;

function context(): InvocationContext {
  return new Context({ invocationId: 't', functionName: 'dashboard', logHandler: () => undefined });
}
const req = (url: string, params: Record<string, string> = {}) => new HttpRequest({ method: 'GET', url: `http://127.0.0.1${url}`, params });
function ok<T>(r: HttpResponseInit): T {
  assert.equal(r.status, 200, JSON.stringify(r.jsonBody));
  return r.jsonBody as T;
}

beforeAll(async () => {
  f = await rollupSchema('da_');
  let i = 0;
  const ev = (tenantId: number, o: Parameters<typeof makeRow>[0]) => makeRow({ eventId: uuidFor(`dash/${i++}`), tenantId, ...o });
  const rows = [
    ...Array.from({ length: 9 }, (_, k) => ev(501, { occurredAt: at(9, k), type: k % 3 === 0 ? 'ad_click' : 'ad_impression', campaignId: k % 2 ? 'spring' : 'fall' })),
    ...Array.from({ length: 4 }, (_, k) => ev(502, { occurredAt: at(10, k), type: 'page_view' })),
    ...Array.from({ length: 4 }, (_, k) => ev(504, { occurredAt: at(11, k), type: 'page_view' })),
    // Outside the day: counts for no range the tests ask about.
    ev(502, { occurredAt: new Date(day0.getTime() - 3600_000), type: 'page_view' }),
  ];
  await insertEventRows(f.s.pool, f.s.schema, rows);
  // Registered as ingest registers them; 503 has sent nothing in the range.
  await f.s.pool.query(ensureTenantsSql(f.s.schema, [501, 502, 503, 504]));
  await f.s.pool.query(`UPDATE "${f.s.schema}".tenants SET name = 'Shop Two' WHERE tenant_id = 502`);
  await runUntilCaughtUp(f);
});

afterAll(async () => {
  await f.s.drop();
});

test('tenants: most active first (ties by id), quiet ones after with 0, names; counts equal the raw events', async () => {
  const handler = makeTenantsHandler(() => Promise.resolve({ pool: f.s.pool, schema: f.s.schema, retentionDays }));
  const body = ok<TenantsResponse>(await handler(req(`/api/tenants?${dayRange}`), context()));
  assert.equal(body.grain, 'day');
  const raw = await f.s.pool.query<{ t: string; n: string }>(
    `SELECT tenant_id::text AS t, count(*)::text AS n FROM "${f.s.schema}".events WHERE occurred_at >= $1 AND occurred_at < $2 GROUP BY 1`,
    [day0, new Date(day0.getTime() + GRAIN_MS.day)],
  );
  const counts = new Map(raw.rows.map((r) => [Number(r.t), Number(r.n)]));
  assert.deepEqual(body.tenants, [
    { tenantId: 501, name: null, events: counts.get(501) },
    { tenantId: 502, name: 'Shop Two', events: counts.get(502) },
    { tenantId: 504, name: null, events: counts.get(504) },
    { tenantId: 503, name: null, events: 0 },
  ]);
  assert.equal(body.truncated, false);
  assert.ok(body.rollupRunAt !== null);
  // An hour-aligned range answers from the hour rollup: only 502 was active 10:00-11:00.
  const hour = ok<TenantsResponse>(await handler(req(`/api/tenants?from=${at(10, 0).toISOString()}&to=${at(11, 0).toISOString()}&limit=2`), context()));
  assert.equal(hour.grain, 'hour');
  assert.deepEqual(hour.tenants.map((t) => [t.tenantId, t.events]), [[502, 4], [501, 0]]);
  assert.equal(hour.truncated, true);
  const bad = await handler(req(`/api/tenants?from=${at(10, 0).toISOString()}`), context());
  assert.equal(bad.status, 400);
  assert.deepEqual(bad.jsonBody, { error: { parameter: 'to', message: 'to: required: an ISO-8601 time with offset, e.g. 2026-01-31T00:00:00Z' } });
});

test('freshness: caught up after a run; events not folded in yet show as pending with their age', async () => {
  const handler = makeFreshnessHandler(() => Promise.resolve({ pool: f.s.pool, schema: f.s.schema }), { cacheMs: 0 });
  const caught = ok<FreshnessResponse>(await handler(req('/api/freshness'), context()));
  assert.deepEqual(caught.rollups.map((r) => [r.name, r.pendingEvents, r.lagSeconds]), ROLLUPS.map((d) => [d.name, 0, 0]));
  assert.ok(caught.rollups.every((r) => r.lastRunAt !== null && Date.parse(r.lastRunAt) <= Date.parse(caught.now)));
  await insertEventRows(f.s.pool, f.s.schema, [makeRow({ eventId: uuidFor('dash/late1'), tenantId: 501, occurredAt: at(9, 30), type: 'ad_impression' }), makeRow({ eventId: uuidFor('dash/late2'), tenantId: 501, occurredAt: at(9, 31), type: 'ad_click' })]);
  await f.s.pool.query(`UPDATE "${f.s.schema}".events SET ingested_at = now() - interval '90 seconds' WHERE event_id = $1`, [uuidFor('dash/late1')]);
  const behind = ok<FreshnessResponse>(await handler(req('/api/freshness'), context()));
  for (const r of behind.rollups) {
    assert.equal(r.pendingEvents, 2);
    assert.equal(r.pendingCapped, false);
    assert.ok(r.lagSeconds >= 89 && r.lagSeconds < 600, String(r.lagSeconds));
  }
  // A bounded count: past the bound it says "at least".
  const capped = makeFreshnessHandler(() => Promise.resolve({ pool: f.s.pool, schema: f.s.schema }), { cacheMs: 0, pendingBound: 1 });
  assert.ok(ok<FreshnessResponse>(await capped(req('/api/freshness'), context())).rollups.every((r) => r.pendingCapped && r.pendingEvents === 1));
  // One status serves many dashboards for cacheMs.
  let calls = 0;
  const cached = makeFreshnessHandler(() => {
    calls++;
    return Promise.resolve({ pool: f.s.pool, schema: f.s.schema });
  }, { cacheMs: 60_000 });
  const a = ok<FreshnessResponse>(await cached(req('/api/freshness'), context()));
  await runUntilCaughtUp(f);
  const b = ok<FreshnessResponse>(await cached(req('/api/freshness'), context()));
  assert.deepEqual(b, a, 'served from the cache');
  assert.equal(calls, 2);
  assert.equal((await cached(req('/api/freshness?x=1'), context())).status, 400);
});

test('metrics type filter: one event type per campaign, equal to the raw events', async () => {
  const handler = makeMetricsHandler(() => Promise.resolve({ pool: f.s.pool, schema: f.s.schema, caps: f.caps, retentionDays }));
  for (const type of ['ad_click', 'ad_impression', 'no_such_type']) {
    const body = ok<MetricsResponse>(await handler(req(`/api/tenants/501/metrics?${dayRange}&by=campaign&type=${type}`, { tenantId: '501' }), context()));
    assert.equal(body.type, type);
    const got = body.series.map((s) => [s.key, s.points.reduce((a, p) => a + p.events, 0)]);
    const raw = await f.s.pool.query<{ k: string; n: string }>(
      `SELECT coalesce(campaign_id, '') AS k, count(*)::text AS n FROM "${f.s.schema}".events WHERE tenant_id = 501 AND type = $1 AND occurred_at >= $2 AND occurred_at < $3 GROUP BY 1 ORDER BY 1`,
      [type, day0, new Date(day0.getTime() + GRAIN_MS.day)],
    );
    assert.deepEqual(got, raw.rows.map((r) => [r.k, Number(r.n)]), type);
  }
  const all = ok<MetricsResponse>(await handler(req(`/api/tenants/501/metrics?${dayRange}&by=campaign`, { tenantId: '501' }), context()));
  assert.equal(all.type, undefined);
  assert.equal(all.series.reduce((a, s) => a + s.points.reduce((x, p) => x + p.events, 0), 0), 11);
});
