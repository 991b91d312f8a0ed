import { app } from '@azure/functions';
import { makeMetricsHandler } from '../serving/handler.js';
import { getAppContext } from './context.js';

/** GET /api/tenants/{tenantId}/metrics?from=&to=&grain=&by= (function key required). */
app.http('metrics', {
  methods: ['GET'],
  authLevel: 'function',
  route: 'tenants/{tenantId}/metrics',
  handler: makeMetricsHandler(async () => {
    const ctx = await getAppContext();
    return {
      pool: await ctx.servingPool(),
      schema: ctx.config.schema,
      caps: ctx.caps,
      retentionDays: ctx.config.rollupRetentionDays,
      maxRows: ctx.config.metrics.maxRows,
    };
  }),
});
