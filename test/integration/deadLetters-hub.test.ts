/**
 * Dead letters through a real hub: the Event Hubs dead-letter sink, the ingest handler with the
 * database down, the dead-letter hub down, and the `deadletter` handler fed the events really received
 * from the dead-letter hub (emulator + real @azure/event-hubs clients + real PostgreSQL).
 */
import { afterAll, beforeAll, describe, test } from 'vitest';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { EventHubConsumerClient, EventHubProducerClient, earliestEventPosition, type ReceivedEventData } from '@azure/event-hubs';
import { startEmulator, partitionForKey, type Emulator } from '@hubsink/eventhubs-emulator';
import { createDeadLetterProducer, EventHubDeadLetterSink, OversizeDeadLetterError } from '../../src/hubs/deadLetterSink.js';
import { parkOversize } from '../../src/deadLetters/oversize.js';
import { makeIngestHandler } from '../../src/ingest/ingestHandler.js';
import { makeDeadLetterHandler } from '../../src/deadLetters/deadLetterHandler.js';
import { fromDeadLetterMessage } from '../../src/pipeline/deadLetterMessage.js';
import { listDeadLetters } from '../../src/db/deadLetterQueries.js';
import type { DeadLetterRecord } from '../../src/pipeline/types.js';
import pg from 'pg';
import { testDatabaseUrl, uniqueName, type TestSchema } from '../support/services.js';
import { countRows, downPool, fastSleep, hostShape, invocation, readySchema, testConfig, type ReceivedLike } from '../support/deadLetters.js';

/** Hang guard for a dead-letter send the hub refuses (the SDK's default retries would take ~90 s). */
const SEND_HANG_GUARD_MS = 60_000;


/** The real producer, counting the batches it sends (the sink's batching is what is under test). */
function countingProducer(connectionString: string, hub: string): { producer: EventHubProducerClient; batches: () => number } {
  const producer = new EventHubProducerClient(connectionString, hub);
  const send = producer.sendBatch.bind(producer);
  let n = 0;
  producer.sendBatch = ((...args: Parameters<typeof send>) => {
    n++;
    return send(...args);
  }) as typeof producer.sendBatch;
  return { producer, batches: () => n };
}

/** Reads `hub` from the start until `expected` events arrived (bounded), grouped by partition. */
async function receiveAll(emu: Emulator, hub: string, expected: number, timeoutMs = 20_000): Promise<Map<string, ReceivedEventData[]>> {
  const consumer = new EventHubConsumerClient('$Default', emu.connectionString(hub), hub);
  const got = new Map<string, ReceivedEventData[]>();
  let n = 0;
  const sub = consumer.subscribe(
    {
      processEvents: (events, ctx) => {
        const list = got.get(ctx.partitionId) ?? [];
        list.push(...events);
        got.set(ctx.partitionId, list);
        n += events.length;
        return Promise.resolve();
      },
      processError: () => Promise.resolve(),
    },
    { startPosition: earliestEventPosition, maxBatchSize: 500, maxWaitTimeInSeconds: 1, skipParsingBodyAsJson: true },
  );
  try {
    const deadline = Date.now() + timeoutMs;
    while (n < expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    // A little longer, to catch any event beyond the expected count.
    const extra = Date.now() + 500;
    while (Date.now() < extra) await new Promise((r) => setTimeout(r, 25));
  } finally {
    await sub.close();
    await consumer.close();
  }
  assert.equal(n, expected, `events received from ${hub}`);
  return got;
}

function event(tenantId: number, extra: Record<string, unknown> = {}): { body: Buffer; properties: Record<string, unknown>; partitionKey: string } {
  const body = Buffer.from(JSON.stringify({ eventId: randomUUID(), tenantId, type: 'add_to_cart', occurredAt: new Date(Date.now() - 20_000).toISOString(), ...extra }));
  return { body, properties: { TenantId: String(tenantId), Source: 'shop' }, partitionKey: String(tenantId) };
}

/** An ingest batch as the host would deliver it from partition `partitionId` of the ingest hub. */
function ingestBatchOf(events: readonly { body: Buffer; properties: Record<string, unknown>; partitionKey: string }[], hub: string, partitionId: string, first: number) {
  const received: ReceivedLike[] = events.map((e, i) => ({
    body: e.body,
    properties: e.properties,
    sequenceNumber: first + i,
    offset: `x${first + i}`,
    enqueuedTimeUtc: new Date(Date.now() - 10_000 + i),
    partitionKey: e.partitionKey,
  }));
  return hostShape(received, { hub, consumerGroup: '$Default', partitionId });
}

describe('dead letters through the hub', () => {
  let emu: Emulator;
  let s: TestSchema;
  beforeAll(async () => {
    emu = await startEmulator({ opaqueOffsets: true });
    s = await readySchema('dlhub_');
  });
  afterAll(async () => {
    await s.drop();
    await emu.stop();
  });

  test('the sink batches records under the tenant as partition key, splits by size, and every record round-trips', async () => {
    const dl = uniqueName('dl');
    emu.createHub({ name: dl, partitions: 4 });
    const { producer, batches } = countingProducer(emu.connectionString(dl), dl);
    const sink = new EventHubDeadLetterSink(producer);
    try {
      const at = new Date('2026-02-03T04:05:06.789Z');
      const records: DeadLetterRecord[] = [];
      for (let i = 0; i < 60; i++) {
        const tenantId = (i % 3) + 1;
        // Every fifth body is 400 KB: four per tenant, which the 1 MiB limit splits into two batches.
        const body = i % 5 === 0 ? Buffer.alloc(400 * 1024, 0x61) : Buffer.from(JSON.stringify({ i, tenantId }));
        records.push({
          reason: i % 2 === 0 ? 'invalid' : 'transient',
          error: `problem ${i}`,
          body,
          properties: { TenantId: String(tenantId), n: i, big: 10n ** 18n, when: at, raw: Buffer.from([i]) },
          tenantId,
          source: { hub: 'clickstream', consumerGroup: '$Default', partitionId: String(i % 2), sequenceNumber: 100 + i, offset: `o${i}`, enqueuedTime: new Date(at.getTime() + i) },
          attempts: 1 + (i % 3),
          firstFailureAt: at,
          lastFailureAt: new Date(at.getTime() + 1000),
        });
      }
      // A record without a tenant goes without a partition key.
      const second = records[1];
      assert.ok(second);
      const { tenantId: _t, ...noTenant } = second;
      records.push({ ...noTenant, properties: {}, source: { ...second.source, sequenceNumber: 999 } });
      await sink.send(records);
      const got = await receiveAll(emu, dl, records.length);
      const decoded: DeadLetterRecord[] = [];
      for (const [pid, events] of got) {
        for (const e of events) {
          const d = fromDeadLetterMessage(e.body as Buffer, e.properties ?? {});
          assert.ok(d.ok, d.ok ? '' : d.error);
          decoded.push(d.record);
          if (d.record.tenantId !== undefined) {
            assert.equal(e.partitionKey, String(d.record.tenantId));
            assert.equal(pid, String(partitionForKey(String(d.record.tenantId), 4)));
          } else assert.equal(e.partitionKey ?? undefined, undefined);
        }
      }
      const bySeq = (a: DeadLetterRecord, b: DeadLetterRecord) => a.source.sequenceNumber - b.source.sequenceNumber;
      decoded.sort(bySeq);
      const expected = [...records].sort(bySeq);
      assert.equal(decoded.length, expected.length);
      for (let i = 0; i < expected.length; i++) {
        const e = expected[i];
        const d = decoded[i];
        assert.ok(e && d);
        assert.deepEqual(d.body, e.body);
        assert.equal(d.reason, e.reason);
        assert.equal(d.attempts, e.attempts);
        assert.deepEqual(d.source, e.source);
        assert.deepEqual(d.properties, e.properties);
      }
      // Three tenants with two batches each, and one batch without a partition key.
      assert.equal(batches(), 7);
    } finally {
      await sink.close();
    }
  });

  test('a record too large for any message is parked directly when it is poison, and fails the send when it is transient', async () => {
    const dl = uniqueName('dl');
    emu.createHub({ name: dl, partitions: 1 });
    const at = new Date();
    const huge = (reason: DeadLetterRecord['reason'], seq: number): DeadLetterRecord => ({
      reason,
      error: 'x'.repeat(3000),
      body: Buffer.alloc(1024 * 1024 - 200, 0x62),
      properties: { TenantId: '120' },
      tenantId: 120,
      source: { hub: 'clickstream', consumerGroup: '$Default', partitionId: '0', sequenceNumber: seq, offset: String(seq), enqueuedTime: at },
      attempts: 1,
      firstFailureAt: at,
      lastFailureAt: at,
    });
    const small: DeadLetterRecord = { ...huge('invalid', 2), body: Buffer.from('{}'), error: 'body: must name a tenant' };
    const plain = new EventHubDeadLetterSink(new EventHubProducerClient(emu.connectionString(dl), dl));
    const parking = new EventHubDeadLetterSink(new EventHubProducerClient(emu.connectionString(dl), dl), { onOversize: parkOversize(s.pool, s.schema) });
    try {
      await assert.rejects(plain.send([huge('invalid', 1)]), OversizeDeadLetterError);
      await parking.send([huge('invalid', 1), small]);
      assert.equal(emu.partitionEvents(dl, '0').length, 1, 'the small record went to the hub');
      const parked = await listDeadLetters(s.pool, s.schema, { tenantId: 120 }, 10);
      assert.equal(parked.length, 1);
      assert.equal(parked[0]?.bodyBytes, 1024 * 1024 - 200);
      await assert.rejects(parking.send([huge('transient', 3)]), /too large for the dead-letter hub; the batch is retried/);
    } finally {
      await plain.close();
      await parking.close();
    }
  });

  test('database down during ingest: nothing reaches the dead-letter hub, the handler throws; once the database is back the redelivered batch writes every event exactly once', async () => {
    const ingestHub = uniqueName('in');
    const dl = uniqueName('dl');
    emu.createHub({ name: ingestHub, partitions: 2 });
    emu.createHub({ name: dl, partitions: 2 });
    const cfg = testConfig(s.schema);
    const down = await downPool();
    const producer = new EventHubProducerClient(emu.connectionString(dl), dl);
    const sink = new EventHubDeadLetterSink(producer);
    try {
      const good = Array.from({ length: 40 }, (_, i) => event((i % 5) + 100));
      const bad = [
        { body: Buffer.from('{"tenantId": 100, "type": "click"'), properties: { TenantId: '100' }, partitionKey: '100' },
        { body: Buffer.from([0xc3, 0x28]), properties: {}, partitionKey: '101' },
      ];
      const batch = ingestBatchOf([...good, ...bad], ingestHub, '1', 500);
      const ingest = (pool: typeof down) =>
        makeIngestHandler(() => Promise.resolve({ hub: ingestHub, consumerGroup: '$Default', ingest: { pool, config: cfg, sink, sleep: fastSleep } }));
      const logs: string[] = [];
      // The host re-invokes the batch (its retry policy) while the database stays down: every time
      // the handler throws, and not one event is copied onto the dead-letter hub.
      for (let retry = 0; retry < 3; retry++) {
        await assert.rejects(ingest(down)(batch.messages, invocation('ingest', batch.triggerMetadata, logs, retry)), /DatabaseUnavailableError|unreachable/);
      }
      assert.equal(emu.partitionEvents(dl, '0').length + emu.partitionEvents(dl, '1').length, 0);
      assert.match(logs.join('\n'), /failed, the host will retry the batch: database unreachable .*ECONNREFUSED/);

      // Back: the next retry writes the good events once and dead-letters the two invalid ones.
      const result = await ingest(s.pool)(batch.messages, invocation('ingest', batch.triggerMetadata, [], 3));
      assert.equal(result.inserted, 40);
      assert.deepEqual(result.deadLettered, { invalid: 2, rejected: 0, transient: 0 });
      const received = await receiveAll(emu, dl, 2);
      const dlHandler = makeDeadLetterHandler(() => Promise.resolve({ hub: dl, consumerGroup: '$Default', deps: { pool: s.pool, config: cfg, sleep: fastSleep } }));
      let parked = 0;
      for (const [pid, events] of received) {
        const b = hostShape(events as ReceivedLike[], { hub: dl, consumerGroup: '$Default', partitionId: pid });
        parked += (await dlHandler(b.messages, invocation('deadletter', b.triggerMetadata))).parked.invalid;
      }
      assert.equal(parked, 2);
      // Delivered again (a rebalance): nothing changes.
      const again = await ingest(s.pool)(batch.messages, invocation('ingest', batch.triggerMetadata));
      assert.equal(again.inserted, 0);
      const { rows } = await s.pool.query<{ n: string; ids: string; seqs: string }>(
        'SELECT count(*) AS n, count(DISTINCT event_id) AS ids, count(DISTINCT source_sequence) AS seqs FROM events WHERE tenant_id BETWEEN 100 AND 104',
      );
      assert.deepEqual(rows[0], { n: '40', ids: '40', seqs: '40' });
      const { rows: src } = await s.pool.query<{ p: string; min: string; max: string; o: string }>(
        "SELECT min(source_partition) AS p, min(source_sequence) AS min, max(source_sequence) AS max, min(source_offset) AS o FROM events WHERE tenant_id BETWEEN 100 AND 104",
      );
      assert.deepEqual(src[0], { p: '1', min: '500', max: '539', o: 'x500' });
      const parkedRows = (await listDeadLetters(s.pool, s.schema, {}, 1000)).filter((p) => p.source.hub === ingestHub.toLowerCase());
      assert.deepEqual(parkedRows.map((p) => p.source.sequenceNumber).sort(), [540, 541]);
    } finally {
      await sink.close();
      await down.end();
    }
  });

  test('a statement that times out while the database serves others: the batch goes to the dead-letter hub as transient, and the deadletter handler writes it once the lock is gone', async () => {
    const ingestHub = uniqueName('in');
    const dl = uniqueName('dl');
    emu.createHub({ name: ingestHub, partitions: 1 });
    emu.createHub({ name: dl, partitions: 1 });
    const cfg = testConfig(s.schema);
    const slow = new pg.Pool({ connectionString: testDatabaseUrl(), max: 2, options: `-c search_path=${s.schema},public -c statement_timeout=150` });
    const holder = new pg.Client({ connectionString: testDatabaseUrl() });
    await holder.connect();
    const sink = new EventHubDeadLetterSink(new EventHubProducerClient(emu.connectionString(dl), dl));
    try {
      const events = Array.from({ length: 12 }, () => event(120));
      const batch = ingestBatchOf(events, ingestHub, '0', 0);
      await holder.query('BEGIN');
      await holder.query(`LOCK TABLE "${s.schema}".events IN ACCESS EXCLUSIVE MODE`);
      const ingest = makeIngestHandler(() => Promise.resolve({ hub: ingestHub, consumerGroup: '$Default', ingest: { pool: slow, config: cfg, sink, sleep: fastSleep } }));
      const r = await ingest(batch.messages, invocation('ingest', batch.triggerMetadata));
      assert.deepEqual(r.deadLettered, { invalid: 0, rejected: 0, transient: 12 });
      const received = await receiveAll(emu, dl, 12);
      await holder.query('ROLLBACK');
      const dlHandler = makeDeadLetterHandler(() => Promise.resolve({ hub: dl, consumerGroup: '$Default', deps: { pool: s.pool, config: cfg, sleep: fastSleep } }));
      let inserted = 0;
      for (const [pid, evs] of received) {
        const b = hostShape(evs as ReceivedLike[], { hub: dl, consumerGroup: '$Default', partitionId: pid });
        inserted += (await dlHandler(b.messages, invocation('deadletter', b.triggerMetadata))).inserted;
      }
      assert.equal(inserted, 12);
      assert.equal(await countRows(s.pool, s.schema, 'events', 'WHERE tenant_id = 120'), 12);
    } finally {
      await holder.query('ROLLBACK').catch(() => undefined);
      await holder.end();
      await slow.end();
      await sink.close();
    }
  });

  test('dead-letter hub down: the ingest handler fails within seconds with an error naming the cause; the retry after recovery loses nothing', async () => {
    const ingestHub = uniqueName('in');
    const dl = uniqueName('dl');
    emu.createHub({ name: ingestHub, partitions: 1 });
    emu.createHub({ name: dl, partitions: 1 });
    const cfg = testConfig(s.schema);
    // The producer the Function App and the runner use, with its retry options.
    const producer = await createDeadLetterProducer({ kind: 'connectionString', connectionString: emu.connectionString(dl) }, dl);
    const sink = new EventHubDeadLetterSink(producer);
    try {
      const events = [...Array.from({ length: 10 }, () => event(110)), { body: Buffer.from('{"broken'), properties: {}, partitionKey: '110' }];
      const batch = ingestBatchOf(events, ingestHub, '0', 0);
      emu.faults.rejectNextSends(dl, 1_000_000);
      const ingest = makeIngestHandler(() => Promise.resolve({ hub: ingestHub, consumerGroup: '$Default', ingest: { pool: s.pool, config: cfg, sink, sleep: fastSleep } }));
      const logs: string[] = [];
      // With the SDK's default retry options this send would wait about 90 s before failing.
      const failed = ingest(batch.messages, invocation('ingest', batch.triggerMetadata, logs));
      // A hang guard, generous, yet under the ~90 s the SDK's default retries would take: the
      // producer's own retry options are what this proves, not a speed.
      const bound = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`the dead-letter send did not fail within the ${SEND_HANG_GUARD_MS / 1000} s hang guard`)), SEND_HANG_GUARD_MS).unref());
      await assert.rejects(Promise.race([failed, bound]), (err: unknown) => {
        assert.ok(err instanceof Error);
        assert.equal(err.name, 'DeadLetterSendError');
        assert.match(err.message, /dead-letter hub failed: .*server-busy/);
        return true;
      });
      // The host records the message: it names the cause, not just "AggregateError".
      assert.match(logs.join('\n'), /failed, the host will retry the batch: .*server-busy/);
      assert.equal(emu.partitionEvents(dl, '0').length, 0);
      // The good events were written before the sink failed; the retry finds them present.
      assert.equal(await countRows(s.pool, s.schema, 'events', 'WHERE tenant_id = 110'), 10);

      emu.faults.clear();
      const retried = await ingest(batch.messages, invocation('ingest', batch.triggerMetadata, [], 1));
      assert.deepEqual([retried.inserted, retried.duplicates, retried.deadLettered.invalid], [0, 10, 1]);
      assert.equal(emu.partitionEvents(dl, '0').length, 1);
      assert.equal(await countRows(s.pool, s.schema, 'events', 'WHERE tenant_id = 110'), 10);
    } finally {
      await sink.close();
    }
  });

});
