import { app } from '@azure/functions';
import { makeDashboardHandler } from '../serving/dashboard.js';
import { makeFreshnessHandler } from '../serving/freshness.js';
import { makeTenantsHandler } from '../serving/tenants.js';
import { getAppContext } from './context.js';

// The dashboard and the two endpoints it needs besides metrics. Same auth as metrics: a function
// key; the page passes the `code` it was opened with on to its API calls (README, "Dashboard").

/** GET /api/dashboard, /api/dashboard/assets/… : the page and its hashed assets. */
app.http('dashboard', {
  methods: ['GET'],
  authLevel: 'function',
  route: 'dashboard/{*path}',
  handler: makeDashboardHandler(),
});

/** GET /api/tenants?from=&to=[&limit=]: storefronts by activity in the range. */
app.http('tenants', {
  methods: ['GET'],
  authLevel: 'function',
  route: 'tenants',
  handler: makeTenantsHandler(async () => {
    const ctx = await getAppContext();
    return { pool: await ctx.servingPool(), schema: ctx.config.schema, retentionDays: ctx.config.rollupRetentionDays };
  }),
});

/** GET /api/freshness: when the rollups last ran and how far behind ingest they are. */
app.http('freshness', {
  methods: ['GET'],
  authLevel: 'function',
  route: 'freshness',
  handler: makeFreshnessHandler(async () => {
    const ctx = await getAppContext();
    return { pool: await ctx.servingPool(), schema: ctx.config.schema };
  }),
});
