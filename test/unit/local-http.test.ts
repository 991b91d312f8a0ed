/**
 * The local stack's HTTP server on a real loopback socket: it answers only requests whose Host is a
 * loopback name on its own port (a page that re-points its own name at 127.0.0.1, DNS rebinding,
 * still sends its name and gets 421). The dashboard it serves keeps a key out of its asset URLs
 * and out of shared caches.
 */
import { afterAll, beforeAll, describe, test } from 'vitest';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { loopbackHost, serveMetrics, type LocalHttp } from '../../src/local/localHttpServer.js';
import { makeDashboardHandler } from '../../src/serving/dashboard.js';
import { fakeDashboardAssets as assets } from '../support/dashboard.js';

/** GET with exactly this Host header (fetch would not let a test forge it). */
function get(port: number, path: string, host: string | undefined): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'GET', setHost: false, headers: host === undefined ? {} : { host } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('local stack Host check', () => {
  let http: LocalHttp;
  let calls = 0;
  beforeAll(async () => {
    const answer = () => {
      calls++;
      return Promise.resolve({ status: 200, jsonBody: { tenants: ['every storefront'] } });
    };
    http = await serveMetrics({ metrics: answer, tenants: answer, freshness: answer }, { port: 0 });
  });
  afterAll(() => http.close());

  test('loopback names on its own port are answered', async () => {
    for (const host of [`127.0.0.1:${http.port}`, `localhost:${http.port}`, `LOCALHOST:${http.port}`, `[::1]:${http.port}`]) {
      const r = await get(http.port, '/api/tenants?from=2026-01-01&to=2026-01-02', host);
      assert.equal(r.status, 200, host);
      assert.match(r.body, /every storefront/);
    }
  });

  test('a forged Host (DNS rebinding), another port, a look-alike or an empty Host gets 421 and reaches no handler', async () => {
    const before = calls;
    const forged = [
      `attacker.example:${http.port}`,
      'attacker.example',
      `127.0.0.1:${http.port + 1}`,
      '127.0.0.1',
      `localhost.attacker.example:${http.port}`,
      `127.0.0.1.nip.io:${http.port}`,
      `127.0.0.1:${http.port}@attacker.example`,
      '',
    ];
    for (const host of forged) {
      for (const p of ['/api/tenants?from=2026-01-01&to=2026-01-02', '/api/freshness', '/api/tenants/1/metrics?from=2026-01-01&to=2026-01-02', '/']) {
        const r = await get(http.port, p, host);
        assert.equal(r.status, 421, `${String(host)} ${p}`);
        assert.doesNotMatch(r.body, /every storefront/);
        assert.match(r.body, /answers only Host 127\.0\.0\.1:\d+, localhost:\d+ or \[::1\]:\d+/);
        assert.equal(r.headers['cache-control'], 'no-store');
      }
    }
    // Without any Host, Node itself refuses an HTTP/1.1 request.
    assert.equal((await get(http.port, '/api/freshness', undefined)).status, 400);
    assert.equal(calls, before, 'no handler ran');
  });

  test('loopbackHost (pure): port 80 may be left out, nothing else', () => {
    assert.equal(loopbackHost('localhost', 80), true);
    assert.equal(loopbackHost('localhost:80', 80), true);
    assert.equal(loopbackHost('localhost', 8080), false);
    assert.equal(loopbackHost('[::1]:7071', 7071), true);
    assert.equal(loopbackHost('::1:7071', 7071), false);
    assert.equal(loopbackHost('127.0.0.2:7071', 7071), false);
    assert.equal(loopbackHost(undefined, 80), false);
  });
});

describe('local stack dashboard caching', () => {
  let http: LocalHttp;
  beforeAll(async () => {
    http = await serveMetrics({ metrics: () => Promise.resolve({ status: 200 }), dashboard: makeDashboardHandler(() => Promise.resolve(assets)) }, { port: 0 });
  });
  afterAll(() => http.close());

  test('the page opened with a key is private and its asset URLs carry no key; the assets they name are served, public and immutable', async () => {
    const host = `127.0.0.1:${http.port}`;
    for (const p of ['/?code=SECRETKEY', '/api/dashboard?code=SECRETKEY', '/api/dashboard/index.html?code=SECRETKEY']) {
      const page = await get(http.port, p, host);
      assert.equal(page.status, 200, p);
      assert.equal(page.headers['cache-control'], 'private, no-cache', p);
      assert.doesNotMatch(page.body, /SECRETKEY|code=/, p);
      const urls = [...page.body.matchAll(/(?:href|src)="([^"]+)"/g)].map((m) => m[1] ?? '');
      assert.deepEqual(urls, ['/api/dashboard-assets/app-DEF456.css', '/api/dashboard-assets/app-ABC123.js'], p);
      for (const u of urls) {
        const a = await get(http.port, u, host);
        assert.equal(a.status, 200, u);
        assert.equal(a.headers['cache-control'], 'public, max-age=31536000, immutable', u);
      }
    }
    assert.equal((await get(http.port, '/api/dashboard-assets/app-OLD.js', host)).status, 404);
    assert.equal((await get(http.port, '/api/dashboard-assets/app-ABC123.js?code=K', host)).headers['cache-control'], 'private, max-age=31536000, immutable');
  });
});
