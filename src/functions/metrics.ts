import { app } from '@azure/functions';
import { httpAuthLevel } from '../serving/access.js';
import { getConfig, getServingHandlers } from './context.js';

/**
 * GET /api/tenants/{tenantId}/metrics?from=&to=&grain=&by=: a function key required, or with
 * HUBSINK_ACCESS=entra a signed-in caller granted the storefront (src/serving/access.ts).
 */
app.http('metrics', {
  methods: ['GET'],
  authLevel: httpAuthLevel(getConfig().access),
  route: 'tenants/{tenantId}/metrics',
  handler: getServingHandlers().metrics,
});
