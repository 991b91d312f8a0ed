import { app, type InvocationContext, type Timer } from '@azure/functions';
import { maintainPartitions } from '../db/partitions.js';
import { getAppContext } from './context.js';

/** Daily, and at start-up so a fresh deployment can accept today's events at once. */
app.timer('partitions', {
  schedule: '0 5 0 * * *',
  runOnStartup: true,
  useMonitor: true,
  handler: async (_timer: Timer, context: InvocationContext): Promise<void> => {
    const ctx = await getAppContext();
    const r = await maintainPartitions(ctx.pool, ctx.config.schema, {
      now: new Date(),
      aheadDays: ctx.config.partitionsAheadDays,
      retentionDays: ctx.config.retentionDays,
      caps: ctx.caps,
    });
    context.log(`partitions created=${r.created.length} dropped=${r.dropped.length} ${[...r.created, ...r.dropped].join(',')}`);
  },
});
