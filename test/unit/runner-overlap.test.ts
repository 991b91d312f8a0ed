/**
 * Overlap within a partition (checkpointingConsumer.ts with `prepare`): the next batch is prepared
 * while the previous one is written, writes and checkpoints stay in order, one batch ahead at most,
 * and nothing is checkpointed past a batch that was not written. The SDK's partition pump is played
 * by a loop that, like the real one, hands over a batch only once processEvents for the previous one
 * resolved; the writer is injected and held or failed by the test.
 */
import { describe, test } from 'vitest';
import assert from 'node:assert/strict';
import type { EventHubConsumerClient, PartitionContext, ReceivedEventData, SubscriptionEventHandlers } from '@azure/event-hubs';
import { CheckpointingConsumer } from '../../src/runner/checkpointingConsumer.js';

interface Gate {
  promise: Promise<void>;
  open(): void;
  fail(err: Error): void;
}
function gate(): Gate {
  let open!: () => void;
  let fail!: (err: Error) => void;
  const promise = new Promise<void>((resolve, reject) => {
    open = resolve;
    fail = reject;
  });
  return { promise, open, fail };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
async function until(what: string, cond: () => boolean): Promise<void> {
  // A hang guard only: every condition here is reached within a few turns of the event loop.
  for (let i = 0; i < 2000 && !cond(); i++) await tick();
  assert.ok(cond(), `never happened: ${what}`);
}

/** Batch b of `size` events: sequence numbers b*size .. b*size+size-1. */
function batch(b: number, size = 3): ReceivedEventData[] {
  return Array.from({ length: size }, (_, i) => ({ sequenceNumber: b * size + i, offset: String(b * size + i), body: Buffer.from('{}'), enqueuedTimeUtc: new Date(0) }) as unknown as ReceivedEventData);
}
const lastSeq = (events: readonly ReceivedEventData[]): number => events[events.length - 1]?.sequenceNumber ?? -1;

/** A consumer on one partition with an injected writer; `pump` delivers batches as the SDK does. */
function harness(opts: { retryBaseMs?: number } = {}) {
  const log: string[] = [];
  const checkpoints: number[] = [];
  const gates = new Map<string, Gate>();
  /** The gate for attempt `attempt` of batch `b`, made on first use so the test can hold it before the write begins. */
  const gateOf = (b: number, attempt: number): Gate => {
    const key = `${b}/${attempt}`;
    let g = gates.get(key);
    if (!g) gates.set(key, (g = gate()));
    return g;
  };
  const attempts = new Map<number, number>();
  let handlers: SubscriptionEventHandlers | undefined;
  const client = {
    subscribe: (h: SubscriptionEventHandlers) => {
      handlers = h;
      return { isRunning: true, close: () => Promise.resolve() };
    },
  } as unknown as EventHubConsumerClient;
  const batchOf = (events: readonly ReceivedEventData[]): number => Math.floor((events[0]?.sequenceNumber ?? 0) / 3);
  const consumer = new CheckpointingConsumer<number, { batch: number }>({
    client,
    name: 'ingest',
    log: (level, m) => log.push(`${level} ${m}`),
    retryBaseMs: opts.retryBaseMs ?? 1,
    retryCapMs: 2,
    prepare: (events) => {
      log.push(`prepare ${batchOf(events)}`);
      return { batch: batchOf(events) };
    },
    handle: async (events, _partitionId, prepared) => {
      const b = batchOf(events);
      const n = (attempts.get(b) ?? 0) + 1;
      attempts.set(b, n);
      log.push(`write ${b} attempt ${n}${prepared ? ' prepared' : ' afresh'}`);
      await gateOf(b, n).promise;
      log.push(`written ${b}`);
      return events.length;
    },
  });
  consumer.start();
  const ctx = {
    partitionId: '0',
    consumerGroup: '$Default',
    eventHubName: 'h',
    fullyQualifiedNamespace: 'ns',
    updateCheckpoint: (ev: ReceivedEventData) => {
      checkpoints.push(ev.sequenceNumber);
      log.push(`checkpoint ${ev.sequenceNumber}`);
      return Promise.resolve();
    },
  } as unknown as PartitionContext;
  const h = (): SubscriptionEventHandlers => {
    assert.ok(handlers, 'subscribed');
    return handlers;
  };
  return {
    consumer,
    log,
    checkpoints,
    gateOf,
    claim: () => h().processInitialize?.(ctx),
    release: () => h().processClose?.('OwnershipLost' as never, ctx),
    /** Delivers batches 0..n-1 in order, each after processEvents for the previous one resolved. */
    pump: async (n: number, delivered: number[]) => {
      for (let b = 0; b < n; b++) {
        delivered.push(b);
        await h().processEvents(batch(b), ctx);
      }
    },
  };
}

describe('overlap within a partition', () => {
  test('batch N+1 is prepared while N is written; writes, then checkpoints, follow in order, one batch ahead at most', async () => {
    const t = harness();
    await t.claim();
    const delivered: number[] = [];
    const pumping = t.pump(4, delivered);
    await until('batch 1 prepared while batch 0 writes', () => t.log.includes('prepare 1'));
    await tick();
    assert.deepEqual(delivered, [0, 1], 'the pump waits: batch 2 is not handed over while 1 waits for 0');
    assert.ok(!t.log.includes('written 0'));
    assert.ok(!t.log.some((l) => l.startsWith('write 1')), 'batch 1 is not written before batch 0 is');
    assert.deepEqual(t.checkpoints, []);

    t.gateOf(0, 1).open();
    await until('batch 1 written with what was prepared', () => t.log.includes('write 1 attempt 1 prepared'));
    assert.deepEqual(t.checkpoints, [lastSeq(batch(0))]);
    await until('batch 2 prepared while batch 1 writes', () => t.log.includes('prepare 2'));
    assert.ok(!t.log.includes('written 1'));

    for (const b of [1, 2, 3]) {
      await until(`batch ${b} writing`, () => t.log.includes(`write ${b} attempt 1 prepared`));
      if (b < 3) await until(`batch ${b + 1} prepared`, () => t.log.includes(`prepare ${b + 1}`));
      t.gateOf(b, 1).open();
    }
    await pumping;
    await t.consumer.stop(10_000);
    assert.deepEqual(t.checkpoints, [2, 5, 8, 11]);
    const order = t.log.filter((l) => /^(prepare|write|written|checkpoint)/.test(l));
    assert.deepEqual(order, [
      'prepare 0', 'write 0 attempt 1 prepared',
      'prepare 1', 'written 0', 'checkpoint 2', 'write 1 attempt 1 prepared',
      'prepare 2', 'written 1', 'checkpoint 5', 'write 2 attempt 1 prepared',
      'prepare 3', 'written 2', 'checkpoint 8', 'write 3 attempt 1 prepared',
      'written 3', 'checkpoint 11',
    ]);
  });

  test('a failed write is retried afresh, and the prepared batch behind it waits: no checkpoint passes the unwritten batch', async () => {
    const t = harness();
    await t.claim();
    const pumping = t.pump(3, []);
    await until('batch 1 prepared', () => t.log.includes('prepare 1'));
    t.gateOf(0, 1).fail(new Error('database down'));
    await until('second attempt at batch 0', () => t.log.includes('write 0 attempt 2 afresh'));
    assert.ok(t.log.some((l) => /error ingest: partition 0 events 0\.\.2 \(3\) attempt 1 failed, not checkpointing/.test(l)));
    assert.deepEqual(t.checkpoints, [], 'nothing checkpointed while batch 0 is unwritten');
    assert.ok(!t.log.some((l) => l.startsWith('write 1')), 'batch 1 waits for batch 0');
    assert.ok(!t.log.includes('prepare 2'), 'one batch ahead at most');

    t.gateOf(0, 2).open();
    t.gateOf(1, 1).open();
    t.gateOf(2, 1).open();
    await pumping;
    await t.consumer.stop(10_000);
    assert.deepEqual(t.checkpoints, [2, 5, 8]);
  });

  test('stop while batch 0 writes and batch 1 waits prepared: 0 finishes and is checkpointed, 1 is neither written nor checkpointed', async () => {
    const t = harness();
    await t.claim();
    void t.pump(2, []);
    await until('batch 1 prepared', () => t.log.includes('prepare 1'));
    const stopping = t.consumer.stop(10_000);
    await tick();
    t.gateOf(0, 1).open();
    await stopping;
    assert.deepEqual(t.checkpoints, [2]);
    assert.ok(!t.log.some((l) => l.startsWith('write 1')));
  });

  test('a batch abandoned when the partition is released takes the prepared one behind it along: neither is checkpointed', async () => {
    const t = harness({ retryBaseMs: 5 });
    await t.claim();
    void t.pump(2, []);
    await until('batch 1 prepared', () => t.log.includes('prepare 1'));
    await t.release();
    t.gateOf(0, 1).fail(new Error('database down'));
    await until('batch 0 abandoned', () => t.log.some((l) => /events 0\.\.2 left unacknowledged \(partition released\)/.test(l)));
    await until('batch 1 abandoned', () => t.log.some((l) => /events 3\.\.5 not written/.test(l)));
    await t.consumer.stop(10_000);
    assert.deepEqual(t.checkpoints, []);
    assert.ok(!t.log.some((l) => l.startsWith('write 1')));
  });
});
