/**
 * The dashboard's server side without a database: the tenants endpoint's validation and shape,
 * the metrics API's `type` filter, and how the page and its assets are served (caching, keys,
 * security headers, a missing build).
 */
import { describe, test } from 'vitest';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import functions from '@azure/functions';
import { assetBase, loadDashboardAssets, makeDashboardHandler, renderIndex } from '../../src/serving/dashboard.js';
import { fakeDashboardAssets as assets } from '../support/dashboard.js';
import { parseMetricsParams } from '../../src/serving/params.js';
import { metricsSql } from '../../src/serving/query.js';
import { activeTenantsSql, knownTenantsSql, MAX_TENANTS_LIMIT, parseTenantsParams, shapeTenants } from '../../src/serving/tenantsHandler.js';
import { sketchProfile } from '../../src/rollups/sketches.js';

const { HttpRequest } = functions;
const now = new Date('2026-03-15T12:34:56Z');
const retentionDays = { minute: 7, hour: 90, day: 3650 };

describe('GET /api/tenants parameters', () => {
  const parse = (qs: string) => parseTenantsParams(new URLSearchParams(qs), { now, retentionDays });
  test('a range is required and the grain follows it like grain=auto', () => {
    const h = parse('from=2026-03-15T10:00:00Z&to=2026-03-15T12:00:00Z');
    assert.ok(h.ok);
    assert.deepEqual(h.ok && [h.query.grain, h.query.limit], ['hour', 200]);
    const m = parse('from=2026-03-15T10:05:00Z&to=2026-03-15T12:00:00Z&limit=5');
    assert.deepEqual(m.ok && [m.query.grain, m.query.limit], ['minute', 5]);
    const d = parse('from=2026-03-01&to=2026-03-15');
    assert.deepEqual(d.ok && d.query.grain, 'day');
  });
  const bad: [string, string, RegExp][] = [
    ['', 'from', /required/],
    ['from=2026-03-15T10:00:00Z', 'to', /required/],
    ['from=yesterday&to=2026-03-15', 'from', /ISO-8601/],
    ['from=2026-03-15&to=2026-03-14', 'to', /after from/],
    ['from=2026-03-15T10:00:30Z&to=2026-03-15T11:00:00Z', 'from', /whole minute/],
    ['from=2026-03-01T10:01:00Z&to=2026-03-01T11:00:00Z', 'from', /minute rollups are kept for 7 days/],
    ['from=2016-04-01&to=2026-06-01', 'to', /range too large/],
    ['from=2026-03-15&to=2026-03-16&limit=0', 'limit', /1 to 1000/],
    [`from=2026-03-15&to=2026-03-16&limit=${MAX_TENANTS_LIMIT + 1}`, 'limit', /1 to 1000/],
    ['from=2026-03-15&to=2026-03-16&limit=-1', 'limit', /1 to 1000/],
    ['from=2026-03-15&to=2026-03-16&limit=1e3', 'limit', /1 to 1000/],
    ['from=2026-03-15&to=2026-03-16&limit=5&limit=6', 'limit', /more than once/],
    ['from=2026-03-15&to=2026-03-16&tenant=1', 'tenant', /unknown parameter/],
  ];
  for (const [qs, parameter, message] of bad) {
    test(`refused: ${qs || '(nothing)'}`, () => {
      const r = parse(qs);
      assert.equal(r.ok, false);
      if (r.ok) return;
      assert.equal(r.error.parameter, parameter);
      assert.match(r.error.message, message);
    });
  }
  test('statements: request values are bind parameters, both bounded by the limit', () => {
    const r = parse('from=2026-03-15T10:00:00Z&to=2026-03-15T12:00:00Z&limit=7');
    assert.ok(r.ok);
    if (!r.ok) return;
    const a = activeTenantsSql(r.query, 'shop');
    assert.match(a.text, /FROM "shop"\."rollup_total_hour"[\s\S]*LIMIT \$3/);
    assert.deepEqual(a.values, [r.query.from, r.query.to, 7]);
    const k = knownTenantsSql('shop', ['3', '1'], 7);
    assert.deepEqual(k.values, [['3', '1'], 8]);
    assert.doesNotMatch(a.text + k.text, /2026|\b7\b/);
  });
  test('shape: active first by events, then quiet registered ones by id, cut at the limit', () => {
    const q = { from: new Date('2026-03-15T10:00:00Z'), to: new Date('2026-03-15T12:00:00Z'), grain: 'hour' as const, limit: 3 };
    const out = shapeTenants(q, null, [{ tenant_id: '5', events: '90' }, { tenant_id: '2', events: '10' }], [
      { tenant_id: '2', name: 'Two' },
      { tenant_id: '5', name: null },
      { tenant_id: '1', name: 'One' },
      { tenant_id: '3', name: null },
    ]);
    assert.deepEqual(out.tenants, [
      { tenantId: 5, name: null, events: 90 },
      { tenantId: 2, name: 'Two', events: 10 },
      { tenantId: 1, name: 'One', events: 0 },
    ]);
    assert.equal(out.truncated, true);
    assert.equal(shapeTenants({ ...q, limit: 10 }, null, [], [{ tenant_id: '1', name: null }]).truncated, false);
  });
});

describe('metrics type filter', () => {
  const parse = (qs: string) => parseMetricsParams('9', new URLSearchParams(qs), { now, retentionDays });
  test('type narrows the statement with a bind parameter; without it nothing changes', () => {
    const r = parse('from=2026-03-15T10:00:00Z&to=2026-03-15T12:00:00Z&by=campaign&type=ad_click%27%3B--');
    assert.ok(r.ok);
    if (!r.ok) return;
    assert.equal(r.query.type, "ad_click';--");
    const sql = metricsSql(r.query, sketchProfile('kmv'), 'shop');
    assert.match(sql.text, /AND "type" = \$6/);
    assert.equal(sql.values[5], "ad_click';--");
    assert.doesNotMatch(sql.text, /ad_click/);
    const plain = parse('from=2026-03-15T10:00:00Z&to=2026-03-15T12:00:00Z&by=campaign');
    assert.ok(plain.ok && plain.query.type === undefined);
    if (plain.ok) assert.doesNotMatch(metricsSql(plain.query, sketchProfile('kmv'), 'shop').text, /type = /);
  });
  test('an empty, too long or repeated type is refused', () => {
    for (const qs of ['type=', `type=${'x'.repeat(65)}`, 'type=a&type=b']) {
      const r = parse(`from=2026-03-15T10:00:00Z&to=2026-03-15T12:00:00Z&${qs}`);
      assert.equal(r.ok, false, qs);
      if (!r.ok) assert.equal(r.error.parameter, 'type');
    }
  });
});

describe('serving the page', () => {
  const get = (url: string, p: string, headers: Record<string, string> = {}) =>
    makeDashboardHandler(() => Promise.resolve(assets))(new HttpRequest({ method: 'GET', url, params: { path: p }, headers }));
  const header = (r: { headers?: unknown }, name: string): string | undefined => (r.headers as Record<string, string> | undefined)?.[name];

  test('asset URLs are absolute under …/dashboard-assets/, beside the page, wherever it was opened', () => {
    assert.equal(assetBase('/api/dashboard'), '/api/dashboard-assets/');
    assert.equal(assetBase('/api/dashboard/'), '/api/dashboard-assets/');
    assert.equal(assetBase('/custom/prefix/dashboard/index.html'), '/custom/prefix/dashboard-assets/');
    assert.equal(assetBase('/dashboard'), '/dashboard-assets/', 'an empty route prefix');
    assert.equal(assetBase('/'), '/api/dashboard-assets/');
  });
  test('the page: private, no-cache with an ETag (304 when unchanged), CSP, no referrer; the key is on no asset URL', async () => {
    const r = await get('https://app.example/api/dashboard?code=k%22ey%3C', '');
    assert.equal(r.status, 200);
    assert.equal(header(r, 'cache-control'), 'private, no-cache');
    assert.match(header(r, 'content-security-policy') ?? '', /script-src 'self'/);
    assert.doesNotMatch(header(r, 'content-security-policy') ?? '', /unsafe/);
    assert.equal(header(r, 'referrer-policy'), 'no-referrer');
    assert.equal(r.body, '<link href="/api/dashboard-assets/app-DEF456.css"><script src="/api/dashboard-assets/app-ABC123.js"></script>');
    assert.doesNotMatch(String(r.body), /code|k%22ey|k"ey/);
    const etag = header(r, 'etag') ?? '';
    assert.ok(etag.length > 10);
    assert.equal((await get('https://app.example/api/dashboard?code=k%22ey%3C', '', { 'if-none-match': etag })).status, 304);
    assert.equal(header(await get('https://app.example/api/dashboard?code=k%22ey%3C', '', { 'if-none-match': etag }), 'cache-control'), 'private, no-cache');
    assert.equal(renderIndex(assets, '/b/'), '<link href="/b/app-DEF456.css"><script src="/b/app-ABC123.js"></script>');
  });
  test('hashed assets are immutable for a year, public without a key in the URL and private with one; anything else is a 404', async () => {
    const asset = (url: string, params: Record<string, string>) => makeDashboardHandler(() => Promise.resolve(assets))(new HttpRequest({ method: 'GET', url, params }));
    const js = await asset('http://127.0.0.1/api/dashboard-assets/app-ABC123.js', { name: 'app-ABC123.js' });
    assert.equal(js.status, 200);
    assert.equal(js.body, 'console.log(1)');
    assert.equal(header(js, 'cache-control'), 'public, max-age=31536000, immutable');
    assert.equal(header(js, 'content-type'), 'text/javascript; charset=utf-8');
    assert.equal(header(js, 'x-content-type-options'), 'nosniff');
    // The URLs of pages from before the keyless route: served, but kept out of shared caches.
    const keyed = await get('http://127.0.0.1/api/dashboard/assets/app-DEF456.css?code=KEY', 'assets/app-DEF456.css');
    assert.equal(keyed.status, 200);
    assert.equal(header(keyed, 'cache-control'), 'private, max-age=31536000, immutable');
    assert.equal(header(await asset('http://127.0.0.1/api/dashboard-assets/app-ABC123.js?code=KEY', { name: 'app-ABC123.js' }), 'cache-control'), 'private, max-age=31536000, immutable');
    for (const p of ['assets/app-OLD.js', 'assets/../manifest.json', 'manifest.json', 'assets/', '../../package.json']) {
      const r = await get(`http://127.0.0.1/api/dashboard/${p}`, p);
      assert.equal(r.status, 404, p);
      assert.equal(header(r, 'cache-control'), 'no-store', p);
    }
    for (const n of ['app-OLD.js', '..', 'manifest.json', '']) assert.equal((await asset(`http://127.0.0.1/api/dashboard-assets/${n}`, { name: n })).status, 404, n);
  });
  test('a missing build is a 503 that says how to build', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'hubsink-nodash-'));
    try {
      const handler = makeDashboardHandler(() => loadDashboardAssets(dir));
      const r = await handler(new HttpRequest({ method: 'GET', url: 'http://127.0.0.1/', params: {} }));
      assert.equal(r.status, 503);
      assert.match(typeof r.body === 'string' ? r.body : '', /npm run build/);
      // Once built, the same folder loads.
      await mkdir(path.join(dir, 'assets'));
      await writeFile(path.join(dir, 'manifest.json'), JSON.stringify({ js: 'a-1.js', css: 'a-1.css' }));
      await writeFile(path.join(dir, 'index.html'), '<script src="%APP_JS%"></script>');
      await writeFile(path.join(dir, 'assets', 'a-1.js'), 'x');
      await writeFile(path.join(dir, 'assets', 'a-1.css'), 'y');
      const ok = await handler(new HttpRequest({ method: 'GET', url: 'http://127.0.0.1/', params: {} }));
      assert.equal(ok.status, 200);
      assert.equal(ok.body, '<script src="/api/dashboard-assets/a-1.js"></script>');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
