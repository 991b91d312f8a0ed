import { app } from '@azure/functions';
import { accessControl, httpAuthLevel } from '../serving/access.js';
import { makeMetricsHandler } from '../serving/handler.js';
import { getAppContext, getConfig } from './context.js';

/**
 * GET /api/tenants/{tenantId}/metrics?from=&to=&grain=&by=: a function key required, or with
 * HUBSINK_ACCESS=entra a signed-in caller granted the storefront (src/serving/access.ts).
 */
app.http('metrics', {
  methods: ['GET'],
  authLevel: httpAuthLevel(getConfig().access),
  route: 'tenants/{tenantId}/metrics',
  handler: makeMetricsHandler(async () => {
    const ctx = await getAppContext();
    const pool = await ctx.servingPool();
    return {
      pool,
      schema: ctx.config.schema,
      caps: ctx.caps,
      retentionDays: ctx.config.rollupRetentionDays,
      maxRows: ctx.config.metrics.maxRows,
      ...optional(accessControl(ctx.config.access, pool, ctx.config.schema)),
    };
  }),
});

function optional<T>(access: T | undefined): { access?: T } {
  return access ? { access } : {};
}
