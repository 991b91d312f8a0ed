/**
 * A tiny node:http adapter that serves the Functions HTTP handlers locally, so the local stack
 * answers the same `GET /api/tenants/{tenantId}/metrics?...`, `/api/tenants`, `/api/freshness` and
 * `/api/dashboard/...` the Function App does (without its function key: it listens on loopback
 * only), and the dashboard at `/`.
 *
 * Loopback alone does not keep web pages out: a page on attacker.example can re-point its own name
 * at 127.0.0.1 (DNS rebinding) and read the answers as same-origin. Such a request still names the
 * attacker's host in `Host`, so only loopback names on this server's own port are answered.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import functions, { type HttpResponseInit } from '@azure/functions';
import { principalHeader, PRINCIPAL_HEADER, type Principal } from '../serving/access.js';
import type { DashboardHandler } from '../serving/dashboard.js';
import type { MetricsHandler } from '../serving/handler.js';

// A CommonJS package whose classes Node's ESM loader cannot see as named exports.
const { HttpRequest, InvocationContext } = functions;

const METRICS_ROUTE = /^\/api\/tenants\/([^/]+)\/metrics\/?$/;
const DASHBOARD_ROUTE = /^\/api\/dashboard(?:\/(.*))?$/;
const ASSETS_ROUTE = /^\/api\/dashboard-assets\/([^/]+)$/;

/** The Functions handlers the local server answers with; those left out are 404s. */
export interface LocalHandlers {
  metrics: MetricsHandler;
  tenants?: MetricsHandler;
  freshness?: MetricsHandler;
  rollups?: MetricsHandler;
  dashboard?: DashboardHandler;
}

export interface LocalHttp {
  port: number;
  url: string;
  close(): Promise<void>;
}

function send(res: ServerResponse, init: HttpResponseInit, headOnly = false): void {
  const headers: Record<string, string> = {};
  if (init.headers && typeof init.headers === 'object' && !Array.isArray(init.headers)) {
    for (const [k, v] of Object.entries(init.headers as Record<string, string>)) headers[k.toLowerCase()] = String(v);
  }
  let body: string | Buffer = '';
  if (init.jsonBody !== undefined) {
    body = `${JSON.stringify(init.jsonBody, null, 2)}\n`;
    headers['content-type'] ??= 'application/json; charset=utf-8';
  } else if (typeof init.body === 'string' || Buffer.isBuffer(init.body)) {
    body = init.body;
  }
  res.writeHead(init.status ?? 200, headers);
  res.end(headOnly ? undefined : body);
}

export type Route =
  | { kind: 'metrics'; tenantId: string }
  | { kind: 'tenants' }
  | { kind: 'freshness' }
  | { kind: 'rollups' }
  | { kind: 'dashboard'; path: string }
  | { kind: 'not-found' }
  | { kind: 'method' };

/** Pure: the route a request path names. `/` is the dashboard, as the banner says. */
export function matchRoute(method: string | undefined, pathname: string): Route {
  let route: Route = { kind: 'not-found' };
  const m = METRICS_ROUTE.exec(pathname);
  const d = DASHBOARD_ROUTE.exec(pathname);
  const a = ASSETS_ROUTE.exec(pathname);
  if (m) route = { kind: 'metrics', tenantId: decodeURIComponent(m[1] ?? '') };
  else if (/^\/api\/tenants\/?$/.test(pathname)) route = { kind: 'tenants' };
  else if (/^\/api\/freshness\/?$/.test(pathname)) route = { kind: 'freshness' };
  else if (/^\/api\/rollups\/?$/.test(pathname)) route = { kind: 'rollups' };
  else if (pathname === '/' || pathname === '/index.html') route = { kind: 'dashboard', path: '' };
  else if (d) route = { kind: 'dashboard', path: decodeURIComponent(d[1] ?? '') };
  else if (a) route = { kind: 'dashboard', path: `assets/${decodeURIComponent(a[1] ?? '')}` };
  if (route.kind === 'not-found') return route;
  if (method !== 'GET' && method !== 'HEAD') return { kind: 'method' };
  return route;
}

/**
 * Pure: may a request with this Host header be answered? Only `127.0.0.1`, `localhost` and `[::1]`
 * on `port` (or without a port when that is 80); anything else, or no Host, is refused.
 */
export function loopbackHost(host: string | undefined, port: number): boolean {
  const m = /^(127\.0\.0\.1|localhost|\[::1\])(?::(\d{1,5}))?$/i.exec(host ?? '');
  if (!m) return false;
  return m[2] === undefined ? port === 80 : Number(m[2]) === port;
}

/**
 * Pure: the request headers the handlers see. With `principal` undefined (key mode) as sent. In
 * entra mode the adapter plays App Service authentication: every X-MS-CLIENT-PRINCIPAL* header the
 * client sent is dropped, and the development principal's (if any) is put in its place.
 */
export function handlerHeaders(sent: Record<string, string | string[] | undefined>, principal: Principal | null | undefined): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(sent)) {
    if (typeof v !== 'string') continue;
    if (principal !== undefined && k.toLowerCase().startsWith(PRINCIPAL_HEADER)) continue;
    headers[k] = v;
  }
  if (principal) headers[PRINCIPAL_HEADER] = principalHeader(principal);
  return headers;
}

/**
 * Serves the handlers on loopback. A bare metrics handler is accepted as before. `principal`: see
 * handlerHeaders (undefined: key mode; null: entra mode with nobody signed in).
 */
export async function serveMetrics(
  handlers: MetricsHandler | LocalHandlers,
  opts: { port: number; host?: string; log?: (line: string) => void; principal?: Principal | null },
): Promise<LocalHttp> {
  const host = opts.host ?? '127.0.0.1';
  const log = opts.log ?? (() => undefined);
  const h: LocalHandlers = typeof handlers === 'function' ? { metrics: handlers } : handlers;
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const own = (server.address() as AddressInfo | null)?.port ?? 0;
    if (!loopbackHost(req.headers.host, own)) {
      return send(res, { status: 421, headers: { 'cache-control': 'no-store' }, jsonBody: { error: { message: `misdirected request: the local stack answers only Host 127.0.0.1:${own}, localhost:${own} or [::1]:${own}` } } });
    }
    const url = new URL(req.url ?? '/', `http://${host}`);
    let route: Route;
    try {
      route = matchRoute(req.method, url.pathname);
    } catch {
      route = { kind: 'not-found' };
    }
    const handler = route.kind === 'metrics' ? h.metrics : route.kind === 'tenants' ? h.tenants : route.kind === 'freshness' ? h.freshness : route.kind === 'rollups' ? h.rollups : undefined;
    if (route.kind === 'not-found' || (route.kind !== 'method' && route.kind !== 'dashboard' && !handler) || (route.kind === 'dashboard' && !h.dashboard)) {
      return send(res, { status: 404, jsonBody: { error: { message: 'not found: try GET /api/tenants/{tenantId}/metrics?from=&to=&grain=&by=' } } });
    }
    if (route.kind === 'method') return send(res, { status: 405, headers: { allow: 'GET' }, jsonBody: { error: { message: 'only GET' } } });
    const headers = handlerHeaders(req.headers, opts.principal);
    const params: Record<string, string> = route.kind === 'metrics' ? { tenantId: route.tenantId } : route.kind === 'dashboard' ? { path: route.path } : {};
    // No `query`: the request parses it from the URL, every repeat kept, as the handlers read it.
    const request = new HttpRequest({ method: 'GET', url: url.toString(), headers, params });
    const name = route.kind;
    const context = new InvocationContext({
      functionName: name,
      logHandler: (level, ...args) => log(`${name} ${level}: ${args.map((a) => (a instanceof Error ? a.message : String(a))).join(' ')}`),
    });
    const run = route.kind === 'dashboard' && h.dashboard ? h.dashboard(request) : handler ? handler(request, context) : Promise.resolve({ status: 404 });
    run.then(
      (init) => send(res, init, req.method === 'HEAD'),
      (err: unknown) => {
        log(`${name}: ${err instanceof Error ? err.message : String(err)}`);
        send(res, { status: 500, jsonBody: { error: { message: 'internal error (logged)' } } });
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `http://${host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
