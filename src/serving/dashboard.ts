/**
 * Serves the dashboard page and its assets (built by `npm run build:dashboard` into
 * dist/dashboard/). The same handler answers the Function App's `GET /api/dashboard/{*path}` and the
 * local stack's `/`.
 *
 * Caching: asset names carry a content hash, so they are immutable for a year; the page itself is
 * `private, no-cache` (revalidated by ETag), so a deployment is picked up on the next load and no
 * shared cache keeps a page whose URL holds a key.
 *
 * Keys: behind the Functions host the page is opened as `…/api/dashboard?code=KEY`. The host checks
 * the key before this handler runs; the page sends it as `x-functions-key` on its API calls.
 * Its assets come from `…/api/dashboard-assets/<hashed name>`, a function without a key (a script
 * tag cannot send a header, and a key in an asset URL would land in shared caches with the
 * year-long asset): they are the same public code for everyone and hold no data.
 * `Referrer-Policy: no-referrer` keeps the page's URL out of Referer headers.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { HttpRequest, HttpResponseInit } from '@azure/functions';
import { callerScope, type AccessControl } from './access.js';
import { HTTP_STATUS, httpStatusOf, NO_STORE } from './httpErrors.js';
import { HubsinkError } from '../errors.js';

export interface DashboardManifest {
  /** Hashed file names under assets/. */
  js: string;
  css: string;
}

export interface DashboardAssets {
  html: string;
  manifest: DashboardManifest;
  files: ReadonlyMap<string, { body: string; type: string }>;
}

const TYPES: Record<string, string> = { '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8' };

/** The repository (or deployed app) root: the nearest folder up from this module with a package.json. */
function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('cannot find the package root (no package.json above the serving module)');
    dir = up;
  }
  return dir;
}

export function defaultAssetsDir(): string {
  return path.join(packageRoot(), 'dist', 'dashboard');
}

export async function loadDashboardAssets(dir: string = defaultAssetsDir()): Promise<DashboardAssets> {
  const manifest = JSON.parse(await readFile(path.join(dir, 'manifest.json'), 'utf8')) as DashboardManifest;
  const html = await readFile(path.join(dir, 'index.html'), 'utf8');
  const files = new Map<string, { body: string; type: string }>();
  for (const name of [manifest.js, manifest.css]) {
    files.set(name, { body: await readFile(path.join(dir, 'assets', name), 'utf8'), type: TYPES[path.extname(name)] ?? 'application/octet-stream' });
  }
  return { html, manifest, files };
}

const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** The route of the assets, beside `dashboard` under the same prefix (`api` by default). */
export const ASSETS_ROUTE = 'dashboard-assets';

/**
 * Pure: where the page's assets live, from the path it was requested at. `/api/dashboard`,
 * `/api/dashboard/` and `/api/dashboard/index.html` → `/api/dashboard-assets/` (another route
 * prefix is kept); any other path (the local stack's `/`) → `/api/dashboard-assets/`, where the
 * local stack serves them too.
 */
export function assetBase(pathname: string): string {
  const m = /^(.*)\/dashboard(?:\/.*)?$/.exec(pathname);
  return `${m ? m[1] : '/api'}/${ASSETS_ROUTE}/`;
}

/** Pure: the page with its asset URLs filled in; they never carry the key. */
export function renderIndex(a: DashboardAssets, base: string): string {
  const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
  return a.html.replaceAll('%APP_JS%', esc(`${base}${a.manifest.js}`)).replaceAll('%APP_CSS%', esc(`${base}${a.manifest.css}`));
}

export type DashboardHandler = (request: HttpRequest) => Promise<HttpResponseInit>;

function plain(status: number, body: string): HttpResponseInit {
  return { status, headers: { ...SECURITY_HEADERS, 'content-type': 'text/plain; charset=utf-8', ...NO_STORE }, body };
}

/**
 * `getAssets` is called per request but should cache (the default loads once); a missing build is
 * a 503 that says how to build, not a crash. `getAccess` (HUBSINK_ACCESS=entra): the page turns
 * away a caller not signed in (401) or granted no storefront (403). The page holds no numbers (the
 * API it calls checks each storefront), and the assets are public code for everyone.
 */
export function makeDashboardHandler(getAssets?: () => Promise<DashboardAssets>, getAccess?: () => Promise<AccessControl | undefined>): DashboardHandler {
  let loaded: Promise<DashboardAssets> | undefined;
  const assets =
    getAssets ??
    (() => {
      loaded ??= loadDashboardAssets().catch((err: unknown) => {
        loaded = undefined;
        throw err;
      });
      return loaded;
    });
  return async (request) => {
    let a: DashboardAssets;
    try {
      a = await assets();
    } catch {
      return { status: HTTP_STATUS.unavailable, headers: { 'content-type': 'text/plain; charset=utf-8', ...NO_STORE }, body: 'The dashboard is not built: run `npm run build` (or `npm run build:dashboard`).\n' };
    }
    const url = new URL(request.url);
    // `name`: the keyless assets route; `path`: the page's route (and its old assets/ URLs).
    const sub = request.params.name !== undefined ? `assets/${request.params.name}` : (request.params.path ?? '').replace(/^\/+/, '');
    const page = sub === '' || sub === 'index.html';
    // The assets are the same public code for everyone and hold no data; the page is checked.
    if (page && getAccess) {
      try {
        const access = await getAccess();
        if (access) await callerScope(request, access);
      } catch (err) {
        const status = httpStatusOf(err);
        return plain(status, err instanceof HubsinkError && status !== 500 ? `${err.message}\n` : 'The dashboard cannot check access now; try again later.\n');
      }
    }
    if (page) {
      const html = renderIndex(a, assetBase(url.pathname.replace(/\/index\.html$/, '')));
      const etag = `"${createHash('sha256').update(html).digest('base64url').slice(0, 27)}"`;
      const headers = { ...SECURITY_HEADERS, 'content-security-policy': CSP, 'cache-control': 'private, no-cache', etag, 'content-type': 'text/html; charset=utf-8' };
      if (request.headers.get('if-none-match') === etag) return { status: 304, headers };
      return { status: 200, headers, body: html };
    }
    const m = /^assets\/([A-Za-z0-9._-]+)$/.exec(sub);
    const file = m?.[1] ? a.files.get(m[1]) : undefined;
    if (!file) return { status: 404, headers: { ...SECURITY_HEADERS, 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' }, body: 'not found\n' };
    // Asked for with a key in the URL (a page from before the keyless route): no shared cache keeps it.
    const scope = url.searchParams.has('code') ? 'private' : 'public';
    return { status: 200, headers: { ...SECURITY_HEADERS, 'content-type': file.type, 'cache-control': `${scope}, max-age=31536000, immutable` }, body: file.body };
  };
}
