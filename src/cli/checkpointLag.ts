/**
 * The checkpoints of a consumer group beside the hub's partitions: how far behind each partition is,
 * and who owns it. `checkpoints show` prints it, `dlq status` for the dead-letter hub.
 */
import type { EventHubConsumerClient } from '@azure/event-hubs';
import type { ContainerClient } from '@azure/storage-blob';
import { blobPrefix, lagOf, partitionStates, readCheckpoints, readOwnership, type CheckpointScope, type LagRow, type StoredCheckpoint, type StoredOwnership } from '../hubs/checkpoints.js';
import { ago, formatTable, isoSeconds } from '../operator/format.js';

export interface ShowResult {
  namespace: string;
  hub: string;
  consumerGroup: string;
  container: string;
  blobPrefix: string;
  partitions: (LagRow & { owner?: StoredOwnership })[];
  totalLag: number | null;
  /** False before any consumer has checkpointed (a Function App that has never run). */
  containerExists: boolean;
}

export async function checkpointLag(consumer: EventHubConsumerClient, container: ContainerClient, scope: CheckpointScope): Promise<ShowResult> {
  // No container yet is a state, not an error: the consumer will start at `initialOffsetOptions`
  // (hubsink ships fromStart), so everything retained is lag, as the lag gauges count it.
  const containerExists = await container.exists();
  const [states, checkpoints, ownership] = await Promise.all([
    partitionStates(consumer),
    containerExists ? readCheckpoints(container, scope) : new Map<string, StoredCheckpoint>(),
    containerExists ? readOwnership(container, scope) : [],
  ]);
  const owners = new Map(ownership.map((o) => [o.partitionId, o]));
  const partitions = states.map((p) => {
    const row: LagRow & { owner?: StoredOwnership } = lagOf(p, checkpoints.get(p.partitionId));
    const o = owners.get(p.partitionId);
    if (o) row.owner = o;
    return row;
  });
  const totalLag = partitions.every((p) => p.lag !== null) ? partitions.reduce((n, p) => n + (p.lag ?? 0), 0) : null;
  return {
    namespace: scope.fullyQualifiedNamespace,
    hub: scope.eventHubName,
    consumerGroup: scope.consumerGroup,
    container: container.containerName,
    blobPrefix: blobPrefix(scope, 'checkpoint'),
    partitions,
    totalLag,
    containerExists,
  };
}

/** Pure: the `show` table. */
export function lagTable(r: ShowResult, now: Date): string {
  const rows = r.partitions.map((p) => [
    p.partitionId,
    p.checkpoint?.sequenceNumber?.toString() ?? '-',
    p.checkpoint?.offset ?? '-',
    isoSeconds(p.checkpoint?.lastModified),
    p.lastEnqueuedSequenceNumber?.toString() ?? '-',
    isoSeconds(p.lastEnqueuedOnUtc),
    p.lag?.toString() ?? '?',
    p.owner ? (p.owner.ownerId === '' ? `released${p.owner.lastModified ? ` ${ago(p.owner.lastModified, now)}` : ''}` : `${p.owner.ownerId}${p.owner.lastModified ? ` (${ago(p.owner.lastModified, now)})` : ''}`) : '-',
    p.note ?? '',
  ]);
  return formatTable(['PARTITION', 'CHECKPOINT SEQ', 'OFFSET', 'CHECKPOINTED AT', 'LAST ENQUEUED SEQ', 'LAST ENQUEUED AT', 'LAG', 'OWNER', 'NOTE'], rows);
}
