import { afterAll, beforeAll, test } from 'vitest';
import assert from 'node:assert/strict';
import functions, { type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { insertEventRows } from '../../src/db/events.js';
import { makeMetricsHandler, type MetricsDeps } from '../../src/serving/handler.js';
import type { MetricsResponse } from '../../src/serving/query.js';
import { GRAIN_MS, bucketStart } from '../../src/rollups/definitions.js';
import { makeRow } from '../support/rows.js';
import { rollupSchema, runUntilCaughtUp, uuidFor, type RollupFixture } from '../support/rollups-fixture.js';

// A CommonJS package: its classes are reachable through the default export only.
const { HttpRequest, InvocationContext: Context } = functions;

let f: RollupFixture;
let deps: MetricsDeps;
const logged: string[] = [];
// Yesterday (UTC): inside raw, minute, hour and day retention.
const day0 = new Date(bucketStart(new Date(), 'day').getTime() - GRAIN_MS.day);
const at = (h: number, m: number, s = 0) => new Date(day0.getTime() + h * GRAIN_MS.hour + m * 60_000 + s * 1000);
const iso = (d: Date) => d.toISOString();

beforeAll(async () => {
  f = await rollupSchema('rh_');
  deps = { pool: f.s.pool, schema: f.s.schema, caps: f.caps, retentionDays: { minute: 7, hour: 90, day: 3650 } };
  const ev = (i: number, o: Parameters<typeof makeRow>[0]) => makeRow({ eventId: uuidFor(`http/${i}`), tenantId: 301, ...o });
  await insertEventRows(f.s.pool, f.s.schema, [
    ev(1, { occurredAt: at(10, 5, 10), type: 'page_view', country: 'DE', sessionId: 's1', userId: 'u1' }),
    ev(2, { occurredAt: at(10, 5, 50), type: 'purchase', country: 'DE', sessionId: 's1', userId: 'u1', revenue: 19.99, campaignId: 'spring' }),
    ev(3, { occurredAt: at(10, 20), type: 'page_view', country: 'FR', sessionId: 's2', userId: 'u2' }),
    ev(4, { occurredAt: at(11, 40), type: 'page_view', country: null, sessionId: 's3', userId: 'u1' }),
    ev(5, { occurredAt: at(11, 41), type: 'purchase', country: 'FR', sessionId: 's2', userId: 'u2', revenue: 5.01, campaignId: 'spring' }),
    // Another tenant's event in the same buckets must never show.
    makeRow({ eventId: uuidFor('http/other'), tenantId: 302, occurredAt: at(10, 5), type: 'page_view', country: 'DE' }),
  ]);
  await runUntilCaughtUp(f);
});

afterAll(async () => {
  await f.s.drop();
});

function context(): InvocationContext {
  return new Context({
    invocationId: 'test',
    functionName: 'metrics',
    logHandler: (_level, ...args) => logged.push(args.map(String).join(' ')),
  });
}

async function get(tenantId: string, qs: string, d: MetricsDeps = deps): Promise<HttpResponseInit> {
  const handler = makeMetricsHandler(() => Promise.resolve(d));
  const req = new HttpRequest({ url: `http://127.0.0.1/api/tenants/${encodeURIComponent(tenantId)}/metrics?${qs}`, method: 'GET', params: { tenantId } });
  return handler(req, context());
}

function body(r: HttpResponseInit): MetricsResponse {
  assert.equal(r.status, 200, JSON.stringify(r.jsonBody));
  return r.jsonBody as MetricsResponse;
}

test('auto on a day-aligned range answers from the day totals rollup: totals, revenue, distinct sessions and users', async () => {
  const r = body(await get('301', `from=${iso(day0)}&to=${iso(new Date(day0.getTime() + GRAIN_MS.day))}&measures=events,revenue,sessions,users`));
  assert.equal(r.grain, 'day');
  assert.equal(r.rollup, 'total_day');
  assert.deepEqual(r.measures, ['events', 'revenue', 'sessions', 'users']);
  assert.equal(r.tenantId, 301);
  assert.equal(r.by, null);
  assert.equal(r.distinct, f.sketch.kind);
  assert.ok(r.rollupRunAt !== null && !Number.isNaN(Date.parse(r.rollupRunAt)));
  assert.deepEqual(r.series, [{ key: null, points: [{ t: iso(day0), events: 5, revenue: '25.0000', sessions: 3, users: 2 }] }]);
});

test('grain=hour by country: one series per country, missing country as ""', async () => {
  const r = body(await get('301', `from=${iso(at(10, 0))}&to=${iso(at(12, 0))}&grain=hour&by=country`));
  assert.equal(r.grain, 'hour');
  assert.equal(r.by, 'country');
  assert.equal(r.rollup, 'country_hour');
  // Events and revenue unless other measures are asked for.
  assert.deepEqual(r.measures, ['events', 'revenue']);
  assert.deepEqual(r.series, [
    { key: '', points: [{ t: iso(at(11, 0)), events: 1, revenue: '0.0000' }] },
    { key: 'DE', points: [{ t: iso(at(10, 0)), events: 2, revenue: '19.9900' }] },
    {
      key: 'FR',
      points: [
        { t: iso(at(10, 0)), events: 1, revenue: '0.0000' },
        { t: iso(at(11, 0)), events: 1, revenue: '5.0100' },
      ],
    },
  ]);
});

test('auto on an hour-aligned range → hour buckets; on a minute-aligned one → minute buckets, by type and campaign', async () => {
  const hours = body(await get('301', `from=${iso(at(9, 0))}&to=${iso(at(12, 0))}&measures=sessions`));
  assert.equal(hours.grain, 'hour');
  assert.equal(hours.rollup, 'total_hour');
  assert.deepEqual(hours.series[0]?.points.map((p) => [p.t, p.events, p.sessions]), [
    [iso(at(10, 0)), 3, 2],
    [iso(at(11, 0)), 2, 2],
  ]);
  const minutes = body(await get('301', `from=${iso(at(10, 5))}&to=${iso(at(10, 21))}&by=type`));
  assert.equal(minutes.grain, 'minute');
  assert.equal(minutes.rollup, 'type_minute');
  assert.deepEqual(minutes.series.map((s) => [s.key, s.points.map((p) => [p.t, p.events])]), [
    ['page_view', [[iso(at(10, 5)), 1], [iso(at(10, 20)), 1]]],
    ['purchase', [[iso(at(10, 5)), 1]]],
  ]);
  const campaigns = body(await get('301', `from=${iso(day0)}&to=${iso(new Date(day0.getTime() + GRAIN_MS.day))}&by=campaign`));
  // No rollup keeps campaign alone: campaign_type answers, summed over type.
  assert.equal(campaigns.rollup, 'campaign_type_day');
  assert.deepEqual(campaigns.series.map((s) => [s.key, s.points[0]?.events, s.points[0]?.revenue]), [
    ['', 3, '0.0000'],
    ['spring', 2, '25.0000'],
  ]);
});

test('a tenant with no data: 200 with an empty series', async () => {
  const r = body(await get('999999', `from=${iso(day0)}&to=${iso(new Date(day0.getTime() + GRAIN_MS.day))}&by=browser`));
  assert.deepEqual(r.series, []);
  assert.equal(r.tenantId, 999999);
});

test('every kind of bad parameter: 400 with a message naming it, and nothing reaches the database', async () => {
  const ok = `from=${iso(at(10, 0))}&to=${iso(at(12, 0))}`;
  const cases: [string, string, string][] = [
    ['abc', ok, 'tenantId'],
    ['0', ok, 'tenantId'],
    ["1' OR '1'='1", ok, 'tenantId'],
    ['301', `${ok}&grain=week`, 'grain'],
    ['301', `${ok}&by=country%3B%20DROP%20TABLE%20events`, 'by'],
    ['301', `${ok}&limit=5`, 'limit'],
    ['301', `${ok}&by=type&by=country`, 'by'],
    ['301', `to=${iso(at(12, 0))}`, 'from'],
    ['301', `from=${iso(at(10, 0))}`, 'to'],
    ['301', `from=last-tuesday&to=${iso(at(12, 0))}`, 'from'],
    ['301', `from=${iso(at(12, 0))}&to=${iso(at(10, 0))}`, 'to'],
    ['301', `from=${iso(at(10, 30))}&to=${iso(at(12, 0))}&grain=hour`, 'from'],
    ['301', `from=${iso(at(10, 0, 30))}&to=${iso(at(12, 0))}`, 'from'],
    ['301', `from=${iso(new Date(day0.getTime() - 20 * GRAIN_MS.day))}&to=${iso(day0)}&grain=minute`, 'from'],
    ['301', `from=${iso(new Date(day0.getTime() - 4 * GRAIN_MS.day))}&to=${iso(day0)}&grain=minute`, 'to'],
    ['301', `${ok}&measures=clicks`, 'measures'],
    ['301', `${ok}&by=country&measures=sessions`, 'measures'],
    ['301', `${ok}&by=country&type=purchase`, 'by'],
    ['301', `from=${iso(at(10, 5))}&to=${iso(at(10, 21))}&by=browser`, 'from'],
    ['All', ok, 'tenantId'],
  ];
  // The only statement a refused request may run is the read of the rollup catalog (analyst-defined
  // rollups live in the database, and a `by` may name one); nothing from the request reaches SQL.
  const dbCalls: string[] = [];
  const watchedPool = new Proxy(deps.pool, {
    get(target, prop, receiver) {
      if (prop === 'connect') dbCalls.push('connect');
      if (prop === 'query') {
        return (q: unknown, ...rest: unknown[]) => {
          const text = typeof q === 'string' ? q : String((q as { text?: unknown }).text);
          if (!/rollup_custom_specs/.test(text)) dbCalls.push(text);
          return (target.query as (...a: unknown[]) => unknown).call(target, q, ...rest);
        };
      }
      return Reflect.get(target, prop, receiver) as unknown;
    },
  });
  const watched = { ...deps, pool: watchedPool };
  for (const [tenant, qs, parameter] of cases) {
    const r = await get(tenant, qs, watched);
    assert.equal(r.status, 400, `${tenant} ${qs}: ${JSON.stringify(r.jsonBody)}`);
    const err = (r.jsonBody as { error: { parameter: string; message: string } }).error;
    assert.equal(err.parameter, parameter, qs);
    assert.ok(err.message.startsWith(`${parameter}: `), err.message);
  }
  assert.deepEqual(dbCalls, []);
  // The tables are intact after the hostile inputs.
  const { rows } = await f.s.pool.query<{ n: string }>(`SELECT count(*)::text AS n FROM "${f.s.schema}".events`);
  assert.equal(rows[0]?.n, '6');
});

test('rollup tables missing (schema not migrated): 503 naming the fix, not a crash', async () => {
  const r = await get('301', `from=${iso(at(10, 0))}&to=${iso(at(12, 0))}`, { ...deps, schema: 'no_such_schema_here' });
  assert.equal(r.status, 503);
  assert.match((r.jsonBody as { error: { message: string } }).error.message, /hubsink migrate/);
});

test('top=N by country: the N largest series by events, the rest summed into one "other" series; the total is unchanged', async () => {
  // 15 countries, C00 with 15 events down to C14 with 1, each event its own session and user.
  const rows = [];
  for (let c = 0; c < 15; c++) {
    for (let j = 0; j < 15 - c; j++) {
      rows.push(
        makeRow({
          eventId: uuidFor(`http/top/${c}/${j}`),
          tenantId: 303,
          occurredAt: at(10, j % 2),
          type: 'page_view',
          country: `C${String(c).padStart(2, '0')}`,
          sessionId: `s-${c}-${j}`,
          userId: `u-${c}-${j}`,
        }),
      );
    }
  }
  await insertEventRows(f.s.pool, f.s.schema, rows);
  await runUntilCaughtUp(f);
  const range = `from=${iso(at(10, 0))}&to=${iso(at(11, 0))}&grain=hour`;
  const r = body(await get('303', `${range}&by=country&top=3`));
  assert.equal(r.top, 3);
  assert.equal(r.seriesTotal, 15);
  assert.deepEqual(
    r.series.map((s) => [s.key, s.other ?? false, s.otherKeys ?? 0, s.points.map((p) => [p.events, p.sessions, p.users])]),
    [
      ['C00', false, 0, [[15, undefined, undefined]]],
      ['C01', false, 0, [[14, undefined, undefined]]],
      ['C02', false, 0, [[13, undefined, undefined]]],
      // 12 + 11 + ... + 1 events.
      [null, true, 12, [[78, undefined, undefined]]],
    ],
  );
  const whole = body(await get('303', `${range}&measures=sessions,users`));
  assert.deepEqual(whole.series[0]?.points.map((p) => [p.events, p.sessions, p.users]), [[120, 120, 120]]);
  // The default holds 10 series beside "other"; a request for all 15 fits under the maximum.
  assert.deepEqual(body(await get('303', `${range}&by=country`)).series.map((s) => s.key ?? 'other').slice(-2), ['C09', 'other']);
  assert.equal(body(await get('303', `${range}&by=country&top=15`)).series.some((s) => s.other), false);
});

test('a response never reads more than maxRows rollup rows: past it, a 400 that names `to`, not a partial answer', async () => {
  // Tenant 303's hour holds 15 country rows (one per value): a limit of 15 answers, 14 refuses.
  const range = `from=${iso(at(10, 0))}&to=${iso(at(11, 0))}&grain=hour&by=country`;
  const fits = await get('303', range, { ...deps, maxRows: 15 });
  assert.equal(fits.status, 200, JSON.stringify(fits.jsonBody));
  const refused = await get('303', range, { ...deps, maxRows: 14 });
  assert.equal(refused.status, 400);
  const err = (refused.jsonBody as { error: { parameter: string; message: string } }).error;
  assert.equal(err.parameter, 'to');
  assert.match(err.message, /more than 14 rows of rollup country_hour/);
});

test('the all-storefronts view: tenant `all` reads the tenant-0 rows, every storefront summed, from the same rollups', async () => {
  const tenantSum = async (qs: string) => {
    let n = 0;
    for (const t of ['301', '302', '303']) for (const s of body(await get(t, qs)).series) for (const p of s.points) n += p.events;
    return n;
  };
  const day = `from=${iso(day0)}&to=${iso(new Date(day0.getTime() + GRAIN_MS.day))}`;
  const all = body(await get('all', `${day}&measures=events,sessions`));
  assert.equal(all.tenantId, 'all');
  assert.equal(all.rollup, 'total_day');
  assert.equal(all.series[0]?.points[0]?.events, await tenantSum(day));
  // 3 sessions of 301 and 120 of 303 (302's event has none).
  assert.equal(all.series[0]?.points[0]?.sessions, 123);
  const minutes = `from=${iso(at(10, 0))}&to=${iso(at(10, 30))}&by=type`;
  const byType = body(await get('all', minutes));
  assert.equal(byType.rollup, 'type_minute');
  assert.deepEqual(byType.series.map((s) => [s.key, s.points.map((p) => [p.t, p.events])]), [
    ['page_view', [[iso(at(10, 0)), 64], [iso(at(10, 1)), 56], [iso(at(10, 5)), 2], [iso(at(10, 20)), 1]]],
    ['purchase', [[iso(at(10, 5)), 1]]],
  ]);
  // The storefront list never shows the all-storefronts rows as a storefront.
  const rows = await f.s.pool.query(`SELECT 1 FROM "${f.s.schema}".rollup_total_day WHERE tenant_id = 0`);
  assert.equal(rows.rowCount, 1);
});
