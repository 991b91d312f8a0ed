import { app } from '@azure/functions';
import { makePartitionsTimerHandler } from '../partitions/partitionsHandler.js';
import { getAppContext } from './context.js';

/** Daily, and at start-up so a fresh deployment can accept today's events at once. */
app.timer('partitions', {
  schedule: '0 5 0 * * *',
  runOnStartup: true,
  useMonitor: true,
  handler: makePartitionsTimerHandler(async () => {
    const ctx = await getAppContext();
    return { pool: ctx.pool, config: ctx.config, caps: ctx.caps, clock: () => new Date() };
  }),
});
