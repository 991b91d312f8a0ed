/**
 * Sends a generated stream to an Event Hub. Events are packed per partition key (the tenant id, so
 * a storefront's events stay ordered on one partition) with createBatch/tryAdd, which respects the
 * hub's size limit; batches of different keys go out concurrently, those of one key in order.
 * An optional rate limit paces generation in small ticks.
 */
import type { EventDataBatch, EventHubProducerClient } from '@azure/event-hubs';
import type { EventGenerator, GeneratedEvent } from './generator.js';

/** The part of the producer the sender uses. */
export type BatchProducer = Pick<EventHubProducerClient, 'createBatch' | 'sendBatch'>;

export interface SendOptions {
  /** Stop after this many events; undefined = until `signal` aborts. */
  count?: number;
  /** Events per second; undefined = as fast as the hub accepts them. */
  rate?: number;
  signal?: AbortSignal;
  /** Called after each tick with the number of events accepted by the hub so far. */
  onProgress?: (sent: number) => void;
  /** Called with every event once the hub accepted it (tests use it as the ground truth). */
  onSent?: (events: readonly GeneratedEvent[]) => void;
  /** Events generated per tick at most. */
  tickEvents?: number;
  /** Keys sent concurrently at most. */
  concurrency?: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export interface SendResult {
  sent: number;
  batches: number;
  elapsedMs: number;
}

const realSleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Pure: how many events a rate-limited sender may generate now. */
export function allowance(rate: number | undefined, elapsedMs: number, generated: number, tickEvents: number, remaining: number): number {
  const budget = rate === undefined ? tickEvents : Math.floor((rate * elapsedMs) / 1000) - generated;
  return Math.max(0, Math.min(budget, tickEvents, remaining));
}

async function mapLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let i = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (i < items.length) {
      const item = items[i++] as T;
      await fn(item);
    }
  });
  await Promise.all(workers);
}

export async function sendGenerated(producer: BatchProducer, gen: EventGenerator, opts: SendOptions = {}): Promise<SendResult> {
  const now = opts.now ?? Date.now;
  const sleep = opts.sleep ?? realSleep;
  const tickEvents = opts.tickEvents ?? (opts.rate !== undefined ? Math.max(1, Math.min(2000, Math.ceil(opts.rate / 10))) : 2000);
  const concurrency = opts.concurrency ?? 8;
  if (opts.rate !== undefined && !(opts.rate > 0)) throw new RangeError('rate must be positive');
  const started = now();
  let generated = 0;
  let sent = 0;
  let batches = 0;
  const limit = opts.count ?? Number.POSITIVE_INFINITY;

  while (generated < limit && !opts.signal?.aborted) {
    const n = allowance(opts.rate, now() - started, generated, tickEvents, limit - generated);
    if (n === 0) {
      // Wait for the next event to fall due, in short steps so an abort is noticed quickly.
      const due = opts.rate ? ((generated + 1) * 1000) / opts.rate - (now() - started) : 10;
      await sleep(Math.max(5, Math.min(100, due)));
      continue;
    }
    // Per key: the batches to send, in order, and the events each holds.
    const perKey = new Map<string, { batch: EventDataBatch; events: GeneratedEvent[] }[]>();
    for (let i = 0; i < n; i++) {
      const ev = gen.next();
      generated++;
      let list = perKey.get(ev.partitionKey);
      if (!list) perKey.set(ev.partitionKey, (list = []));
      let last = list[list.length - 1];
      if (!last) {
        last = { batch: await producer.createBatch({ partitionKey: ev.partitionKey }), events: [] };
        list.push(last);
      }
      const data = { body: ev.body, contentType: 'application/json' };
      if (!last.batch.tryAdd(data)) {
        last = { batch: await producer.createBatch({ partitionKey: ev.partitionKey }), events: [] };
        list.push(last);
        if (!last.batch.tryAdd(data)) throw new Error(`a generated event of ${ev.body.length} bytes exceeds the hub's maximum message size`);
      }
      last.events.push(ev);
    }
    await mapLimit([...perKey.values()], concurrency, async (list) => {
      for (const { batch, events } of list) {
        await producer.sendBatch(batch);
        sent += events.length;
        batches++;
        opts.onSent?.(events);
      }
    });
    opts.onProgress?.(sent);
  }
  return { sent, batches, elapsedMs: now() - started };
}
