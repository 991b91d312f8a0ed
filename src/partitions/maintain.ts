/**
 * Partition maintenance as every way of running hubsink does it: the Function App's `partitions`
 * timer, `hubsink partitions`, `hubsink migrate` (create only) and the standalone runner (at start,
 * then every few hours by its clock). Retention never drops what the rollups have not folded in:
 * when a partition past retention still holds such rows, the rollups run first (bounded), and a
 * partition they still do not cover is kept and reported.
 */
import type pg from 'pg';
import type { HubsinkConfig } from '../config.js';
import type { Capabilities } from '../db/capabilities.js';
import { describeMaintenance, maintainPartitions, type MaintenanceResult } from '../db/partitions.js';
import { describeError } from '../pipeline/classify.js';
import { RollupBusyError, rollUpUntilCaughtUp } from '../rollups/run.js';

export interface MaintainDeps {
  pool: pg.Pool;
  config: Pick<HubsinkConfig, 'schema' | 'partitionsAheadDays' | 'retentionDays' | 'rollupMaxWindowRows'> & Partial<Pick<HubsinkConfig, 'rollupDimensions'>>;
  caps: Capabilities;
  clock: () => Date;
}

/** Most rollup runs one maintenance run takes before giving up and keeping the partition. */
const ROLLUP_RUNS = 20;

/** Runs the rollups until they have caught up (bounded); a busy events table ends it early. */
export async function rollUpForRetention(deps: MaintainDeps): Promise<void> {
  try {
    await rollUpUntilCaughtUp(deps.pool, deps.config.schema, {
      caps: deps.caps,
      maxWindowRows: deps.config.rollupMaxWindowRows,
      now: deps.clock,
      ...(deps.config.rollupDimensions ? { dimensions: deps.config.rollupDimensions } : {}),
      maxRuns: ROLLUP_RUNS,
    });
  } catch (err) {
    // The partition is then kept and reported; the next maintenance run tries again.
    if (err instanceof RollupBusyError) return;
    throw err;
  }
}

/** One maintenance run with the app's settings (or overrides, from the CLI). */
export function maintain(deps: MaintainDeps, overrides: { aheadDays?: number; retentionDays?: number; drop?: boolean } = {}): Promise<MaintenanceResult> {
  return maintainPartitions(deps.pool, deps.config.schema, {
    now: deps.clock(),
    aheadDays: overrides.aheadDays ?? deps.config.partitionsAheadDays,
    retentionDays: overrides.retentionDays ?? deps.config.retentionDays,
    caps: deps.caps,
    drop: overrides.drop !== false,
    rollUp: () => rollUpForRetention(deps),
  });
}

export interface PartitionScheduleOptions {
  /** Clock time between runs (the Function App's timer runs daily; a runner more often). */
  everyMs: number;
  /** Clock time before a failed run is tried again. */
  retryMs: number;
  log: (level: 'info' | 'warn', message: string) => void;
}

export const DEFAULT_PARTITION_EVERY_MS = 3 * 3600_000;
export const DEFAULT_PARTITION_RETRY_MS = 5 * 60_000;

/**
 * Periodic maintenance driven by the injected clock: `tick()` runs it when due, so a caller polls
 * on any real timer and a test advances the clock instead of waiting hours.
 */
export class PartitionSchedule {
  private nextAt = Number.NEGATIVE_INFINITY;
  private running: Promise<void> | undefined;
  runs = 0;
  failures = 0;
  lastError: string | null = null;
  lastResult: MaintenanceResult | undefined;

  constructor(
    private readonly deps: MaintainDeps,
    private readonly opts: PartitionScheduleOptions,
  ) {}

  /** Runs now; throws on failure (the runner's start fails rather than consume into no partitions). */
  async runNow(): Promise<MaintenanceResult> {
    const started = this.deps.clock().getTime();
    try {
      const r = await maintain(this.deps);
      this.runs++;
      this.lastResult = r;
      this.lastError = null;
      this.nextAt = started + this.opts.everyMs;
      const lines = describeMaintenance(r);
      if (lines.length > 0) this.opts.log(r.kept.length > 0 ? 'warn' : 'info', `partitions: ${lines.join('; ')}`);
      return r;
    } catch (err) {
      this.failures++;
      this.lastError = describeError(err);
      this.nextAt = started + this.opts.retryMs;
      throw err;
    }
  }

  /** Runs when due by the clock; never throws (failures are logged and retried after retryMs). */
  tick(): Promise<void> {
    if (this.running || this.deps.clock().getTime() < this.nextAt) return this.running ?? Promise.resolve();
    this.running = this.runNow()
      .then(
        () => undefined,
        (err: unknown) => this.opts.log('warn', `partitions: maintenance failed, trying again in ${Math.round(this.opts.retryMs / 1000)} s: ${describeError(err)}`),
      )
      .finally(() => {
        this.running = undefined;
      });
    return this.running;
  }

  /** Waits for a run in progress (shutdown). */
  idle(): Promise<void> {
    return this.running ?? Promise.resolve();
  }
}
