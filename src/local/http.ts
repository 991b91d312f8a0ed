/**
 * A tiny node:http adapter that serves the Functions metrics handler locally, so the local stack
 * answers the same `GET /api/tenants/{tenantId}/metrics?...` the Function App does (without its
 * function key: it listens on loopback only).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import functions, { type HttpResponseInit } from '@azure/functions';
import type { MetricsHandler } from '../serving/handler.js';

// A CommonJS package whose classes Node's ESM loader cannot see as named exports.
const { HttpRequest, InvocationContext } = functions;

const METRICS_ROUTE = /^\/api\/tenants\/([^/]+)\/metrics\/?$/;

export interface LocalHttp {
  port: number;
  url: string;
  close(): Promise<void>;
}

function send(res: ServerResponse, init: HttpResponseInit): void {
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
  res.end(body);
}

/** Pure: the route a request path names. */
export function matchRoute(method: string | undefined, pathname: string): { kind: 'metrics'; tenantId: string } | { kind: 'not-found' } | { kind: 'method' } {
  const m = METRICS_ROUTE.exec(pathname);
  if (!m) return { kind: 'not-found' };
  if (method !== 'GET' && method !== 'HEAD') return { kind: 'method' };
  return { kind: 'metrics', tenantId: decodeURIComponent(m[1] ?? '') };
}

export async function serveMetrics(handler: MetricsHandler, opts: { port: number; host?: string; log?: (line: string) => void }): Promise<LocalHttp> {
  const host = opts.host ?? '127.0.0.1';
  const log = opts.log ?? (() => undefined);
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', `http://${host}`);
    let route: ReturnType<typeof matchRoute>;
    try {
      route = matchRoute(req.method, url.pathname);
    } catch {
      route = { kind: 'not-found' };
    }
    if (route.kind === 'not-found') return send(res, { status: 404, jsonBody: { error: { message: 'not found: try GET /api/tenants/{tenantId}/metrics?from=&to=&grain=&by=' } } });
    if (route.kind === 'method') return send(res, { status: 405, headers: { allow: 'GET' }, jsonBody: { error: { message: 'only GET' } } });
    const query: Record<string, string> = {};
    for (const [k, v] of url.searchParams) query[k] = v;
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers[k] = v;
    const request = new HttpRequest({ method: 'GET', url: url.toString(), headers, query, params: { tenantId: route.tenantId } });
    const context = new InvocationContext({
      functionName: 'metrics',
      logHandler: (level, ...args) => log(`metrics ${level}: ${args.map((a) => (a instanceof Error ? a.message : String(a))).join(' ')}`),
    });
    handler(request, context).then(
      (init) => send(res, init),
      (err: unknown) => {
        log(`metrics: ${err instanceof Error ? err.message : String(err)}`);
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
