import { app } from '@azure/functions';
import { httpAuthLevel } from '../serving/access.js';
import { getConfig, getServingHandlers } from './context.js';

// The dashboard and the two endpoints it needs besides metrics. Same auth as metrics: a function
// key, which the page passes on from the `code` it was opened with (README, "Dashboard"); or with
// HUBSINK_ACCESS=entra the caller's sign-in and grants (README, "Access per storefront").
const authLevel = httpAuthLevel(getConfig().access);

// In key mode the page needs no database; in entra mode it checks the caller's grants.
const { dashboard, tenants, freshness, rollups } = getServingHandlers();

/** GET /api/dashboard: the page (and /api/dashboard/assets/…, the asset URLs of older pages). */
app.http('dashboard', {
  methods: ['GET'],
  authLevel,
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

/** GET /api/tenants?from=&to=[&limit=]: storefronts by activity in the range (in entra mode, the caller's). */
app.http('tenants', {
  methods: ['GET'],
  authLevel,
  route: 'tenants',
  handler: tenants,
});

/** GET /api/freshness: when the rollups last ran and how far behind ingest they are. */
app.http('freshness', {
  methods: ['GET'],
  authLevel,
  route: 'freshness',
  handler: freshness,
});

/** GET /api/rollups: which dimensions, measures and grains the rollups answer (the panel editor's choices). */
app.http('rollups', {
  methods: ['GET'],
  authLevel,
  route: 'rollups',
  // No storefront's data, but in entra mode still for signed-in callers with a grant only.
  handler: rollups,
});
