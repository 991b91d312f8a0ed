/**
 * What the runner reports beyond per-batch counts: gauge sources (ingest lag of the partitions this
 * process owns, the dead-letter hub's backlog, parked rows, rollup freshness, the pool) and the
 * readiness check behind `/readyz`. Reads happen only when a metrics reader collects.
 */
import type pg from 'pg';
import { databaseReachable, parkedByReason, poolUsage } from '../db/probes.js';
import { rollupFreshness } from '../rollups/freshness.js';
import { backlogSource, ingestLagSource, type HubScope } from '../telemetry/hubGauges.js';
import type { GaugeSources, Readiness } from '../telemetry/telemetry.js';

/** The last sequence number handled (written or dead-lettered, then checkpointed) per partition. */
export class ProcessedPositions {
  private readonly last = new Map<string, number>();

  record(partitionId: string, events: readonly { sequenceNumber: number }[]): void {
    const seq = events[events.length - 1]?.sequenceNumber;
    if (seq !== undefined && seq > (this.last.get(partitionId) ?? -Infinity)) this.last.set(partitionId, seq);
  }

  get(partitionId: string): number | undefined {
    return this.last.get(partitionId);
  }
}

export interface RunnerGaugeOptions {
  pool: pg.Pool;
  schema: string;
  ingest: HubScope & { ownedPartitions: () => readonly string[]; processed: ProcessedPositions };
  deadLetter: HubScope;
  clock: () => Date;
}

/**
 * Lag only on the partitions this process owns, from what it has handled (fresher than its
 * checkpoints; partitionLag in src/hubs/checkpoints.ts); the same sources as the Function App's.
 */
export function runnerGauges(o: RunnerGaugeOptions): GaugeSources {
  return {
    ingestLag: ingestLagSource(o.ingest, { partitions: o.ingest.ownedPartitions, processed: (id) => o.ingest.processed.get(id) }),
    deadLetterBacklog: backlogSource(o.deadLetter),
    parked: () => parkedByReason(o.pool, o.schema),
    rollupFreshness: () => rollupFreshness(o.pool, o.schema, o.clock()),
    pool: () => poolUsage(o.pool),
  };
}

/** Ready: not shutting down, the database answers, the ingest consumer holds or is claiming partitions. */
export async function runnerReadiness(o: { pool: pg.Pool; stopping: () => boolean; consuming: () => boolean; ownedPartitions: () => readonly string[] }): Promise<Readiness> {
  const checks: Record<string, string> = {};
  checks.shutdown = o.stopping() ? 'shutting down' : 'ok';
  const db = await databaseReachable(o.pool);
  checks.database = db.ok ? 'ok' : `unreachable: ${db.error ?? ''}`;
  const owned = o.ownedPartitions();
  checks.partitions = !o.consuming() ? 'not consuming' : owned.length > 0 ? `ok: owns ${owned.join(',')}` : 'ok: claiming';
  return { ready: Object.values(checks).every((v) => v.startsWith('ok')), checks };
}
