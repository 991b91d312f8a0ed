/**
 * Gauge sources read from Event Hubs and the checkpoint blobs: ingest lag per partition and the
 * dead-letter hub's backlog. The runner uses them on its own checkpoints (plus the positions it has
 * handled), the Function App on the host's checkpoints in container `azure-webjobs-eventhub`.
 *
 * One collection costs, per hub: one blob listing of the checkpoint prefix, one management request
 * per partition (`getPartitionProperties`), and one `getPartitionIds` when the partitions are not
 * given. Nothing is received: the consumer clients here only answer management requests.
 */
import type { ContainerClient } from '@azure/storage-blob';
import { lagOf, lagReading, readCheckpoints, type CheckpointScope, type PartitionState, type StoredCheckpoint } from '../hubs/checkpoints.js';
import type { GaugeSources } from './telemetry.js';

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

export interface HubScope {
  hub: string;
  client: PartitionPropertiesSource;
  container: ContainerClient;
  scope: CheckpointScope;
}

type LagSource = NonNullable<GaugeSources['ingestLag']>;
type BacklogSource = NonNullable<GaugeSources['deadLetterBacklog']>;

async function stateOf(client: PartitionPropertiesSource, id: string): Promise<PartitionState> {
  const p = await client.getPartitionProperties(id);
  return { ...p, lastEnqueuedOffset: String(p.lastEnqueuedOffset) };
}

/**
 * The checkpoints, or none when the container does not exist: a Function App that has never run
 * has no container yet, and its consumer will start at `initialOffsetOptions` (hubsink ships
 * `fromStart`), so everything retained is lag, as `lagOf` counts a partition without checkpoint.
 * Any other failure (storage unreachable, no permission) throws: the lag is then unknown.
 */
export async function checkpointsOrNone(container: ContainerClient, scope: CheckpointScope): Promise<Map<string, StoredCheckpoint>> {
  try {
    return await readCheckpoints(container, scope);
  } catch (err) {
    const e = err as { statusCode?: number; code?: string };
    if (e.statusCode === 404 && (e.code === undefined || e.code === 'ContainerNotFound')) return new Map();
    throw err;
  }
}

export interface OwnedPartitions {
  /** The partitions this process owns (the runner); all of the hub's when absent. */
  partitions: () => readonly string[];
  /** The last sequence number handled on a partition, when it is newer than its checkpoint. */
  processed: (partitionId: string) => number | undefined;
}

/**
 * `hubsink.ingest.lag`: per partition, last enqueued minus the checkpoint (or what was handled); a
 * checkpoint ahead of its partition (the hub was re-created) is flagged (`checkpointAhead`) with the
 * negative difference, instead of being left out or shown as no lag.
 */
export function ingestLagSource(h: HubScope, owned?: OwnedPartitions): LagSource {
  return async () => {
    const ids = owned ? owned.partitions() : await h.client.getPartitionIds();
    const processed = (id: string) => owned?.processed(id);
    // Listed every time, and before the partitions' properties: a checkpoint read first can only be
    // ahead of them when the hub was re-created, even while the runner moves on.
    const checkpoints = ids.length > 0 ? await checkpointsOrNone(h.container, h.scope) : new Map<string, StoredCheckpoint>();
    const states = await Promise.all(ids.map((id) => stateOf(h.client, id)));
    const out: { hub: string; partition: string; lag: number; checkpointAhead?: true }[] = [];
    for (const p of states) {
      const r = lagReading(p, processed(p.partitionId), checkpoints.get(p.partitionId));
      if (r) out.push({ hub: h.hub, partition: p.partitionId, lag: r.lag, ...(r.ahead ? { checkpointAhead: true as const } : {}) });
    }
    return out;
  };
}

/** `hubsink.deadletter.backlog`: events after the consumer group's checkpoints, summed over partitions. */
export function backlogSource(h: HubScope): BacklogSource {
  return async () => {
    const [ids, checkpoints] = await Promise.all([h.client.getPartitionIds(), checkpointsOrNone(h.container, h.scope)]);
    const states = await Promise.all(ids.map((id) => stateOf(h.client, id)));
    let backlog = 0;
    for (const p of states) backlog += lagOf(p, checkpoints.get(p.partitionId)).lag ?? 0;
    return [{ hub: h.hub, backlog }];
  };
}
