import { app, type InvocationContext, type Timer } from '@azure/functions';
import { RollupBusyError, describeCycle, rollupCycle } from '../rollups/run.js';
import { getAppContext } from './context.js';

/**
 * Every minute. useMonitor keeps one schedule across instances and restarts (no double or missed
 * runs); even if two runs did overlap, the rollup state lock serializes them without double counts.
 */
app.timer('rollup', {
  schedule: '0 */1 * * * *',
  useMonitor: true,
  runOnStartup: false,
  handler: async (_timer: Timer, context: InvocationContext): Promise<void> => {
    const ctx = await getAppContext();
    try {
      const r = await rollupCycle(ctx.pool, ctx.config.schema, {
        caps: ctx.caps,
        maxWindowRows: ctx.config.rollupMaxWindowRows,
        retentionDays: ctx.config.rollupRetentionDays,
        dimensions: ctx.config.rollupDimensions,
      });
      context.log(`rollup ${describeCycle(r)}`);
    } catch (err) {
      // Long-running writers: nothing was folded in, the next minute tries again.
      if (err instanceof RollupBusyError) {
        context.warn(`rollup skipped: ${err.message}`);
        return;
      }
      throw err;
    }
  },
});
