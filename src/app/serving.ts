/**
 * The dashboard and metrics HTTP handlers, built once from one source of their dependencies: the
 * Function App registers them (src/functions/dashboard.ts, metrics.ts), the local stack serves
 * them (src/local/localHttpServer.ts). Each resolves its dependencies per request, so the Function App can
 * make the serving pool on first use and the handlers answer 503 while it cannot.
 */
import type pg from 'pg';
import type { HubsinkConfig } from '../config.js';
import type { Capabilities } from '../db/capabilities.js';
import { accessControl, signedIn, type AccessControl } from '../serving/access.js';
import { makeRollupsHandler } from '../serving/catalogHandler.js';
import { makeDashboardHandler, type DashboardHandler } from '../serving/dashboard.js';
import { makeFreshnessHandler } from '../serving/freshnessHandler.js';
import { makeMetricsHandler, type MetricsHandler } from '../serving/handler.js';
import { makeTenantsHandler } from '../serving/tenantsHandler.js';
import type { AppServices } from './services.js';

export interface ServingDeps {
  /** The serving pool (createServingPool), never the ingest pool. */
  pool: pg.Pool;
  config: Pick<HubsinkConfig, 'schema' | 'rollupRetentionDays' | 'metrics'>;
  caps: Capabilities;
  /** HUBSINK_ACCESS=entra: whose grants decide (absent: a function key, or loopback, reads everything). */
  access?: AccessControl;
}

export interface ServingHandlers {
  metrics: MetricsHandler;
  tenants: MetricsHandler;
  freshness: MetricsHandler;
  rollups: MetricsHandler;
  dashboard: DashboardHandler;
}

/** The serving dependencies of the app's services, grants checked as HUBSINK_ACCESS says. */
export async function servingDepsOf(services: Pick<AppServices, 'config' | 'caps' | 'servingPool'>): Promise<ServingDeps> {
  const pool = await services.servingPool();
  const access = accessControl(services.config.access, pool, services.config.schema);
  return { pool, config: services.config, caps: services.caps, ...(access ? { access } : {}) };
}

/**
 * `entra`: the dashboard page itself checks the caller's grants (in key mode it needs no database).
 */
export function makeServingHandlers(getDeps: () => Promise<ServingDeps>, opts: { entra: boolean }): ServingHandlers {
  const access = async (): Promise<AccessControl | undefined> => (await getDeps()).access;
  const withAccess = (d: ServingDeps) => (d.access ? { access: d.access } : {});
  return {
    metrics: makeMetricsHandler(async () => {
      const d = await getDeps();
      return { pool: d.pool, schema: d.config.schema, caps: d.caps, retentionDays: d.config.rollupRetentionDays, maxRows: d.config.metrics.maxRows, ...withAccess(d) };
    }),
    tenants: makeTenantsHandler(async () => {
      const d = await getDeps();
      return { pool: d.pool, schema: d.config.schema, retentionDays: d.config.rollupRetentionDays, ...withAccess(d) };
    }),
    freshness: makeFreshnessHandler(async () => {
      const d = await getDeps();
      return { pool: d.pool, schema: d.config.schema, ...withAccess(d) };
    }),
    // No storefront's data, but in entra mode still for signed-in callers with a grant only.
    rollups: signedIn(
      makeRollupsHandler(async () => {
        const d = await getDeps();
        return { pool: d.pool, schema: d.config.schema };
      }),
      access,
      'rollups',
    ),
    dashboard: makeDashboardHandler(undefined, opts.entra ? access : undefined),
  };
}
