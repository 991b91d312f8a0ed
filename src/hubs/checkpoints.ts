/**
 * Event Hubs checkpoints and ownership in blob storage, in the layout shared by BlobCheckpointStore
 * (@azure/eventhubs-checkpointstore-blob) and the Functions host (container `azure-webjobs-eventhub`):
 *
 *   <namespace>/<hub>/<consumer-group>/checkpoint/<partition>   metadata: sequencenumber, offset
 *   <namespace>/<hub>/<consumer-group>/ownership/<partition>    metadata: ownerid
 *
 * Namespace, hub and consumer group are lower-cased in blob names (both SDKs do so: none of them is
 * case-sensitive in Event Hubs). Offsets are opaque strings and are never parsed or compared;
 * positions are compared by sequence number only.
 *
 * What the consumers do with a checkpoint (read from their sources):
 * - the JavaScript EventProcessor resumes from `{ offset }` exclusive: `x-opt-offset > '<offset>'`;
 * - the .NET processor used by the Functions host resumes from the offset exclusive when one is
 *   present, else from the sequence number exclusive.
 * Both read offset "-1" as the start of the partition (it is the SDKs' own `earliest` position), so
 * "reprocess from the start" is written as offset -1 / sequence number -1 rather than by deleting the
 * blob: without a checkpoint the host would fall back to `initialOffsetOptions` (possibly `fromEnd`)
 * or to a legacy Functions checkpoint, neither of which is "the start".
 */
import type { EventHubConsumerClient, EventPosition } from '@azure/event-hubs';
import type { ContainerClient } from '@azure/storage-blob';

export interface CheckpointScope {
  fullyQualifiedNamespace: string;
  eventHubName: string;
  consumerGroup: string;
}

export const START_OFFSET = '-1';
export const START_SEQUENCE = -1;

/** Pure: `<ns>/<hub>/<group>/<type>/`, lower-cased as both SDKs write it. */
export function blobPrefix(scope: CheckpointScope, type: 'checkpoint' | 'ownership'): string {
  return `${scope.fullyQualifiedNamespace.toLowerCase()}/${scope.eventHubName.toLowerCase()}/${scope.consumerGroup.toLowerCase()}/${type}/`;
}

export function checkpointBlobName(scope: CheckpointScope, partitionId: string): string {
  return blobPrefix(scope, 'checkpoint') + partitionId;
}

export interface StoredCheckpoint {
  partitionId: string;
  /** Undefined when the blob has no readable sequence number (the .NET SDK may write ""). */
  sequenceNumber?: number;
  /** Undefined when missing or empty. Opaque. */
  offset?: string;
  lastModified?: Date;
}

export interface StoredOwnership {
  partitionId: string;
  /** Empty when the owner gave the partition up (both SDKs do so on a clean shutdown). */
  ownerId: string;
  lastModified?: Date;
}

/** Pure: a checkpoint blob's metadata as a checkpoint. */
export function checkpointFromMetadata(partitionId: string, metadata: Record<string, string> | undefined, lastModified?: Date): StoredCheckpoint {
  const md = metadata ?? {};
  const cp: StoredCheckpoint = { partitionId };
  const seq = md.sequencenumber;
  if (seq !== undefined && /^-?\d{1,19}$/.test(seq.trim())) {
    const n = Number(seq.trim());
    if (Number.isSafeInteger(n)) cp.sequenceNumber = n;
  }
  if (md.offset !== undefined && md.offset !== '') cp.offset = md.offset;
  if (lastModified) cp.lastModified = lastModified;
  return cp;
}

function partitionOf(blobName: string): string {
  return blobName.slice(blobName.lastIndexOf('/') + 1);
}

export async function readCheckpoints(container: ContainerClient, scope: CheckpointScope): Promise<Map<string, StoredCheckpoint>> {
  const out = new Map<string, StoredCheckpoint>();
  for await (const blob of container.listBlobsFlat({ prefix: blobPrefix(scope, 'checkpoint'), includeMetadata: true })) {
    const id = partitionOf(blob.name);
    out.set(id, checkpointFromMetadata(id, blob.metadata, blob.properties.lastModified));
  }
  return out;
}

export async function readOwnership(container: ContainerClient, scope: CheckpointScope): Promise<StoredOwnership[]> {
  const out: StoredOwnership[] = [];
  for await (const blob of container.listBlobsFlat({ prefix: blobPrefix(scope, 'ownership'), includeMetadata: true })) {
    const o: StoredOwnership = { partitionId: partitionOf(blob.name), ownerId: blob.metadata?.ownerid ?? '' };
    if (blob.properties.lastModified) o.lastModified = blob.properties.lastModified;
    out.push(o);
  }
  return out;
}

/**
 * Pure: ownership that shows a live consumer: an owner id, renewed within `staleAfterMs`. Consumers
 * renew ownership every load-balancing interval (10 s by default in both SDKs) and consider it
 * expired after 30 to 60 s.
 */
export function liveOwnership(ownership: readonly StoredOwnership[], now: Date, staleAfterMs: number): StoredOwnership[] {
  return ownership.filter((o) => o.ownerId !== '' && o.lastModified !== undefined && now.getTime() - o.lastModified.getTime() < staleAfterMs);
}

/**
 * Writes a checkpoint as BlobCheckpointStore does: metadata on an empty block blob, created when
 * missing. Setting the metadata replaces all of it, which drops anything a previous writer added.
 */
export async function writeCheckpoint(container: ContainerClient, scope: CheckpointScope, partitionId: string, position: { sequenceNumber: number; offset: string }): Promise<void> {
  const blob = container.getBlockBlobClient(checkpointBlobName(scope, partitionId));
  const metadata = { sequencenumber: String(position.sequenceNumber), offset: position.offset };
  try {
    await blob.setMetadata(metadata);
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode !== 404) throw err;
    await blob.upload('', 0, { metadata });
  }
}

// ---------------------------------------------------------------------------------------------
// Lag and rewind planning (pure)

export interface PartitionState {
  partitionId: string;
  beginningSequenceNumber: number;
  lastEnqueuedSequenceNumber: number;
  lastEnqueuedOffset: string;
  lastEnqueuedOnUtc: Date;
  isEmpty: boolean;
}

export interface LagRow {
  partitionId: string;
  checkpoint?: StoredCheckpoint;
  lastEnqueuedSequenceNumber: number | null;
  lastEnqueuedOnUtc: Date | null;
  /** Events after the checkpoint still in the partition; null when it cannot be known. */
  lag: number | null;
  note?: string;
}

/** A checkpoint past everything its partition ever held. */
export interface CheckpointAhead {
  partitionId: string;
  checkpointSequenceNumber: number;
  /** -1 when the partition has never held an event. */
  lastEnqueuedSequenceNumber: number;
}

/**
 * Pure: the checkpoint when it lies past the partition's last enqueued event. Sequence numbers only
 * grow during a hub's life, so this means the hub was deleted and created again under the same name
 * (its numbering restarted at 0) or the blobs belong to another hub of that name. A consumer that
 * resumes there reads nothing until the new numbering passes the old checkpoint, and then has
 * skipped every event before it; so it must be said, not waited out. Once the new numbering has
 * passed the checkpoint, the case can no longer be told apart from normal progress.
 */
export function checkpointAhead(p: PartitionState, cp: StoredCheckpoint | undefined): CheckpointAhead | undefined {
  if (cp?.sequenceNumber === undefined) return undefined;
  // A hub that never held an event reports -1; one whose events all expired keeps its last number.
  const last = p.lastEnqueuedSequenceNumber;
  if (cp.sequenceNumber <= last) return undefined;
  return { partitionId: p.partitionId, checkpointSequenceNumber: cp.sequenceNumber, lastEnqueuedSequenceNumber: last };
}

/** Pure: the command that puts checkpoints ahead of their partition back to its start (and no others). */
export function recreatedHubFix(o: { hub: string; consumerGroup: string; container: string }): string {
  return `hubsink checkpoints rewind --hub ${o.hub} --consumer-group '${o.consumerGroup}' --container ${o.container} --recreated`;
}

/** Pure: one line for a log or a report: what is wrong with the partition and what fixes it. */
export function describeCheckpointAhead(a: CheckpointAhead, o: { hub: string; consumerGroup: string; container: string }): string {
  const last = a.lastEnqueuedSequenceNumber < 0 ? 'the partition has held no event yet' : `its last event is ${a.lastEnqueuedSequenceNumber}`;
  return (
    `${o.hub} partition ${a.partitionId}: the checkpoint of consumer group ${o.consumerGroup} is at sequence ${a.checkpointSequenceNumber}, but ${last}: ` +
    `the hub was deleted and created again (its numbering restarted at 0), so events up to ${a.checkpointSequenceNumber} would be skipped. ` +
    `Stop the consumers, then run: ${recreatedHubFix(o)}`
  );
}

/**
 * Pure: the lag of one partition. Events before `beginningSequenceNumber` have expired, so a
 * checkpoint older than that counts only what is left. Without a checkpoint a consumer starts at its
 * initial position, usually the start, so everything retained is counted and the row says so.
 */
export function lagOf(p: PartitionState, cp: StoredCheckpoint | undefined): LagRow {
  const row: LagRow = {
    partitionId: p.partitionId,
    lastEnqueuedSequenceNumber: p.isEmpty ? null : p.lastEnqueuedSequenceNumber,
    lastEnqueuedOnUtc: p.isEmpty ? null : p.lastEnqueuedOnUtc,
    lag: null,
  };
  if (cp) row.checkpoint = cp;
  if (checkpointAhead(p, cp)) {
    // Not a lag: the consumer would skip, not read, what lies between. Unknown until rewound.
    row.note = 'checkpoint is ahead of the last event: the hub was re-created? (checkpoints rewind --recreated)';
    return row;
  }
  if (p.isEmpty) {
    row.lag = 0;
    if (!cp) row.note = 'no checkpoint';
    return row;
  }
  const retained = p.lastEnqueuedSequenceNumber - p.beginningSequenceNumber + 1;
  if (!cp) {
    row.lag = retained;
    row.note = 'no checkpoint: counted from the oldest retained event';
    return row;
  }
  if (cp.sequenceNumber === undefined) {
    row.note = 'checkpoint has no sequence number';
    return row;
  }
  row.lag = Math.min(retained, p.lastEnqueuedSequenceNumber - cp.sequenceNumber);
  if (cp.sequenceNumber < p.beginningSequenceNumber - 1) row.note = 'events after the checkpoint have expired';
  return row;
}

/**
 * Pure: lag of one partition for a consumer that may know more than its checkpoint: last enqueued
 * minus the last sequence number it handled (`processed`). Without one (the Function App, which
 * sees only the host's checkpoints, or a runner before its first batch on the partition) it is
 * `lagOf` the checkpoint: a batch stuck in retries must show as lag, not as nothing.
 */
export function partitionLag(p: PartitionState, processed: number | undefined, checkpoint: StoredCheckpoint | undefined): number | null {
  if (processed === undefined) return lagOf(p, checkpoint).lag;
  if (p.isEmpty) return 0;
  return Math.max(0, p.lastEnqueuedSequenceNumber - processed);
}

/** What the lag gauge shows for a partition; `ahead` flags a checkpoint past its last event. */
export interface LagReading {
  /** Negative when `ahead`: last enqueued minus the checkpoint, so the gauge itself tells it apart. */
  lag: number;
  ahead?: CheckpointAhead;
}

/**
 * Pure: the lag gauge's reading of one partition. A checkpoint ahead of the partition (a re-created
 * hub) is flagged, whatever the consumer handled: `partitionLag` alone counts no lag there (nothing
 * new to read), which an alert on lag would take for a healthy consumer while the partition is held
 * or about to be skipped. The checkpoint must have been read before the partition's properties:
 * sequence numbers only grow, so then only a re-created hub puts it ahead.
 */
export function lagReading(p: PartitionState, processed: number | undefined, checkpoint: StoredCheckpoint | undefined): LagReading | null {
  const ahead = checkpointAhead(p, checkpoint);
  if (ahead) return { lag: ahead.lastEnqueuedSequenceNumber - ahead.checkpointSequenceNumber, ahead };
  const lag = partitionLag(p, processed, checkpoint);
  return lag === null ? null : { lag };
}

/** The position a rewind computed for one partition: just before `first`, or the partition's start. */
export type RewindTarget =
  | { kind: 'start' }
  | { kind: 'before'; sequenceNumber: number; offset: string; first: { sequenceNumber: number; enqueuedTime: Date } }
  | { kind: 'nothing-after' };

export type RewindAction =
  | { partitionId: string; action: 'write'; sequenceNumber: number; offset: string; previous?: StoredCheckpoint; reprocess: number | null }
  | { partitionId: string; action: 'keep'; reason: string; previous?: StoredCheckpoint };

/**
 * Pure: what to do with one partition. A rewind never moves a checkpoint forward: that would skip
 * events nobody has processed. Positions are compared by sequence number (offsets are opaque).
 */
export function planRewind(p: PartitionState, target: RewindTarget, previous: StoredCheckpoint | undefined): RewindAction {
  const base = { partitionId: p.partitionId, ...(previous ? { previous } : {}) };
  if (target.kind === 'nothing-after') {
    return { ...base, action: 'keep', reason: p.isEmpty ? 'partition is empty' : 'no event at or after the time' };
  }
  const seq = target.kind === 'start' ? START_SEQUENCE : target.sequenceNumber;
  const offset = target.kind === 'start' ? START_OFFSET : target.offset;
  if (previous && previous.sequenceNumber === undefined) {
    // Its position is unknown (resolveCheckpoint could not place its offset): writing could move it forward.
    return { ...base, action: 'keep', reason: `checkpoint has offset ${previous.offset ?? '(none)'} but no sequence number, and the hub could not place it` };
  }
  if (previous?.sequenceNumber !== undefined && previous.sequenceNumber <= seq) {
    return { ...base, action: 'keep', reason: `checkpoint (sequence ${previous.sequenceNumber}) is already at or before the target` };
  }
  // Events between the new checkpoint and the old one are read again; expired ones are not.
  const from = Math.max(seq, p.beginningSequenceNumber - 1);
  const reprocess = previous?.sequenceNumber !== undefined && !p.isEmpty ? Math.max(0, Math.min(previous.sequenceNumber, p.lastEnqueuedSequenceNumber) - from) : null;
  return { ...base, action: 'write', sequenceNumber: seq, offset, reprocess };
}

// ---------------------------------------------------------------------------------------------
// Finding positions in a partition (reads the hub)

export interface EventAt {
  sequenceNumber: number;
  offset: string;
  enqueuedTime: Date;
}

/**
 * The first event at `position` in one partition, or undefined when none arrives within
 * `waitSeconds`. Reads with the caller's client: use a consumer group no epoch (owner-level) reader
 * holds, or the service refuses the link.
 */
export function firstEventAt(consumer: EventHubConsumerClient, partitionId: string, position: EventPosition, waitSeconds: number): Promise<EventAt | undefined> {
  return new Promise<EventAt | undefined>((resolve, reject) => {
    let done = false;
    // Both paths end the subscription; the guard keeps a late callback from settling twice.
    const finish = (fn: () => void): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sub.close().then(fn, fn);
    };
    const timer = setTimeout(() => finish(() => reject(new Error(`partition ${partitionId}: no answer from the hub within ${waitSeconds * 4 + 10} s`))), (waitSeconds * 4 + 10) * 1000);
    const sub = consumer.subscribe(
      partitionId,
      {
        processEvents: (events) => {
          const [e] = events;
          finish(() => resolve(e ? { sequenceNumber: e.sequenceNumber, offset: String(e.offset), enqueuedTime: e.enqueuedTimeUtc } : undefined));
          return Promise.resolve();
        },
        processError: (err) => {
          finish(() => reject(err instanceof Error ? err : new Error(String(err))));
          return Promise.resolve();
        },
      },
      { startPosition: position, maxBatchSize: 1, maxWaitTimeInSeconds: waitSeconds, skipParsingBodyAsJson: true },
    );
  });
}

/**
 * The rewind target for `time` in one partition: just before the first event enqueued at or after
 * it, which is what a consumer starting "from enqueued time" would read first. The predecessor is
 * read for its offset, since offsets cannot be computed.
 */
export async function rewindTargetAt(consumer: EventHubConsumerClient, p: PartitionState, time: Date, waitSeconds = 5): Promise<RewindTarget> {
  if (p.isEmpty || time.getTime() > p.lastEnqueuedOnUtc.getTime()) return { kind: 'nothing-after' };
  // The service's enqueued-time filter is exclusive and counts in milliseconds.
  const first = await firstEventAt(consumer, p.partitionId, { enqueuedOn: new Date(time.getTime() - 1) }, waitSeconds);
  if (!first) throw new Error(`partition ${p.partitionId}: the last event is newer than ${time.toISOString()} but none was delivered`);
  if (first.sequenceNumber <= p.beginningSequenceNumber) return { kind: 'start' };
  const prev = await firstEventAt(consumer, p.partitionId, { sequenceNumber: first.sequenceNumber - 1, isInclusive: true }, waitSeconds);
  // The predecessor may have expired in between: then the first event is the start.
  if (!prev || prev.sequenceNumber > first.sequenceNumber - 1) return { kind: 'start' };
  if (prev.sequenceNumber !== first.sequenceNumber - 1) throw new Error(`partition ${p.partitionId}: asked for sequence ${first.sequenceNumber - 1}, got ${prev.sequenceNumber}`);
  return { kind: 'before', sequenceNumber: prev.sequenceNumber, offset: prev.offset, first: { sequenceNumber: first.sequenceNumber, enqueuedTime: first.enqueuedTime } };
}

/**
 * A checkpoint with an offset but no sequence number (the .NET processor of the Functions host may
 * write it so) gets its sequence number from the hub: the event at that offset. When that event has
 * expired, the checkpoint lies before everything retained. Offsets stay opaque: they are only
 * handed back to the hub and compared for equality. Returns the checkpoint unchanged when it cannot
 * be placed; planRewind then keeps it.
 */
export async function resolveCheckpoint(consumer: EventHubConsumerClient, p: PartitionState, cp: StoredCheckpoint, waitSeconds = 5): Promise<StoredCheckpoint> {
  if (cp.sequenceNumber !== undefined || cp.offset === undefined) return cp;
  if (cp.offset === START_OFFSET) return { ...cp, sequenceNumber: START_SEQUENCE };
  if (!p.isEmpty && cp.offset === p.lastEnqueuedOffset) return { ...cp, sequenceNumber: p.lastEnqueuedSequenceNumber };
  if (p.isEmpty) return cp;
  let at: EventAt | undefined;
  try {
    at = await firstEventAt(consumer, p.partitionId, { offset: cp.offset, isInclusive: true }, waitSeconds);
  } catch {
    return cp;
  }
  if (!at) return cp;
  if (at.offset === cp.offset) return { ...cp, sequenceNumber: at.sequenceNumber };
  // The hub started elsewhere: the checkpointed event is gone, so the consumer resumes at the oldest one.
  if (at.sequenceNumber <= p.beginningSequenceNumber) return { ...cp, sequenceNumber: p.beginningSequenceNumber - 1 };
  return cp;
}

export async function partitionStates(consumer: EventHubConsumerClient): Promise<PartitionState[]> {
  const ids = await consumer.getPartitionIds();
  const out: PartitionState[] = [];
  for (const id of ids) {
    const p = await consumer.getPartitionProperties(id);
    out.push({
      partitionId: p.partitionId,
      beginningSequenceNumber: p.beginningSequenceNumber,
      lastEnqueuedSequenceNumber: p.lastEnqueuedSequenceNumber,
      lastEnqueuedOffset: String(p.lastEnqueuedOffset),
      lastEnqueuedOnUtc: p.lastEnqueuedOnUtc,
      isEmpty: p.isEmpty,
    });
  }
  return out;
}
