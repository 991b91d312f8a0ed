import { app } from '@azure/functions';
import { makeRollupTimerHandler } from '../rollups/timer.js';
import { getAppContext } from './context.js';

/**
 * Every minute. useMonitor keeps one schedule across instances and restarts (no double or missed
 * runs); even if two runs did overlap, the rollup state lock serializes them without double counts.
 */
app.timer('rollup', {
  schedule: '0 */1 * * * *',
  useMonitor: true,
  runOnStartup: false,
  handler: makeRollupTimerHandler(async () => {
    const ctx = await getAppContext();
    return { pool: ctx.pool, config: ctx.config, caps: ctx.caps, clock: () => new Date(), telemetry: ctx.telemetry };
  }),
});
