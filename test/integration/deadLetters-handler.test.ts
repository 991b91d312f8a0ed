/**
 * The `deadletter` function's handler against real PostgreSQL, fed dead letters in the shape the
 * Functions host delivers them (the hub round trip is covered in deadLetters-hub.test.ts).
 */
import { afterAll, beforeAll, describe, test } from 'vitest';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { makeDeadLetterHandler } from '../../src/deadLetters/deadLetterHandler.js';
import { TransientDatabaseError } from '../../src/deadLetters/process.js';
import { getDeadLetter, listDeadLetters } from '../../src/db/deadLetterQueries.js';
import type { DeadLetterRecord } from '../../src/pipeline/types.js';
import type { TestSchema } from '../support/services.js';
import { asDeadLetterEvents, countRows, downPool, fastSleep, hostShape, invocation, readySchema, testConfig } from '../support/deadLetters.js';
import { makeSource } from '../support/rows.js';

const DL_HUB = 'clickstream-deadletter';
const DL_GROUP = '$Default';

function eventBody(tenantId: number, occurredAt: Date, extra: Record<string, unknown> = {}): Buffer {
  return Buffer.from(JSON.stringify({ eventId: randomUUID(), tenantId, type: 'purchase', occurredAt: occurredAt.toISOString(), revenue: 9.5, ...extra }));
}

let seq = 0;
function rec(reason: DeadLetterRecord['reason'], body: Buffer, overrides: Partial<DeadLetterRecord> = {}): DeadLetterRecord {
  seq++;
  const failed = new Date(Date.now() - 60_000);
  const tenantId = overrides.tenantId ?? 42;
  return {
    reason,
    error: reason === 'transient' ? 'ECONNREFUSED connect ECONNREFUSED 127.0.0.1:5432' : 'type: required',
    body,
    properties: { TenantId: String(tenantId), Channel: 'web' },
    tenantId,
    source: makeSource({ partitionId: '2', sequenceNumber: 5000 + seq, offset: String(4096 * seq), enqueuedTime: new Date(Date.now() - 120_000 + seq) }),
    attempts: 1,
    firstFailureAt: failed,
    lastFailureAt: failed,
    ...overrides,
  };
}

function handlerFor(pool: pg.Pool, schema: string) {
  return makeDeadLetterHandler(() =>
    Promise.resolve({ hub: DL_HUB, consumerGroup: DL_GROUP, deps: { pool, config: testConfig(schema), sleep: fastSleep } }),
  );
}

function deliver(records: DeadLetterRecord[], firstSequence: number) {
  return hostShape(asDeadLetterEvents(records, firstSequence), { hub: DL_HUB, consumerGroup: DL_GROUP, partitionId: '1' });
}

describe('deadletter handler', () => {
  let s: TestSchema;
  beforeAll(async () => {
    s = await readySchema('dlh_');
  });
  afterAll(() => s.drop());

  test('transient dead letters are written once; a redelivery inserts nothing and parks nothing', async () => {
    const handler = handlerFor(s.pool, s.schema);
    const records = [1, 2, 3].map((t) => rec('transient', eventBody(t, new Date(Date.now() - 30_000)), { tenantId: t }));
    const batch = deliver(records, 10);
    const logs: string[] = [];
    const first = await handler(batch.messages, invocation('deadletter', batch.triggerMetadata, logs));
    assert.equal(first.received, 3);
    assert.equal(first.rewritten, 3);
    assert.equal(first.inserted, 3);
    assert.deepEqual(first.parked, { invalid: 0, rejected: 0 });
    assert.match(logs.join('\n'), /deadletter partition=1 received=3 undecodable=0 rewritten=3 inserted=3/);
    // The rows keep the coordinates of the original event, not of the dead letter.
    const { rows } = await s.pool.query<{ source_partition: string; source_sequence: string }>(
      'SELECT source_partition, source_sequence FROM events WHERE source_sequence = ANY($1::bigint[]) ORDER BY source_sequence',
      [records.map((r) => r.source.sequenceNumber)],
    );
    assert.deepEqual(rows.map((r) => [r.source_partition, Number(r.source_sequence)]), records.map((r) => ['2', r.source.sequenceNumber]));

    const again = await handler(batch.messages, invocation('deadletter', batch.triggerMetadata, [], 1));
    assert.equal(again.inserted, 0);
    assert.equal(again.duplicates, 3);
    assert.equal(await countRows(s.pool, s.schema, 'dead_letters'), 0);
  });

  test('while the database is down the handler throws (the retry policy holds the checkpoint) and loses nothing', async () => {
    const down = await downPool();
    try {
      const handler = handlerFor(down, s.schema);
      const records = [rec('transient', eventBody(5, new Date(Date.now() - 10_000)), { tenantId: 5 }), rec('invalid', Buffer.from('{"broken'))];
      const batch = deliver(records, 20);
      const logs: string[] = [];
      await assert.rejects(handler(batch.messages, invocation('deadletter', batch.triggerMetadata, logs)), (err: unknown) => {
        assert.ok(err instanceof TransientDatabaseError, String(err));
        assert.match(err.message, /database still unavailable.*1 row\(s\) not written: .*ECONNREFUSED/);
        return true;
      });
      assert.match(logs.join('\n'), /failed, the host will retry the batch/);
      // Database back: the same batch (the host re-invokes it) goes through.
      const ok = await handlerFor(s.pool, s.schema)(batch.messages, invocation('deadletter', batch.triggerMetadata, [], 1));
      assert.equal(ok.inserted, 1);
      assert.deepEqual(ok.parked, { invalid: 1, rejected: 0 });
    } finally {
      await down.end();
    }
  });

  test('invalid and rejected dead letters are parked once, even when delivered twice', async () => {
    const invalid = rec('invalid', Buffer.from('{"tenantId": 42, "type": 7}'), { error: 'type: must be a string' });
    const rejected = rec('rejected', eventBody(42, new Date(Date.now() - 3_600_000)), { error: '22003 numeric field overflow' });
    const handler = handlerFor(s.pool, s.schema);
    // Twice in one batch (the sink's retry re-sent it) ...
    const batch = deliver([invalid, rejected, invalid], 30);
    const r1 = await handler(batch.messages, invocation('deadletter', batch.triggerMetadata));
    assert.deepEqual(r1.parked, { invalid: 1, rejected: 1 });
    assert.equal(r1.alreadyParked, 1);
    // ... and again later, at other positions of the dead-letter hub.
    const later = deliver([rejected, invalid], 90);
    const r2 = await handler(later.messages, invocation('deadletter', later.triggerMetadata));
    assert.deepEqual(r2.parked, { invalid: 0, rejected: 0 });
    assert.equal(r2.alreadyParked, 2);
    const parked = await listDeadLetters(s.pool, s.schema, { tenantId: 42 }, 100);
    const mine = parked.filter((p) => [invalid, rejected].some((r) => r.source.sequenceNumber === p.source.sequenceNumber));
    assert.equal(mine.length, 2);
    const inv = await getDeadLetter(s.pool, s.schema, mine.find((m) => m.reason === 'invalid')?.id ?? -1);
    assert.ok(inv);
    assert.deepEqual(inv.body, invalid.body);
    // The original values with their types, despite the host's JSON-parsing ('42' stays a string);
    // the host lower-cases the first letter of every key, which no one downstream can undo.
    assert.deepEqual(inv.properties, { tenantId: '42', channel: 'web' });
    assert.equal(inv.error, 'type: must be a string');
    assert.equal(inv.source.hub, 'clickstream');
    assert.equal(inv.source.partitionId, '2');
    assert.equal(inv.source.offset, invalid.source.offset);
    assert.equal(inv.attempts, 1);
    assert.equal(await countRows(s.pool, s.schema, 'events', 'WHERE tenant_id = 42'), 0);
  });

  test('an event on the dead-letter hub that is not a dead letter is parked as invalid under its own coordinates, once', async () => {
    const handler = handlerFor(s.pool, s.schema);
    const stray = { body: Buffer.from('{"tenantId": 9, "hello": "world"}'), properties: { from: 'someone else' }, sequenceNumber: 777, offset: '77700', enqueuedTimeUtc: new Date(), partitionKey: null };
    const batch = hostShape([stray], { hub: DL_HUB, consumerGroup: DL_GROUP, partitionId: '3' });
    const r = await handler(batch.messages, invocation('deadletter', batch.triggerMetadata));
    assert.equal(r.undecodable, 1);
    assert.deepEqual(r.parked, { invalid: 1, rejected: 0 });
    const again = await handler(batch.messages, invocation('deadletter', batch.triggerMetadata));
    assert.equal(again.alreadyParked, 1);
    const [row] = (await listDeadLetters(s.pool, s.schema, {}, 1000)).filter((p) => p.source.hub === DL_HUB && p.source.sequenceNumber === 777);
    assert.ok(row);
    assert.equal(row.reason, 'invalid');
    assert.match(row.error, /^undecodable dead letter: not a hubsink dead letter: hubsink\.reason: missing/);
    assert.equal(row.source.partitionId, '3');
    assert.equal(row.source.offset, '77700');
    const full = await getDeadLetter(s.pool, s.schema, row.id);
    assert.deepEqual(full?.body, stray.body);
    assert.deepEqual(full?.properties, { from: 'someone else' });
  });

  test('a transient dead letter that is now invalid (it fell out of the retention window) is parked with one more attempt', async () => {
    const old = rec('transient', eventBody(43, new Date(Date.now() - 40 * 86_400_000)), { tenantId: 43, attempts: 3 });
    const batch = deliver([old], 200);
    const r = await handlerFor(s.pool, s.schema)(batch.messages, invocation('deadletter', batch.triggerMetadata));
    assert.deepEqual(r.parked, { invalid: 1, rejected: 0 });
    const [row] = await listDeadLetters(s.pool, s.schema, { tenantId: 43 }, 10);
    assert.ok(row);
    assert.equal(row.reason, 'invalid');
    assert.match(row.error, /occurredAt/);
    assert.equal(row.attempts, 4);
    assert.equal(row.firstFailureAt.getTime(), old.firstFailureAt.getTime());
  });

  test('a transient dead letter the database now refuses is isolated and parked as rejected; the rest of the batch is written', async () => {
    // Partitions only for the last day: an event from five days ago is valid and gets its partition.
    // The refused one breaks a CHECK constraint (an operator's).
    const narrow = await readySchema('dlh_', 1);
    try {
      await narrow.pool.query(`ALTER TABLE "${narrow.schema}".events ADD CONSTRAINT no_forbidden_url CHECK (url IS DISTINCT FROM 'forbidden')`);
      const good = rec('transient', eventBody(44, new Date(Date.now() - 60_000)), { tenantId: 44 });
      const older = rec('transient', eventBody(44, new Date(Date.now() - 5 * 86_400_000)), { tenantId: 44 });
      const refused = rec('transient', eventBody(44, new Date(Date.now() - 60_000), { url: 'forbidden' }), { tenantId: 44 });
      const batch = deliver([good, refused, older], 300);
      const r = await handlerFor(narrow.pool, narrow.schema)(batch.messages, invocation('deadletter', batch.triggerMetadata));
      assert.equal(r.inserted, 2);
      assert.deepEqual(r.parked, { invalid: 0, rejected: 1 });
      const [row] = await listDeadLetters(narrow.pool, narrow.schema, {}, 10);
      assert.ok(row);
      assert.equal(row.reason, 'rejected');
      assert.match(row.error, /^23514 .*no_forbidden_url/);
      assert.equal(row.source.sequenceNumber, refused.source.sequenceNumber);
      assert.equal(row.attempts, 2);
      assert.ok(row.eventId);
    } finally {
      await narrow.drop();
    }
  });
});
