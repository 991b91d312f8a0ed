/**
 * `hubsink dlq replay-hub`: reads the dead-letter hub itself with a consumer group of its own
 * (`hubsink-replay`, never the app's), and sends every dead letter through today's validation and
 * write path (processDeadLetters in `replay` mode): what is valid is upserted (idempotent), parked rows
 * of what is now written are marked replayed, what still fails is parked.
 *
 * Progress is kept as checkpoints of that consumer group, in the same blob layout as every other
 * consumer (so `hubsink checkpoints show` reads it), written after each batch is safely handled.
 * An interrupted replay therefore resumes after the last handled batch: each event is handled once
 * (a batch cut short by a crash is handled again, which the idempotent writes make harmless).
 *
 * It is a one-shot tool, not a balanced processor: it reads every partition itself, without owner
 * level, up to the last event each partition held when the replay started.
 */
import { earliestEventPosition, type EventHubConsumerClient, type EventPosition, type ReceivedEventData } from '@azure/event-hubs';
import type { ContainerClient } from '@azure/storage-blob';
import { processDeadLetters, type DeadLetterCounts, type DeadLetterDeps } from './process.js';
import { describeError } from '../pipeline/classify.js';
import { explainServiceError } from '../hubs/explain.js';
import { normalizeReceivedEvents } from '../pipeline/normalize.js';
import { PARK_REASONS, countsFor, type ParkReason } from '../pipeline/types.js';
import {
  partitionStates,
  readCheckpoints,
  rewindTargetAt,
  START_OFFSET,
  START_SEQUENCE,
  writeCheckpoint,
  type CheckpointScope,
  type PartitionState,
  type StoredCheckpoint,
} from '../hubs/checkpoints.js';
import { HubsinkError } from '../errors.js';

export type ReplayFrom = { kind: 'start' } | { kind: 'time'; time: Date };

export interface ReplayHubOptions {
  /** A client on the dead-letter hub with the replay consumer group, without a checkpoint store. */
  consumer: EventHubConsumerClient;
  /** The consumer group `consumer` was made with (the client does not expose it). */
  consumerGroup: string;
  container: ContainerClient;
  deps: DeadLetterDeps;
  /** Where to begin when there is no earlier replay to resume (or with `reset`). */
  from?: ReplayFrom;
  /** Start over at `from`, forgetting an earlier replay's progress. */
  reset?: boolean;
  batchSize: number;
  /** Stop after this many events (the rest stays for the next run). */
  limit?: number;
  signal?: AbortSignal;
  /** Consecutive empty waits (of `waitSeconds`) after which a partition that should have events is given up. */
  maxIdleWaits?: number;
  waitSeconds?: number;
  onPlan?: (plans: readonly PartitionPlan[]) => void;
  onProgress?: (n: number) => void;
  log?: (message: string) => void;
}

export interface PartitionPlan {
  partitionId: string;
  /** Where this run starts: after this sequence number. */
  afterSequence: number;
  /** The last event this run reads (the partition's last event when the replay started). */
  endSequence: number;
  events: number;
  resumed: boolean;
}

/** The summary's count per parked reason (its JSON names stay as they were). */
export const PARKED_FIELD = { invalid: 'parkedInvalid', rejected: 'parkedRejected' } as const satisfies Record<ParkReason, string>;

export interface ReplayHubSummary extends Omit<DeadLetterCounts, 'parked'>, Record<(typeof PARKED_FIELD)[ParkReason], number> {
  plans: PartitionPlan[];
  /** Every partition reached its end. */
  complete: boolean;
  stoppedBy?: string;
}

export class ReplayUsageError extends HubsinkError {
  readonly kind = 'usage';
  override name = 'ReplayUsageError';
}

function positionOf(cp: StoredCheckpoint): EventPosition {
  if (cp.offset !== undefined) return { offset: cp.offset };
  if (cp.sequenceNumber !== undefined) return { sequenceNumber: cp.sequenceNumber };
  return earliestEventPosition;
}

/** Decides each partition's start, writing the starting checkpoint so an interruption can resume. */
async function plan(
  opts: ReplayHubOptions,
  scope: CheckpointScope,
  states: readonly PartitionState[],
): Promise<{ plan: PartitionPlan; position: EventPosition }[]> {
  const checkpoints = await readCheckpoints(opts.container, scope);
  const resumable = states.filter((p) => checkpoints.get(p.partitionId)?.sequenceNumber !== undefined).length;
  if (opts.from && !opts.reset && resumable > 0) {
    // Resuming ignores where to start: saying so beats reading from somewhere the user did not ask for.
    throw new ReplayUsageError(
      `an earlier replay with consumer group ${scope.consumerGroup} has progress on ${resumable} partition(s), and resuming it ignores ` +
        `${opts.from.kind === 'start' ? '--from-start' : '--from'}: run without it to resume, or add --reset to start over there`,
    );
  }
  const out: { plan: PartitionPlan; position: EventPosition }[] = [];
  for (const p of states) {
    const cp = checkpoints.get(p.partitionId);
    const end = p.isEmpty ? p.beginningSequenceNumber - 1 : p.lastEnqueuedSequenceNumber;
    let after: number;
    let position: EventPosition;
    let resumed = false;
    if (cp && !opts.reset && cp.sequenceNumber !== undefined) {
      after = cp.sequenceNumber;
      position = positionOf(cp);
      resumed = true;
    } else {
      if (!opts.from) throw new ReplayUsageError('no earlier replay to resume on this hub and consumer group: give --from TIME or --from-start');
      let start: { sequenceNumber: number; offset: string };
      if (opts.from.kind === 'start') start = { sequenceNumber: START_SEQUENCE, offset: START_OFFSET };
      else {
        const t = await rewindTargetAt(opts.consumer, p, opts.from.time);
        if (t.kind === 'before') start = { sequenceNumber: t.sequenceNumber, offset: t.offset };
        else if (t.kind === 'start') start = { sequenceNumber: START_SEQUENCE, offset: START_OFFSET };
        else if (p.isEmpty) start = { sequenceNumber: START_SEQUENCE, offset: START_OFFSET };
        // Nothing at or after the time: done before it began.
        else start = { sequenceNumber: p.lastEnqueuedSequenceNumber, offset: p.lastEnqueuedOffset };
      }
      await writeCheckpoint(opts.container, scope, p.partitionId, start);
      after = start.sequenceNumber;
      position = start.offset === START_OFFSET ? earliestEventPosition : { offset: start.offset };
    }
    const from = Math.max(after, p.beginningSequenceNumber - 1);
    out.push({ plan: { partitionId: p.partitionId, afterSequence: after, endSequence: end, events: Math.max(0, end - from), resumed }, position });
  }
  return out;
}

export async function replayHub(opts: ReplayHubOptions): Promise<ReplayHubSummary> {
  const log = opts.log ?? (() => undefined);
  const consumer = opts.consumer;
  const scope: CheckpointScope = {
    fullyQualifiedNamespace: consumer.fullyQualifiedNamespace,
    eventHubName: consumer.eventHubName,
    consumerGroup: opts.consumerGroup,
  };
  const states = await partitionStates(consumer);
  const planned = await plan(opts, scope, states);
  opts.onPlan?.(planned.map((p) => p.plan));
  const summary: ReplayHubSummary = {
    received: 0,
    undecodable: 0,
    rewritten: 0,
    inserted: 0,
    duplicates: 0,
    ...countsFor(PARK_REASONS.map((r) => PARKED_FIELD[r])),
    alreadyParked: 0,
    markedReplayed: 0,
    plans: planned.map((p) => p.plan),
    complete: false,
  };
  let budget = opts.limit ?? Number.POSITIVE_INFINITY;
  const stop = new AbortController();
  const stopWith = (reason: string): void => {
    summary.stoppedBy ??= reason;
    stop.abort();
  };
  const onAbort = (): void => stopWith('interrupted');
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  if (opts.signal?.aborted) stopWith('interrupted');
  const waitSeconds = opts.waitSeconds ?? 1;
  const maxIdle = opts.maxIdleWaits ?? 60;

  const runPartition = (item: { plan: PartitionPlan; position: EventPosition }): Promise<boolean> => {
    const { plan: pp, position } = item;
    if (pp.events === 0) return Promise.resolve(true);
    let idle = 0;
    return new Promise<boolean>((resolve) => {
      let settled = false;
      const finish = (reachedEnd: boolean): void => {
        if (settled) return;
        settled = true;
        stop.signal.removeEventListener('abort', onStop);
        sub.close().then(
          () => resolve(reachedEnd),
          () => resolve(reachedEnd),
        );
      };
      // A batch in progress is finished (and checkpointed) before the partition stops.
      let busy = false;
      const onStop = (): void => {
        if (!busy) finish(false);
      };
      const handle = async (events: ReceivedEventData[]): Promise<void> => {
        busy = true;
        try {
          await handleBatch(events);
        } finally {
          busy = false;
        }
        if (stop.signal.aborted) finish(false);
      };
      const handleBatch = async (events: ReceivedEventData[]): Promise<void> => {
        if (settled) return;
        if (stop.signal.aborted || budget <= 0) return finish(false);
        const mine = events.filter((e) => e.sequenceNumber <= pp.endSequence);
        if (mine.length === 0) {
          if (events.length > 0) return finish(true);
          if (++idle >= maxIdle) {
            stopWith(`partition ${pp.partitionId}: no events for ${idle * waitSeconds} s before reaching sequence ${pp.endSequence}`);
            return finish(false);
          }
          return;
        }
        idle = 0;
        const take = mine.slice(0, Math.max(0, Math.min(mine.length, budget)));
        budget -= take.length;
        if (take.length === 0) return finish(false);
        const raws = normalizeReceivedEvents(take, { hub: scope.eventHubName, consumerGroup: scope.consumerGroup, partitionId: pp.partitionId });
        let counts: DeadLetterCounts;
        try {
          counts = await processDeadLetters(opts.deps, raws, 'replay');
        } catch (err) {
          // Not checkpointed: the next run handles this batch again.
          stopWith(`partition ${pp.partitionId} events ${take[0]?.sequenceNumber}..${take[take.length - 1]?.sequenceNumber}: ${describeError(err)}`);
          return finish(false);
        }
        const last = take[take.length - 1];
        if (last) {
          try {
            await writeCheckpoint(opts.container, scope, pp.partitionId, { sequenceNumber: last.sequenceNumber, offset: String(last.offset) });
          } catch (err) {
            // The batch is handled; without its checkpoint a later run handles it again, harmlessly.
            log(`partition ${pp.partitionId}: checkpoint at ${last.sequenceNumber} failed: ${describeError(err)}`);
          }
        }
        add(summary, counts);
        opts.onProgress?.(take.length);
        if (last && last.sequenceNumber >= pp.endSequence) return finish(true);
        if (budget <= 0) return finish(false);
      };
      const sub = consumer.subscribe(
        pp.partitionId,
        {
          processEvents: handle,
          processError: (err) => {
            const e = explainServiceError(err);
            // What no retry fixes (a consumer group deleted, a key revoked) stops the replay instead of repeating forever.
            if (!e.retryable) {
              stopWith(`partition ${pp.partitionId}: ${e.message}`);
              finish(false);
            } else log(`partition ${pp.partitionId}: ${describeError(err)}`);
            return Promise.resolve();
          },
        },
        { startPosition: position, maxBatchSize: opts.batchSize, maxWaitTimeInSeconds: waitSeconds, skipParsingBodyAsJson: true },
      );
      stop.signal.addEventListener('abort', onStop, { once: true });
    });
  };

  try {
    const reached = await Promise.all(planned.map(runPartition));
    summary.complete = reached.every(Boolean) && summary.stoppedBy === undefined;
    if (!summary.complete && summary.stoppedBy === undefined && budget <= 0) summary.stoppedBy = `stopped after --limit ${opts.limit}`;
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
  }
  return summary;
}

function add(s: ReplayHubSummary, c: DeadLetterCounts): void {
  s.received += c.received;
  s.undecodable += c.undecodable;
  s.rewritten += c.rewritten;
  s.inserted += c.inserted;
  s.duplicates += c.duplicates;
  for (const r of PARK_REASONS) s[PARKED_FIELD[r]] += c.parked[r];
  s.alreadyParked += c.alreadyParked;
  s.markedReplayed += c.markedReplayed;
}
