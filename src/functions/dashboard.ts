import { app } from '@azure/functions';
import { makeRollupsHandler } from '../serving/catalog.js';
import { makeDashboardHandler } from '../serving/dashboard.js';
import { makeFreshnessHandler } from '../serving/freshness.js';
import { makeTenantsHandler } from '../serving/tenants.js';
import { getAppContext } from './context.js';

// The dashboard and the two endpoints it needs besides metrics. Same auth as metrics: a function
// key; the page passes the `code` it was opened with on to its API calls (README, "Dashboard").

const dashboard = makeDashboardHandler();

/** GET /api/dashboard: the page (and /api/dashboard/assets/…, the asset URLs of older pages). */
app.http('dashboard', {
  methods: ['GET'],
  authLevel: 'function',
  route: 'dashboard/{*path}',
  handler: dashboard,
});

/**
 * GET /api/dashboard-assets/<hashed name>: the page's script and style, without a key (a script tag
 * cannot send one, and one in the URL would sit in shared caches beside the year-long asset). They
 * are the same public code for every caller and hold no data. A route of its own: the host orders
 * overlapping routes by function name, not by how specific they are.
 */
app.http('dashboardAssets', {
  methods: ['GET'],
  authLevel: 'anonymous',
  route: 'dashboard-assets/{name}',
  handler: dashboard,
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

/** GET /api/rollups: which dimensions, measures and grains the rollups answer (the panel editor's choices). */
app.http('rollups', {
  methods: ['GET'],
  authLevel: 'function',
  route: 'rollups',
  handler: makeRollupsHandler(async () => {
    const ctx = await getAppContext();
    return { pool: await ctx.servingPool(), schema: ctx.config.schema };
  }),
});
