/**
 * Handler factory for the `rollup` timer (every minute). Kept apart from the registration so tests
 * call it as the host does, with their own dependencies and clock.
 */
import type { InvocationContext, Timer } from '@azure/functions';
import type pg from 'pg';
import type { HubsinkConfig } from '../config.js';
import type { Capabilities } from '../db/capabilities.js';
import type { Telemetry } from '../telemetry/telemetry.js';
import { RollupBusyError, describeCycle, rollupCycle, type RollupCycleResult } from './run.js';

export interface RollupTimerDeps {
  pool: pg.Pool;
  config: Pick<HubsinkConfig, 'schema' | 'rollupMaxWindowRows' | 'rollupRetentionDays'> & Partial<Pick<HubsinkConfig, 'rollupDimensions'>>;
  caps: Capabilities;
  clock: () => Date;
  telemetry?: Telemetry;
}

export function makeRollupTimerHandler(getDeps: () => Promise<RollupTimerDeps>) {
  return async function rollupHandler(_timer: Timer, context: InvocationContext): Promise<RollupCycleResult | undefined> {
    const deps = await getDeps();
    try {
      const r = await rollupCycle(deps.pool, deps.config.schema, {
        caps: deps.caps,
        maxWindowRows: deps.config.rollupMaxWindowRows,
        retentionDays: deps.config.rollupRetentionDays,
        ...(deps.config.rollupDimensions ? { dimensions: deps.config.rollupDimensions } : {}),
        now: deps.clock,
      });
      deps.telemetry?.rollupRuns(r.runs);
      context.log(`rollup ${describeCycle(r)}`);
      return r;
    } catch (err) {
      // Long-running writers: nothing was folded in, the next minute tries again.
      if (err instanceof RollupBusyError) {
        context.warn(`rollup skipped: ${err.message}`);
        return undefined;
      }
      throw err;
    }
  };
}
