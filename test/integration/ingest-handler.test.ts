/**
 * The `ingest` handler end to end against real PostgreSQL: called with the Functions host's shapes,
 * writing through the real upsert path and handing failures to a recording sink.
 */
import { afterAll, beforeAll, describe, test } from 'vitest';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { createTestSchema, type TestSchema } from '../support/services.js';
import { startOwnServer } from '../support/database.js';
import { hostBatch, invocationContext, type HostEvent } from '../support/functions-batch.js';
import { RecordingDeadLetterSink } from '../support/sinks.js';
import { makeIngestHandler } from '../../src/ingest/ingestHandler.js';
import type { IngestDeps } from '../../src/ingest/ingestBatch.js';
import { migrate } from '../../src/db/migrate.js';
import { maintainPartitions } from '../../src/db/partitions.js';
import { detectCapabilities } from '../../src/db/capabilities.js';
import { loadConfig } from '../../src/config.js';

const HUB = 'clickstream';

function event(tenantId: number, extra: Record<string, unknown> = {}): HostEvent {
  return {
    body: { eventId: randomUUID(), tenantId, type: 'page_view', occurredAt: new Date(Date.now() - 5_000).toISOString(), sessionId: `s${tenantId}`, ...extra },
    properties: { TenantId: String(tenantId) },
    partitionKey: String(tenantId),
  };
}

function depsFor(s: { schema: string; pool: pg.Pool }, sink: RecordingDeadLetterSink, env: Record<string, string> = {}): IngestDeps {
  const config = loadConfig({ HUBSINK_SCHEMA: s.schema, ...env });
  return { pool: s.pool, config, sink, sleep: (ms) => new Promise((r) => setTimeout(r, Math.min(ms, 20))) };
}

async function count(s: TestSchema): Promise<number> {
  const { rows } = await s.pool.query<{ n: string }>('SELECT count(*) AS n FROM events');
  return Number(rows[0]?.n);
}

describe('ingest handler', () => {
  let s: TestSchema;
  beforeAll(async () => {
    s = await createTestSchema();
    await migrate(s.pool, s.schema);
    await maintainPartitions(s.pool, s.schema, { now: new Date(), aheadDays: 3, retentionDays: 30, caps: await detectCapabilities(s.pool) });
  });
  afterAll(() => s.drop());

  test('1,000 events across 50 tenants insert once; the same batch again reports 1,000 duplicates', async () => {
    const sink = new RecordingDeadLetterSink();
    const handler = makeIngestHandler(() => Promise.resolve({ hub: HUB, consumerGroup: '$Default', ingest: depsFor(s, sink) }));
    const events = Array.from({ length: 1000 }, (_, i) => event((i % 50) + 1));
    const batch = hostBatch(events, { hub: HUB, partitionId: '3', firstSequence: 1000 });
    const before = await count(s);
    const logs: string[] = [];
    const first = await handler(batch.messages, invocationContext('ingest', batch.triggerMetadata, logs));
    assert.equal(first.received, 1000);
    assert.equal(first.inserted, 1000);
    assert.equal(first.duplicates, 0);
    assert.equal(await count(s), before + 1000);
    assert.match(logs.join('\n'), /received=1000 inserted=1000 duplicates=0/);

    const again = await handler(batch.messages, invocationContext('ingest', batch.triggerMetadata, [], 1));
    assert.equal(again.inserted, 0);
    assert.equal(again.duplicates, 1000);
    assert.equal(await count(s), before + 1000);
    assert.equal(sink.records.length, 0);

    // Source coordinates come from the aligned system properties, despite the host's quirks.
    const { rows } = await s.pool.query<{ source_partition: string; source_sequence: string; source_offset: string }>(
      'SELECT source_partition, source_sequence, source_offset FROM events WHERE source_sequence = 1007',
    );
    assert.deepEqual(rows, [{ source_partition: '3', source_sequence: '1007', source_offset: String(1007 * 1024) }]);
  });

  test('overlapping batches insert each event once', async () => {
    const sink = new RecordingDeadLetterSink();
    const handler = makeIngestHandler(() => Promise.resolve({ hub: HUB, consumerGroup: '$Default', ingest: depsFor(s, sink) }));
    const events = Array.from({ length: 300 }, (_, i) => event((i % 7) + 100));
    const a = hostBatch(events.slice(0, 200), { hub: HUB });
    const b = hostBatch(events.slice(100), { hub: HUB, firstSequence: 100 });
    const ra = await handler(a.messages, invocationContext('ingest', a.triggerMetadata));
    const rb = await handler(b.messages, invocationContext('ingest', b.triggerMetadata));
    assert.equal(ra.inserted + rb.inserted, 300);
    assert.equal(rb.duplicates, 100);
    const { rows } = await s.pool.query<{ n: string }>('SELECT count(*) AS n FROM events WHERE tenant_id BETWEEN 100 AND 106');
    assert.equal(Number(rows[0]?.n), 300);
  });

  test('invalid events reach the sink with their exact bytes; the rest are written', async () => {
    const sink = new RecordingDeadLetterSink();
    const handler = makeIngestHandler(() => Promise.resolve({ hub: HUB, consumerGroup: '$Default', ingest: depsFor(s, sink) }));
    const bad: HostEvent[] = [
      { body: Buffer.from('{"tenantId": 5, "type": "click", '), properties: { x: 1 } }, // truncated JSON
      { body: Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]) }, // invalid UTF-8
      event(5, { occurredAt: '2026-11-22T10:00:00' }), // no offset
      event(5, { occurredAt: new Date(Date.now() - 90 * 86400e3).toISOString() }), // outside retention
      event(5, { type: '' }),
      event(5, { tenantId: -3 }),
    ];
    const good = Array.from({ length: 10 }, () => event(200));
    const hostile = event(200, { url: "'); drop table events; --" });
    const batch = hostBatch([...bad.slice(0, 3), ...good, hostile, ...bad.slice(3)], { hub: HUB, partitionId: '1', firstSequence: 50 });
    const r = await handler(batch.messages, invocationContext('ingest', batch.triggerMetadata));
    assert.equal(r.inserted, 11);
    assert.equal(r.deadLettered.invalid, 6);
    assert.equal(sink.records.length, 6);
    for (const rec of sink.records) {
      assert.equal(rec.reason, 'invalid');
      assert.ok(rec.error.length > 0);
      assert.equal(rec.source.hub, HUB);
      assert.equal(rec.source.partitionId, '1');
    }
    const originals = [0, 1, 2, 14, 15, 16].map((i) => batch.messages[i]);
    assert.deepEqual(sink.records.map((d) => d.body), originals);
    const { rows } = await s.pool.query<{ url: string }>("SELECT url FROM events WHERE tenant_id = 200 AND url IS NOT NULL");
    assert.deepEqual(rows, [{ url: "'); drop table events; --" }]);
  });

  test('a failing sink makes the handler throw (the host then retries the batch)', async () => {
    const sink = new RecordingDeadLetterSink();
    sink.failWith = new Error('dead-letter hub unavailable');
    const handler = makeIngestHandler(() => Promise.resolve({ hub: HUB, consumerGroup: '$Default', ingest: depsFor(s, sink) }));
    const batch = hostBatch([event(300), { body: 'not json' }], { hub: HUB });
    const logs: string[] = [];
    await assert.rejects(handler(batch.messages, invocationContext('ingest', batch.triggerMetadata, logs)), /dead-letter hub unavailable/);
    assert.match(logs.join('\n'), /the host will retry/);
    assert.equal(sink.calls, 1);
  });

  test('a sink failing with an AggregateError without a message: the handler rethrows it with its members in the message', async () => {
    const sink = new RecordingDeadLetterSink();
    const refused = (port: number) => Object.assign(new Error(`connect ECONNREFUSED 127.0.0.1:${port}`), { code: 'ECONNREFUSED' });
    sink.failWith = new AggregateError([refused(5671), refused(5672)]);
    const handler = makeIngestHandler(() => Promise.resolve({ hub: HUB, consumerGroup: '$Default', ingest: depsFor(s, sink) }));
    const batch = hostBatch([event(301), { body: 'not json' }], { hub: HUB });
    const logs: string[] = [];
    await assert.rejects(handler(batch.messages, invocationContext('ingest', batch.triggerMetadata, logs)), (err: unknown) => {
      assert.ok(err instanceof Error);
      assert.equal(err.name, 'AggregateError');
      assert.equal(err.message, 'ECONNREFUSED connect ECONNREFUSED 127.0.0.1:5671; ECONNREFUSED connect ECONNREFUSED 127.0.0.1:5672');
      assert.equal(err.cause, sink.failWith);
      return true;
    });
    assert.match(logs.join('\n'), /the host will retry the batch: ECONNREFUSED connect ECONNREFUSED 127.0.0.1:5671/);
  });

  test('a row the database refuses is isolated and dead-lettered as rejected; the rest are written, a day without a partition gets one', async () => {
    // Partitions exist up to now+3 days; move them back so an event at +2 days has no partition.
    // It is in the accepted window, so its partition is created and it is written. The row the
    // database refuses is one a CHECK constraint (an operator's) forbids.
    const t = await createTestSchema();
    try {
      await migrate(t.pool, t.schema);
      await maintainPartitions(t.pool, t.schema, { now: new Date(Date.now() - 2 * 86400e3), aheadDays: 1, retentionDays: 30, caps: await detectCapabilities(t.pool) });
      await t.pool.query(`ALTER TABLE "${t.schema}".events ADD CONSTRAINT no_forbidden_url CHECK (url IS DISTINCT FROM 'forbidden')`);
      const sink = new RecordingDeadLetterSink();
      const handler = makeIngestHandler(() => Promise.resolve({ hub: HUB, consumerGroup: '$Default', ingest: depsFor(t, sink) }));
      const future = event(7, { occurredAt: new Date(Date.now() + 2 * 86400e3).toISOString() });
      const forbidden = event(7, { url: 'forbidden' });
      const past = Array.from({ length: 20 }, (_, i) => event(7, { occurredAt: new Date(Date.now() - 2 * 86400e3 + i * 1000).toISOString() }));
      const batch = hostBatch([...past.slice(0, 9), forbidden, ...past.slice(9), future], { hub: HUB });
      const r = await handler(batch.messages, invocationContext('ingest', batch.triggerMetadata));
      assert.equal(r.inserted, 21);
      assert.equal(r.deadLettered.rejected, 1);
      assert.equal(sink.records.length, 1);
      assert.equal(sink.records[0]?.reason, 'rejected');
      assert.deepEqual(sink.records[0]?.body, batch.messages[9]);
      assert.match(sink.records[0]?.error ?? '', /^23514 .*no_forbidden_url/);
    } finally {
      await t.drop();
    }
  });
});

describe('ingest handler with the database going away', () => {
  test('an unreachable database makes the handler throw after bounded retries, with nothing dead-lettered; once back, the redelivered batch is written once', async () => {
    const server = await startOwnServer('down', { aheadDays: 3, retentionDays: 30 });
    const { pool } = server;
    try {
      await server.stop();
      const sink = new RecordingDeadLetterSink();
      const retries: number[] = [];
      const deps: IngestDeps = {
        ...depsFor({ schema: 'public', pool }, sink, { HUBSINK_TRANSIENT_RETRY_MS: '1500' }),
        onRetry: (attempt) => retries.push(attempt),
      };
      const handler = makeIngestHandler(() => Promise.resolve({ hub: HUB, consumerGroup: '$Default', ingest: deps }));
      // An invalid event too: while the database is down, not even it goes to the dead-letter hub
      // (the whole batch is re-invoked later, and judged then).
      const batch = hostBatch([...Array.from({ length: 25 }, (_, i) => event(i + 1)), { body: 'not json' }], { hub: HUB, partitionId: '2' });
      const logs: string[] = [];
      await assert.rejects(handler(batch.messages, invocationContext('ingest', batch.triggerMetadata, logs)), (err: unknown) => {
        assert.ok(err instanceof Error);
        assert.equal(err.name, 'DatabaseUnavailableError');
        assert.match(err.message, /ECONNREFUSED/);
        return true;
      });
      assert.equal(sink.calls, 0, 'nothing was copied onto the dead-letter hub');
      assert.ok(retries.length >= 1, 'the write was retried before giving up');
      assert.ok(retries.length < 100, 'retries are bounded');
      assert.match(logs.join('\n'), /failed, the host will retry the batch: .*ECONNREFUSED/);

      await server.start();
      const r = await handler(batch.messages, invocationContext('ingest', batch.triggerMetadata, [], 1));
      assert.equal(r.inserted, 25);
      assert.equal(r.deadLettered.invalid, 1);
      assert.equal(sink.records.length, 1);
      const { rows } = await pool.query<{ n: string }>('SELECT count(*) AS n FROM public.events');
      assert.equal(Number(rows[0]?.n), 25);
    } finally {
      await server.close();
    }
  });
});
