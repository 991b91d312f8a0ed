/**
 * What the runner reports beyond per-batch counts: gauge sources (ingest lag of the partitions this
 * process owns, the dead-letter hub's backlog, parked rows, rollup freshness, the pool) and the
 * readiness check behind `/readyz`. Reads happen only when a metrics reader collects.
 */
import type { ContainerClient } from '@azure/storage-blob';
import type pg from 'pg';
import { databaseReachable, parkedByReason, poolUsage } from '../db/probes.js';
import { rollupFreshness } from '../rollups/freshness.js';
import { lagOf, readCheckpoints, type CheckpointScope, type PartitionState, type StoredCheckpoint } from '../hubs/checkpoints.js';
import type { GaugeSources, Readiness } from '../telemetry/telemetry.js';

/** Both Event Hubs clients answer these. */
export interface PartitionPropertiesSource {
  getPartitionIds(): Promise<string[]>;
  getPartitionProperties(partitionId: string): Promise<{
    partitionId: string;
    beginningSequenceNumber: number;
    lastEnqueuedSequenceNumber: number;
    lastEnqueuedOffset: string | number;
    lastEnqueuedOnUtc: Date;
    isEmpty: boolean;
  }>;
}

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

/**
 * Pure: lag of one owned partition: last enqueued minus the last sequence number this process
 * handled. Before its first batch here, counted from the partition's checkpoint (a batch stuck in
 * retries from the start of ownership must show as lag, not as nothing).
 */
export function partitionLag(p: PartitionState, processed: number | undefined, checkpoint: StoredCheckpoint | undefined): number | null {
  if (processed === undefined) return lagOf(p, checkpoint).lag;
  if (p.isEmpty) return 0;
  return Math.max(0, p.lastEnqueuedSequenceNumber - processed);
}

export interface HubScope {
  hub: string;
  client: PartitionPropertiesSource;
  container: ContainerClient;
  scope: CheckpointScope;
}

export interface RunnerGaugeOptions {
  pool: pg.Pool;
  schema: string;
  ingest: HubScope & { ownedPartitions: () => readonly string[]; processed: ProcessedPositions };
  deadLetter: HubScope;
  clock: () => Date;
}

async function stateOf(client: PartitionPropertiesSource, id: string): Promise<PartitionState> {
  const p = await client.getPartitionProperties(id);
  return { ...p, lastEnqueuedOffset: String(p.lastEnqueuedOffset) };
}

export function runnerGauges(o: RunnerGaugeOptions): GaugeSources {
  return {
    ingestLag: async () => {
      const i = o.ingest;
      const owned = i.ownedPartitions();
      const checkpoints = owned.some((id) => i.processed.get(id) === undefined) ? await readCheckpoints(i.container, i.scope) : new Map<string, StoredCheckpoint>();
      const out: { hub: string; partition: string; lag: number }[] = [];
      for (const id of owned) {
        const lag = partitionLag(await stateOf(i.client, id), i.processed.get(id), checkpoints.get(id));
        if (lag !== null) out.push({ hub: i.hub, partition: id, lag });
      }
      return out;
    },
    deadLetterBacklog: async () => {
      const dl = o.deadLetter;
      const [ids, checkpoints] = await Promise.all([dl.client.getPartitionIds(), readCheckpoints(dl.container, dl.scope)]);
      let backlog = 0;
      for (const id of ids) backlog += lagOf(await stateOf(dl.client, id), checkpoints.get(id)).lag ?? 0;
      return [{ hub: dl.hub, backlog }];
    },
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
