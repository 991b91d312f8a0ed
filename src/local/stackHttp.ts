/**
 * The local stack's HTTP server: the dashboard and the metrics API, the handlers the Function App
 * registers (src/app/serving.ts), on the serving pool.
 */
import type { AccessMode, HubsinkConfig } from '../config.js';
import { makeServingHandlers } from '../app/serving.js';
import type { AppServices } from '../app/services.js';
import type { Logger } from '../operator/log.js';
import { databaseAccess, type Principal } from '../serving/access.js';
import { serveMetrics } from './localHttpServer.js';
import { preferredOrFreePort } from './ports.js';
import type { StopList } from './stackStops.js';

export interface StackHttp {
  url: string;
  access: { mode: AccessMode; principal: Principal | null };
}

export async function startStackHttp(
  services: Pick<AppServices, 'config' | 'caps' | 'servingPool'>,
  opts: { port: number; access?: { mode: AccessMode; principal?: Principal | null }; log: Logger },
  stops: StopList,
): Promise<StackHttp> {
  const config: HubsinkConfig = services.config;
  // Dashboard queries on their own small pool, as in the Function App, so they cannot starve ingest.
  const servingPool = await services.servingPool();
  const mode = opts.access?.mode ?? config.access.mode;
  const principal = mode === 'entra' ? (opts.access?.principal ?? null) : null;
  // The local server strips client-sent principal headers as the platform does, so its own are believed.
  const access = mode === 'entra' ? { access: databaseAccess(servingPool, config.schema, true) } : {};
  const handlers = makeServingHandlers(() => Promise.resolve({ pool: servingPool, config, caps: services.caps, ...access }), { entra: mode === 'entra' });
  const http = await serveMetrics(handlers, {
    port: await preferredOrFreePort(opts.port),
    log: (l) => opts.log('warn', l),
    ...(mode === 'entra' ? { principal } : {}),
  });
  stops.add('the metrics endpoint', 5000, () => http.close());
  return { url: http.url, access: { mode, principal } };
}
