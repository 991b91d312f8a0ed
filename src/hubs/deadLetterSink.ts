/**
 * DeadLetterSink on an Event Hub. Records are grouped by partition key (the tenant when known) so
 * a tenant's dead letters stay ordered on one partition; each group is packed into as few batches
 * as the hub's size limit allows. Any send failure propagates: the ingest function must then fail
 * so the host re-invokes the batch instead of checkpointing past events nobody has.
 *
 * Groups are sent a few at a time: a batch of a thousand tenants dead-lettered while the database is
 * down would otherwise cost a thousand sequential round trips. A failure part way re-sends some
 * records on the host's retry, which the idempotent consumers of the dead-letter hub absorb.
 *
 * A record too large for any batch (an event close to the hub's limit, plus the dead-letter
 * properties) would fail the ingest batch forever. It is first re-tried with its error text cut
 * short; if it still does not fit it goes to `onOversize` when given (e.g. parked directly), else the
 * send fails with a message that says so.
 */
import { RetryMode, type EventHubProducerClient, type RetryOptions } from '@azure/event-hubs';
import type { EventHubsConnection } from '../config.js';
import { describeError } from '../pipeline/classify.js';
import { toDeadLetterMessage, truncateUtf8, type DeadLetterMessage } from '../pipeline/deadLetterMessage.js';
import type { DeadLetterRecord, DeadLetterSink } from '../pipeline/types.js';
import { createProducer } from './clients.js';
import { HubsinkError } from '../errors.js';

/**
 * Retries of the dead-letter producer: a send fails within seconds (about 1–4 s when the hub refuses
 * connections, at most about 17 s when it does not answer) instead of the SDK's default 3 retries
 * 30 s apart (about 90 s, more with its 60 s operation timeout). The caller's own retry then governs
 * the cadence: the ingest function's retry policy (2 s doubling to 5 min), the runner's capped
 * backoff. A longer wait here would only hold the partition without retrying sooner.
 */
export const DEAD_LETTER_RETRY_OPTIONS: RetryOptions = {
  maxRetries: 2,
  retryDelayInMs: 500,
  maxRetryDelayInMs: 2_000,
  mode: RetryMode.Exponential,
  timeoutInMs: 5_000,
};

/** The producer the dead-letter sink sends with, with DEAD_LETTER_RETRY_OPTIONS. */
export function createDeadLetterProducer(conn: EventHubsConnection, hub: string, retryOptions: RetryOptions = DEAD_LETTER_RETRY_OPTIONS): Promise<EventHubProducerClient> {
  return createProducer(conn, hub, { retryOptions });
}

/** A failed send, named by its cause: the SDK's AggregateError has no message of its own. */
export class DeadLetterSendError extends HubsinkError {
  readonly kind = 'unavailable';
  override name = 'DeadLetterSendError';
}

export interface DeadLetterSinkOptions {
  /** Groups (partition keys) sent concurrently. */
  concurrency?: number;
  /** Receives records that fit in no batch; must throw if it cannot keep them. */
  onOversize?: (records: readonly DeadLetterRecord[]) => Promise<void>;
}

/** Error text kept when a record must shrink to fit. */
export const SHORT_ERROR_BYTES = 256;

export class OversizeDeadLetterError extends HubsinkError {
  readonly kind = 'failed';
  override name = 'OversizeDeadLetterError';
}

type Item = { rec: DeadLetterRecord; msg: DeadLetterMessage };

function eventOf(m: DeadLetterMessage) {
  return { body: m.body, properties: m.properties, contentType: 'application/octet-stream' };
}

export class EventHubDeadLetterSink implements DeadLetterSink {
  private readonly concurrency: number;

  constructor(
    private readonly producer: EventHubProducerClient,
    private readonly options: DeadLetterSinkOptions = {},
  ) {
    this.concurrency = Math.max(1, Math.floor(options.concurrency ?? 8));
  }

  async send(records: readonly DeadLetterRecord[]): Promise<void> {
    const groups = new Map<string, Item[]>();
    for (const rec of records) {
      const msg = toDeadLetterMessage(rec);
      const key = msg.partitionKey ?? '';
      let g = groups.get(key);
      if (!g) groups.set(key, (g = []));
      g.push({ rec, msg });
    }
    const oversize: DeadLetterRecord[] = [];
    const queue = [...groups];
    const worker = async (): Promise<void> => {
      for (let next = queue.shift(); next; next = queue.shift()) await this.sendGroup(next[0], next[1], oversize);
    };
    try {
      await Promise.all(Array.from({ length: Math.min(this.concurrency, queue.length) }, worker));
    } catch (err) {
      // Rethrown with its cause in the message: the Functions host and Application Insights record
      // only the message of what a handler throws.
      throw new DeadLetterSendError(`sending ${records.length} dead letter(s) to the dead-letter hub failed: ${describeError(err)}`, { cause: err });
    }
    if (oversize.length > 0) {
      if (!this.options.onOversize) {
        throw new OversizeDeadLetterError(
          `${oversize.length} dead-letter record(s) exceed the dead-letter hub's maximum message size (largest body ${Math.max(...oversize.map((r) => r.body.length))} bytes)`,
        );
      }
      await this.options.onOversize(oversize);
    }
  }

  private async sendGroup(key: string, items: readonly Item[], oversize: DeadLetterRecord[]): Promise<void> {
    const options = key ? { partitionKey: key } : {};
    let batch = await this.producer.createBatch(options);
    for (const { rec, msg } of items) {
      if (batch.tryAdd(eventOf(msg))) continue;
      if (batch.count > 0) {
        await this.producer.sendBatch(batch);
        batch = await this.producer.createBatch(options);
        if (batch.tryAdd(eventOf(msg))) continue;
      }
      const short = toDeadLetterMessage({ ...rec, error: truncateUtf8(rec.error, SHORT_ERROR_BYTES) });
      if (batch.tryAdd(eventOf(short))) continue;
      oversize.push(rec);
    }
    if (batch.count > 0) await this.producer.sendBatch(batch);
  }

  close(): Promise<void> {
    return this.producer.close();
  }
}
