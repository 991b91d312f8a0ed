/**
 * HUBSINK_ACCESS=entra against real PostgreSQL with real rollups: the metrics, tenants, freshness
 * and dashboard handlers as the Function App builds them (grants read from access_grants on every
 * request), called with the X-MS-CLIENT-PRINCIPAL header App Service would send. Grants are made
 * and revoked with the `hubsink access` CLI while the handlers keep running.
 */
import { afterAll, beforeAll, test } from 'vitest';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import functions, { type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { insertEventRows } from '../../src/db/events.js';
import { addGrants } from '../../src/db/grants.js';
import { ensureTenantsSql } from '../../src/db/tenants.js';
import { GRAIN_MS, bucketStart } from '../../src/rollups/definitions.js';
import { databaseAccess, principalHeader, type AccessControl, type Principal } from '../../src/serving/access.js';
import { makeDashboardHandler, type DashboardAssets } from '../../src/serving/dashboard.js';
import { makeFreshnessHandler, type FreshnessResponse } from '../../src/serving/freshnessHandler.js';
import { makeMetricsHandler } from '../../src/serving/handler.js';
import type { MetricsResponse } from '../../src/serving/query.js';
import { makeTenantsHandler, type TenantsResponse } from '../../src/serving/tenantsHandler.js';
import { countingPool } from '../support/countingPool.js';
import { makeRow } from '../support/rows.js';
import { testDatabaseUrl } from '../support/services.js';
import { rollupSchema, runUntilCaughtUp, uuidFor, type RollupFixture } from '../support/rollups-fixture.js';

const { HttpRequest, InvocationContext: Context } = functions;
const BIN = fileURLToPath(new URL('../../bin/hubsink.js', import.meta.url));
const retentionDays = { minute: 7, hour: 90, day: 3650 };

const ANN = '11111111-2222-4333-8444-555555555555';
const BERLIN = 'aaaaaaaa-0000-4000-8000-000000000001';
const CENTRAL = 'aaaaaaaa-0000-4000-8000-000000000002';
const OTHER_GROUP = 'aaaaaaaa-0000-4000-8000-000000000003';

let f: RollupFixture;
let on: AccessControl;
let off: AccessControl;
const day0 = new Date(bucketStart(new Date(), 'day').getTime() - GRAIN_MS.day);
const at = (h: number, m: number) => new Date(day0.getTime() + h * GRAIN_MS.hour + m * 60_000);
const range = `from=${day0.toISOString()}&to=${new Date(day0.getTime() + GRAIN_MS.day).toISOString()}`;

const logged: string[] = [];
function context(): InvocationContext {
  return new Context({ invocationId: 't', functionName: 'access', logHandler: (level, ...a) => logged.push(`${level} ${a.map(String).join(' ')}`) });
}
function req(url: string, who: Principal | string | null, params: Record<string, string> = {}) {
  const headers: Record<string, string> = {};
  if (who !== null) headers['x-ms-client-principal'] = typeof who === 'string' ? who : principalHeader(who);
  return new HttpRequest({ method: 'GET', url: `http://127.0.0.1${url}`, params, headers });
}

function cli(args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH ?? '', DATABASE_URL: testDatabaseUrl(), HUBSINK_SCHEMA: f.s.schema }, timeout: 120_000 }, (err, _o, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stderr }),
    );
  });
}

const handlers = (access: AccessControl) => ({
  metrics: makeMetricsHandler(() => Promise.resolve({ pool: f.s.pool, schema: f.s.schema, caps: f.caps, retentionDays, access })),
  tenants: makeTenantsHandler(() => Promise.resolve({ pool: f.s.pool, schema: f.s.schema, retentionDays, access })),
  freshness: makeFreshnessHandler(() => Promise.resolve({ pool: f.s.pool, schema: f.s.schema, access }), { cacheMs: 0 }),
});

async function metrics(h: ReturnType<typeof handlers>, tenant: number, who: Principal | string | null): Promise<HttpResponseInit> {
  return h.metrics(req(`/api/tenants/${tenant}/metrics?${range}`, who, { tenantId: String(tenant) }), context());
}
async function tenantIds(h: ReturnType<typeof handlers>, who: Principal | null): Promise<number[]> {
  const r = await h.tenants(req(`/api/tenants?${range}`, who), context());
  assert.equal(r.status, 200, JSON.stringify(r.jsonBody));
  return (r.jsonBody as TenantsResponse).tenants.map((t) => t.tenantId);
}
/** A refusal carries an error and nothing else: no series, no tenants, no counts. */
function refusedWith(r: HttpResponseInit, status: number, message: RegExp): void {
  assert.equal(r.status, status, JSON.stringify(r.jsonBody));
  assert.deepEqual(Object.keys(r.jsonBody as object), ['error']);
  assert.match((r.jsonBody as { error: { message: string } }).error.message, message);
  assert.equal((r.headers as Record<string, string>)['cache-control'], 'no-store');
}

beforeAll(async () => {
  f = await rollupSchema('acca_');
  let i = 0;
  const ev = (tenantId: number, minute: number) => makeRow({ eventId: uuidFor(`acc/${i++}`), tenantId, occurredAt: at(9, minute), type: 'page_view' });
  await insertEventRows(f.s.pool, f.s.schema, [...Array.from({ length: 5 }, (_, k) => ev(601, k)), ...Array.from({ length: 3 }, (_, k) => ev(602, k)), ev(603, 0)]);
  await f.s.pool.query(ensureTenantsSql(f.s.schema, [601, 602, 603]));
  await runUntilCaughtUp(f);
  on = databaseAccess(f.s.pool, f.s.schema, true);
  off = databaseAccess(f.s.pool, f.s.schema, false);
});

afterAll(async () => {
  await f?.s.drop();
});

test('a forged header while the platform\'s authentication is off: 401 everywhere, whatever the grants', async () => {
  await addGrants(f.s.pool, f.s.schema, 'group', CENTRAL, [null], 'central team');
  const h = handlers(off);
  const forged: Principal = { userId: ANN, groups: [CENTRAL] };
  refusedWith(await metrics(h, 601, forged), 401, /sign in with Microsoft Entra ID: the platform's authentication is off \(WEBSITE_AUTH_ENABLED/);
  refusedWith(await h.tenants(req(`/api/tenants?${range}`, forged), context()), 401, /authentication is off/);
  refusedWith(await h.freshness(req('/api/freshness', forged), context()), 401, /authentication is off/);
  // The same principal, once the platform vouches for it, reads everything: the grant was real.
  const trusted = handlers(on);
  assert.equal((await metrics(trusted, 601, forged)).status, 200);
  await f.s.pool.query(`DELETE FROM "${f.s.schema}".access_grants`);
});

test('no principal: 401; a principal in no group, or in groups granted nothing: 403 with no numbers', async () => {
  const h = handlers(on);
  refusedWith(await metrics(h, 601, null), 401, /no signed-in caller/);
  refusedWith(await h.tenants(req(`/api/tenants?${range}`, null), context()), 401, /no signed-in caller/);
  refusedWith(await h.freshness(req('/api/freshness', null), context()), 401, /no signed-in caller/);
  // A malformed header is no principal either; it is not a 500.
  refusedWith(await metrics(h, 601, 'bm90IGpzb24='), 401, /not base64 JSON/);
  // Authentication comes before validation: a bad range says nothing to a stranger.
  refusedWith(await h.metrics(req('/api/tenants/601/metrics?from=x', null, { tenantId: '601' }), context()), 401, /no signed-in caller/);

  for (const who of [{ userId: ANN, groups: [] }, { userId: ANN, groups: [OTHER_GROUP] }] satisfies Principal[]) {
    refusedWith(await metrics(h, 601, who), 403, /no storefront is granted to you .*hubsink access grant/);
    refusedWith(await h.tenants(req(`/api/tenants?${range}`, who), context()), 403, /no storefront is granted/);
    refusedWith(await h.freshness(req('/api/freshness', who), context()), 403, /no storefront is granted/);
  }
  assert.ok(logged.some((l) => /^warning metrics: 403: no storefront is granted/.test(l)), logged.join('\n'));
});

test('a group granted one storefront: its numbers; another storefront 403 with no numbers; the list holds only it', async () => {
  assert.equal((await cli(['access', 'grant', '--group', BERLIN, '--tenant', '602'])).code, 0);
  const h = handlers(on);
  const ann: Principal = { userId: ANN, groups: [OTHER_GROUP, BERLIN] };
  const mine = await metrics(h, 602, ann);
  assert.equal(mine.status, 200);
  assert.equal((mine.jsonBody as MetricsResponse).series[0]?.points.reduce((a, p) => a + p.events, 0), 3);
  for (const t of [601, 603, 9_999]) refusedWith(await metrics(h, t, ann), 403, new RegExp(`storefront ${t} is not granted to you`));
  // Refused before anything is read: the metrics pool sees no statement, not even the catalog a
  // `by` naming no known dimension would send it to (and the answer is 403, not that 400).
  const counted = countingPool({ connectionString: testDatabaseUrl(), max: 2 });
  try {
    const metricsOnCounted = makeMetricsHandler(() => Promise.resolve({ pool: counted.pool, schema: f.s.schema, caps: f.caps, retentionDays, access: on }));
    const asked = req(`/api/tenants/601/metrics?${range}&by=no_such_dimension`, ann, { tenantId: '601' });
    refusedWith(await metricsOnCounted(asked, context()), 403, /storefront 601 is not granted to you/);
    assert.deepEqual(counted.statements, []);
    // The same handler answers the granted storefront through that pool.
    assert.equal((await metricsOnCounted(req(`/api/tenants/602/metrics?${range}`, ann, { tenantId: '602' }), context())).status, 200);
    assert.ok(counted.statements.length > 0);
  } finally {
    await counted.pool.end();
  }
  // The all-storefronts view sums every storefront: not for a caller granted some.
  refusedWith(await h.metrics(req(`/api/tenants/all/metrics?${range}`, ann, { tenantId: 'all' }), context()), 403, /sums every storefront: it needs the all-storefronts grant/);
  // Validation still applies to what a granted caller asks.
  assert.equal((await h.metrics(req('/api/tenants/602/metrics?from=x', ann, { tenantId: '602' }), context())).status, 400);

  const list = await h.tenants(req(`/api/tenants?${range}`, ann), context());
  assert.equal(list.status, 200);
  assert.deepEqual((list.jsonBody as TenantsResponse).tenants, [{ tenantId: 602, name: null, events: 3 }]);
  assert.equal((list.jsonBody as TenantsResponse).truncated, false);
  assert.equal((list.jsonBody as TenantsResponse).allStorefronts, false);
  // Quiet granted storefronts are listed too, and still no other.
  assert.equal((await cli(['access', 'grant', '--user', ANN, '--tenant', '604'])).code, 0);
  await f.s.pool.query(ensureTenantsSql(f.s.schema, [604, 605]));
  assert.deepEqual(await tenantIds(h, ann), [602, 604]);

  // Freshness: run times and lag, not the volume of every storefront.
  const fresh = await h.freshness(req('/api/freshness', ann), context());
  assert.equal(fresh.status, 200);
  const body = fresh.jsonBody as FreshnessResponse;
  assert.ok(body.rollups.length > 0 && body.rollups.every((r) => r.pendingEvents === null && r.lastRunAt !== null));
});

test('the all-storefronts grant reads any storefront and lists every one; a revoke counts at the next request, without a restart', async () => {
  const h = handlers(on);
  const lead: Principal = { userId: null, groups: [CENTRAL] };
  refusedWith(await metrics(h, 601, lead), 403, /no storefront is granted/);
  assert.equal((await cli(['access', 'grant', '--group', CENTRAL, '--all-tenants'])).code, 0);
  for (const t of [601, 602, 603, 123_456]) assert.equal((await metrics(h, t, lead)).status, 200, String(t));
  const everyStorefront = await h.metrics(req(`/api/tenants/all/metrics?${range}`, lead, { tenantId: 'all' }), context());
  assert.equal(everyStorefront.status, 200, JSON.stringify(everyStorefront.jsonBody));
  assert.deepEqual(await tenantIds(h, lead), [601, 602, 603, 604, 605]);
  assert.equal(((await h.tenants(req(`/api/tenants?${range}`, lead), context())).jsonBody as TenantsResponse).allStorefronts, true);
  const fresh = (await h.freshness(req('/api/freshness', lead), context())).jsonBody as FreshnessResponse;
  assert.ok(fresh.rollups.every((r) => r.pendingEvents === 0), JSON.stringify(fresh));

  // Revoked while the same handlers keep running (no cache to wait out).
  assert.equal((await cli(['access', 'revoke', '--group', CENTRAL, '--all-tenants'])).code, 0);
  refusedWith(await metrics(h, 601, lead), 403, /no storefront is granted/);
  refusedWith(await h.tenants(req(`/api/tenants?${range}`, lead), context()), 403, /no storefront is granted/);
  const ann: Principal = { userId: ANN, groups: [BERLIN] };
  assert.equal((await metrics(h, 602, ann)).status, 200);
  assert.equal((await cli(['access', 'revoke', '--group', BERLIN, '--tenant', '602'])).code, 0);
  refusedWith(await metrics(h, 602, ann), 403, /storefront 602 is not granted/);
  // Ann's own user grant (604) is untouched.
  assert.deepEqual(await tenantIds(h, ann), [604]);
});

test('the dashboard page: 401 without a principal, 403 with no grant, the page for a granted caller; assets public; key mode unchanged', async () => {
  const assets: DashboardAssets = { html: '<script src="%APP_JS%"></script>', manifest: { js: 'app-1.js', css: 'app-1.css' }, files: new Map([['app-1.js', { body: 'x', type: 'text/javascript' }]]) };
  const page = (access?: AccessControl) => makeDashboardHandler(() => Promise.resolve(assets), access ? () => Promise.resolve(access) : undefined);
  const get = (h: ReturnType<typeof page>, path: string, who: Principal | null) => h(req(`/api/dashboard/${path}`, who, { path }));
  const r401 = await get(page(on), '', null);
  assert.equal(r401.status, 401);
  assert.match(r401.body as string, /sign in with Microsoft Entra ID/);
  assert.equal((await get(page(off), '', { userId: ANN, groups: [] })).status, 401);
  const r403 = await get(page(on), '', { userId: null, groups: [OTHER_GROUP] });
  assert.equal(r403.status, 403);
  assert.match(r403.body as string, /no storefront is granted/);
  assert.equal((await get(page(on), '', { userId: ANN, groups: [] })).status, 200, 'Ann still holds 604');
  // The assets are the same public code for everyone, with no data: not gated.
  assert.equal((await get(page(on), 'assets/app-1.js', null)).status, 200);
  assert.equal((await get(page(), '', null)).status, 200);
});
