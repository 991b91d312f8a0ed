/**
 * One Event Hub consumed with a checkpoint store: partitions are balanced between every process that
 * uses the same store, hub and consumer group, and a partition's checkpoint moves only after its
 * batch was handled (written, or dead-lettered). A failing batch is retried in-process for as long
 * as this process owns the partition; it is never skipped.
 *
 * Why the order of shutdown matters: the SDK's subscription.close() stops the partition pumps
 * without waiting for a processEvents call in progress, then gives up ownership. So stop() first
 * lets the attempts in progress finish (and checkpoint), then closes the subscription.
 *
 * With `prepare`, a partition's batches overlap: the SDK's pump hands over batch N+1 as soon as batch
 * N's write has begun, so N+1 is decoded while N is written. Writes and checkpoints still run one
 * at a time, in order, per partition, and a batch is written only after every batch before it was
 * written (or it is abandoned too), so a checkpoint never passes an unwritten event. The bound is
 * one batch ahead: processEvents for N+1 returns only once N+1's own write has begun.
 */
import {
  earliestEventPosition,
  latestEventPosition,
  type CloseReason,
  type EventHubConsumerClient,
  type EventPosition,
  type PartitionContext,
  type ReceivedEventData,
  type Subscription,
} from '@azure/event-hubs';
import { describeError } from '../pipeline/classify.js';
import type { Logger } from '../operator/log.js';
import { retryForever } from './retry.js';

export interface CheckpointingConsumerOptions<R, P = never> {
  client: EventHubConsumerClient;
  /** For log lines: 'ingest', 'deadletter'. */
  name: string;
  /**
   * Handles one batch; resolves when it is safe to checkpoint past it, throws otherwise. `prepared`
   * is what `prepare` made of the batch, given to the first attempt only: a retry starts afresh.
   */
  handle: (events: ReceivedEventData[], partitionId: string, prepared?: P) => Promise<R>;
  /**
   * The CPU part of handling a batch (decoding, validating), run while the partition's previous batch
   * is still being written. Pure: it must not write anything. A throw here is ignored; the attempt
   * then handles the batch from scratch and meets the error there.
   */
  prepare?: (events: ReceivedEventData[], partitionId: string) => P;
  /** Called after a batch was handled and its checkpoint written (or the write failed harmlessly). */
  onHandled?: (result: R, partitionId: string, events: readonly ReceivedEventData[], attempts: number) => void;
  onRetry?: (partitionId: string, attempt: number, err: unknown) => void;
  log: Logger;
  maxBatchSize?: number;
  maxWaitTimeInSeconds?: number;
  /** Where to start on partitions without a checkpoint. */
  startFrom?: 'earliest' | 'latest';
  retryBaseMs?: number;
  retryCapMs?: number;
  /**
   * Checked when a partition is claimed: why its checkpoint cannot be resumed from (a checkpoint
   * ahead of the partition), or undefined. Such a partition is held: nothing of it is handled or
   * checkpointed, so nothing is skipped, until an operator fixes the checkpoint and restarts.
   */
  vetPartition?: (partitionId: string) => Promise<string | undefined>;
}

/** How often a held partition's reason is logged again while events keep arriving for it. */
const HELD_LOG_EVERY_MS = 60_000;

export class CheckpointingConsumer<R, P = never> {
  private subscription: Subscription | undefined;
  /**
   * Per partition, the last batch queued: resolves true once it was handled and checkpointed, false
   * when it was abandoned (then every batch after it is abandoned too, unwritten and unacknowledged).
   * Replaced when the partition is claimed again.
   */
  private readonly lanes = new Map<string, Promise<boolean>>();
  private readonly stopController = new AbortController();
  private readonly partitions = new Map<string, AbortController>();
  private readonly inFlight = new Set<Promise<unknown>>();
  /** Partitions held because vetPartition refused their checkpoint, with the reason and when it was last logged. */
  private readonly held = new Map<string, { reason: string; loggedAt: number }>();
  /** SDK-level errors (receive failures, checkpoint store errors), for status lines. */
  errors = 0;

  constructor(private readonly opts: CheckpointingConsumerOptions<R, P>) {}

  get ownedPartitions(): string[] {
    return [...this.partitions.keys()].sort((a, b) => Number(a) - Number(b) || a.localeCompare(b));
  }

  /** Why partitions are held (see vetPartition), by partition. */
  get heldPartitions(): { partitionId: string; reason: string }[] {
    return [...this.held].map(([partitionId, h]) => ({ partitionId, reason: h.reason }));
  }

  get busy(): number {
    return this.inFlight.size;
  }

  start(): void {
    if (this.subscription) throw new Error(`${this.opts.name} consumer already started`);
    const startPosition: EventPosition = this.opts.startFrom === 'latest' ? latestEventPosition : earliestEventPosition;
    this.subscription = this.opts.client.subscribe(
      {
        processInitialize: async (ctx) => {
          this.partitions.get(ctx.partitionId)?.abort();
          this.partitions.set(ctx.partitionId, new AbortController());
          this.lanes.delete(ctx.partitionId);
          this.opts.log('info', `${this.opts.name}: claimed partition ${ctx.partitionId}`);
          if (!this.opts.vetPartition) return;
          try {
            const reason = await this.opts.vetPartition(ctx.partitionId);
            if (reason === undefined) this.held.delete(ctx.partitionId);
            else {
              this.held.set(ctx.partitionId, { reason, loggedAt: Date.now() });
              this.opts.log('error', `${this.opts.name}: holding partition ${ctx.partitionId} (nothing read from it is written or checkpointed): ${reason}`);
            }
          } catch (err) {
            // The check is a guard, not a precondition: a storage or management hiccup must not stop ingest.
            this.opts.log('warn', `${this.opts.name}: partition ${ctx.partitionId}: could not compare its checkpoint with the hub: ${describeError(err)}`);
          }
        },
        processClose: (reason: CloseReason, ctx) => {
          // The pump is gone (ownership lost, or a receive error the SDK does not retry): a batch still
          // retrying here belongs to whoever owns the partition next, which starts from the checkpoint.
          const ctl = this.partitions.get(ctx.partitionId);
          if (ctl && !this.stopController.signal.aborted) ctl.abort();
          this.partitions.delete(ctx.partitionId);
          this.opts.log('info', `${this.opts.name}: released partition ${ctx.partitionId} (${String(reason)})`);
          return Promise.resolve();
        },
        processEvents: (events, ctx) => this.processEvents(events, ctx),
        processError: (err, ctx) => {
          this.errors++;
          this.opts.log('warn', `${this.opts.name}: partition ${ctx.partitionId || '-'}: ${describeError(err)}`);
          return Promise.resolve();
        },
      },
      {
        startPosition,
        maxBatchSize: this.opts.maxBatchSize ?? 300,
        maxWaitTimeInSeconds: this.opts.maxWaitTimeInSeconds ?? 1,
        // Keep the exact body bytes: the SDK would otherwise JSON-parse bodies, and a dead letter or a
        // derived eventId must see what the producer sent.
        skipParsingBodyAsJson: true,
      },
    );
  }

  private processEvents(events: ReceivedEventData[], ctx: PartitionContext): Promise<void> {
    if (events.length === 0 || this.stopController.signal.aborted) return Promise.resolve();
    const held = this.held.get(ctx.partitionId);
    if (held) {
      if (Date.now() - held.loggedAt >= HELD_LOG_EVERY_MS) {
        held.loggedAt = Date.now();
        this.opts.log('error', `${this.opts.name}: still holding partition ${ctx.partitionId}: ${held.reason}`);
      }
      return Promise.resolve();
    }
    if (this.opts.prepare) return this.pipelined(events, ctx, this.opts.prepare);
    const p = this.handleWithRetry(events, ctx, undefined, () => undefined).then(() => undefined).finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
    return p;
  }

  /**
   * Prepares the batch now (the previous one may still be writing), queues its write behind the
   * previous one's, and resolves when that write has begun (or the batch was abandoned), so the SDK
   * fetches the next batch meanwhile but never runs more than one batch ahead.
   */
  private pipelined(events: ReceivedEventData[], ctx: PartitionContext, prepare: (events: ReceivedEventData[], partitionId: string) => P): Promise<void> {
    let prepared: P | undefined;
    try {
      prepared = prepare(events, ctx.partitionId);
    } catch {
      prepared = undefined;
    }
    const previous = this.lanes.get(ctx.partitionId) ?? Promise.resolve(true);
    let begun!: () => void;
    const writeBegun = new Promise<void>((resolve) => (begun = resolve));
    const p: Promise<boolean> = previous
      .then((previousOk) => {
        if (!previousOk || this.stopController.signal.aborted) {
          const last = events[events.length - 1];
          this.opts.log('debug', `${this.opts.name}: partition ${ctx.partitionId} events ${events[0]?.sequenceNumber ?? '?'}..${last?.sequenceNumber ?? '?'} not written (an earlier batch was left unacknowledged); they will be delivered again`);
          return false;
        }
        return this.handleWithRetry(events, ctx, prepared, begun);
      })
      .finally(() => {
        begun();
        this.inFlight.delete(p);
      });
    this.inFlight.add(p);
    this.lanes.set(ctx.partitionId, p);
    return writeBegun;
  }

  private async handleWithRetry(events: ReceivedEventData[], ctx: PartitionContext, prepared: P | undefined, begun: () => void): Promise<boolean> {
    const partitionSignal = this.partitions.get(ctx.partitionId)?.signal;
    const combined = anySignal([this.stopController.signal, ...(partitionSignal ? [partitionSignal] : [])]);
    try {
      return await this.handleUntil(events, ctx, combined.signal, prepared, begun);
    } finally {
      combined.dispose();
    }
  }

  /** True once the batch was handled (and its checkpoint attempted), false when it was abandoned. */
  private async handleUntil(events: ReceivedEventData[], ctx: PartitionContext, signal: AbortSignal, prepared: P | undefined, begun: () => void): Promise<boolean> {
    const first = events[0];
    const last = events[events.length - 1];
    const range = `${first?.sequenceNumber ?? '?'}..${last?.sequenceNumber ?? '?'}`;
    let ahead = prepared;
    const outcome = await retryForever(() => {
      const p = ahead;
      ahead = undefined;
      const attempt = p === undefined ? this.opts.handle(events, ctx.partitionId) : this.opts.handle(events, ctx.partitionId, p);
      begun();
      return attempt;
    }, {
      signal,
      ...(this.opts.retryBaseMs !== undefined ? { baseMs: this.opts.retryBaseMs } : {}),
      ...(this.opts.retryCapMs !== undefined ? { capMs: this.opts.retryCapMs } : {}),
      onFailure: (attempt, err, delay) => {
        this.opts.onRetry?.(ctx.partitionId, attempt, err);
        this.opts.log(
          'error',
          `${this.opts.name}: partition ${ctx.partitionId} events ${range} (${events.length}) attempt ${attempt} failed, not checkpointing; retrying in ${delay} ms: ${describeError(err)}`,
        );
      },
    });
    if (!outcome.ok) {
      this.opts.log('warn', `${this.opts.name}: partition ${ctx.partitionId} events ${range} left unacknowledged (${this.stopController.signal.aborted ? 'shutting down' : 'partition released'}); they will be delivered again`);
      return false;
    }
    if (last) {
      try {
        await ctx.updateCheckpoint(last);
      } catch (err) {
        // The batch is safe in the database; a missed checkpoint only means it is delivered again.
        this.errors++;
        this.opts.log('warn', `${this.opts.name}: partition ${ctx.partitionId} checkpoint at ${last.sequenceNumber} failed (the batch will be redelivered, harmlessly): ${describeError(err)}`);
      }
    }
    this.opts.onHandled?.(outcome.value, ctx.partitionId, events, outcome.attempts);
    return true;
  }

  /**
   * Lets attempts in progress finish (no new attempts start), then closes the subscription, which
   * gives up ownership so another instance takes the partitions at once. Bounded by `timeoutMs`.
   */
  async stop(timeoutMs = 60_000): Promise<void> {
    this.stopController.abort();
    const pending = [...this.inFlight];
    if (pending.length > 0) {
      this.opts.log('info', `${this.opts.name}: finishing ${pending.length} batch(es) in flight`);
      const settled = await Promise.race([
        Promise.allSettled(pending).then(() => true),
        new Promise<false>((resolve) => setTimeout(() => resolve(false), timeoutMs).unref()),
      ]);
      if (!settled) this.opts.log('warn', `${this.opts.name}: batches still in flight after ${timeoutMs} ms; closing anyway (they were not checkpointed)`);
    }
    if (this.subscription) {
      try {
        await this.subscription.close();
      } catch (err) {
        this.opts.log('warn', `${this.opts.name}: closing the subscription failed: ${describeError(err)}`);
      }
    }
    this.partitions.clear();
    this.lanes.clear();
  }
}

/**
 * An AbortSignal that aborts when any of `signals` does (AbortSignal.any needs Node 20.3). dispose()
 * removes its listeners: the stop signal outlives millions of batches.
 */
export function anySignal(signals: readonly AbortSignal[]): { signal: AbortSignal; dispose(): void } {
  const ctl = new AbortController();
  const abort = (): void => ctl.abort();
  for (const s of signals) {
    if (s.aborted) ctl.abort();
    else s.addEventListener('abort', abort, { once: true });
  }
  return { signal: ctl.signal, dispose: () => signals.forEach((s) => s.removeEventListener('abort', abort)) };
}
