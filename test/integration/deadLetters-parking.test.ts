/**
 * Parking never blocks a partition: dead letters the database would refuse to park as they are
 * (forged times, a lone surrogate in a json property, a batch whose bodies add up to more than one
 * statement can carry, a record a constraint refuses) are parked, and the rest of the batch with
 * them, so the `deadletter` function's checkpoint moves on. Real PostgreSQL, host-shaped batches.
 */
import { afterAll, beforeAll, describe, test } from 'vitest';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { makeDeadLetterHandler } from '../../src/deadLetters/deadLetterHandler.js';
import { parkOversize } from '../../src/deadLetters/oversize.js';
import { parkDeadLetters } from '../../src/db/deadLetterParking.js';
import { fetchDeadLetters } from '../../src/db/deadLetterQueries.js';
import type { DeadLetterRecord } from '../../src/pipeline/types.js';
import type { TestSchema } from '../support/services.js';
import { countingPool } from '../support/countingPool.js';
import { testDatabaseUrl } from '../support/services.js';
import { asDeadLetterEvents, countRows, downPool, fastSleep, hostShape, invocation, readySchema, testConfig, type ReceivedLike } from '../support/deadLetters.js';
import { makeSource } from '../support/rows.js';

const DL_HUB = 'clickstream-deadletter';

let seq = 0;
function rec(overrides: Partial<DeadLetterRecord> = {}): DeadLetterRecord {
  seq++;
  const failed = new Date(Date.now() - 60_000);
  return {
    reason: 'invalid',
    error: 'type: required',
    body: Buffer.from(JSON.stringify({ eventId: randomUUID(), tenantId: 42 })),
    properties: { TenantId: '42' },
    tenantId: 42,
    source: makeSource({ partitionId: '3', sequenceNumber: 90_000 + seq, offset: String(seq), enqueuedTime: new Date(Date.now() - 120_000) }),
    attempts: 1,
    firstFailureAt: failed,
    lastFailureAt: failed,
    ...overrides,
  };
}

function handlerFor(pool: pg.Pool, schema: string) {
  return makeDeadLetterHandler(() => Promise.resolve({ hub: DL_HUB, consumerGroup: '$Default', deps: { pool, config: testConfig(schema), sleep: fastSleep } }));
}

function deliver(events: ReceivedLike[]) {
  return hostShape(events, { hub: DL_HUB, consumerGroup: '$Default', partitionId: '0' });
}

describe('parking never blocks a partition', () => {
  let s: TestSchema;
  beforeAll(async () => {
    s = await readySchema('dlpark_');
  });
  afterAll(() => s.drop());

  test('forged times (-1e15, year 0) and a json property holding a lone surrogate: the whole batch is parked, the surrogate exactly', async () => {
    const normal = Array.from({ length: 5 }, () => rec());
    const forgedEnqueued = rec();
    const yearZero = rec();
    const surrogate = rec({ properties: { TenantId: '42', Meta: { note: 'half a pair: \ud800', ok: 'fine' } } });
    const events = asDeadLetterEvents([...normal, forgedEnqueued, yearZero, surrogate], 100);
    const at = (r: DeadLetterRecord) => events[[...normal, forgedEnqueued, yearZero, surrogate].indexOf(r)];
    // Forged by a producer that writes to the dead-letter hub directly.
    Object.assign(at(forgedEnqueued)?.properties ?? {}, { 'hubsink.sourceEnqueuedTime': -1e15 });
    Object.assign(at(yearZero)?.properties ?? {}, { 'hubsink.firstFailureAt': '0000-01-01T00:00:00Z', 'hubsink.lastFailureAt': '0000-06-01T00:00:00Z' });
    const batch = deliver(events);
    const r = await handlerFor(s.pool, s.schema)(batch.messages, invocation('deadletter', batch.triggerMetadata));
    assert.equal(r.parked.invalid, 8);
    assert.equal(r.undecodable, 0);
    const parked = await fetchDeadLetters(s.pool, s.schema, {}, 100);
    assert.equal(parked.length, 8);
    const bySeq = new Map(parked.map((p) => [p.source.sequenceNumber, p]));
    assert.equal(bySeq.get(forgedEnqueued.source.sequenceNumber)?.source.enqueuedTime.toISOString(), '0001-01-01T00:00:00.000Z');
    assert.equal(bySeq.get(yearZero.source.sequenceNumber)?.firstFailureAt.toISOString(), '0001-01-01T00:00:00.000Z');
    const meta = bySeq.get(surrogate.source.sequenceNumber)?.properties.meta as { note: string; ok: string } | undefined;
    assert.deepEqual(meta, { note: 'half a pair: \ud800', ok: 'fine' });
    // Delivered again: parked once.
    const again = await handlerFor(s.pool, s.schema)(batch.messages, invocation('deadletter', batch.triggerMetadata, [], 1));
    assert.equal(again.alreadyParked, 8);
    assert.equal(await countRows(s.pool, s.schema, 'dead_letters'), 8);
  });

  test('1,000 bodies of 300 KB in one batch (over 500 MB as one parameter) are parked in statements of at most 16 MB', async () => {
    const own = await readySchema('dlpark_big_');
    const counted = countingPool({ connectionString: testDatabaseUrl(), max: 2, options: `-c search_path=${own.schema},public` });
    try {
      const body = Buffer.alloc(300 * 1024, 0x61);
      const records = Array.from({ length: 1000 }, () => rec({ body, error: 'body too large: 307200 bytes (max 262144)' }));
      const batch = deliver(asDeadLetterEvents(records, 5000));
      const r = await handlerFor(counted.pool, own.schema)(batch.messages, invocation('deadletter', batch.triggerMetadata));
      assert.equal(r.parked.invalid, 1000);
      const parks = counted.statements.filter((t) => t.includes('dead_letters_source_key'));
      // 2 × 300 KB (hex) per record: 27 records per 16 MB statement.
      assert.ok(parks.length >= 35 && parks.length <= 45, `${parks.length} park statements`);
      const { rows } = await own.pool.query<{ n: string; bytes: string }>('SELECT count(*) AS n, sum(octet_length(body)) AS bytes FROM dead_letters');
      assert.deepEqual(rows[0], { n: '1000', bytes: String(1000 * 300 * 1024) });
    } finally {
      await counted.pool.end();
      await own.drop();
    }
  });

  test('a record the database refuses for a reason nobody foresaw is isolated and parked as a stub with both errors; the rest as they are', async () => {
    const own = await readySchema('dlpark_chk_');
    try {
      // An operator's constraint stands in (the host hands keys over with a lower-case first letter) for any refusal sanitising cannot foresee.
      await own.pool.query("ALTER TABLE dead_letters ADD CONSTRAINT no_forbidden_property CHECK (NOT (properties ? 'forbidden'))");
      const good = Array.from({ length: 9 }, () => rec());
      const bad = rec({ properties: { Forbidden: 'yes', TenantId: '42' } });
      const batch = deliver(asDeadLetterEvents([...good.slice(0, 4), bad, ...good.slice(4)], 700));
      const r = await handlerFor(own.pool, own.schema)(batch.messages, invocation('deadletter', batch.triggerMetadata));
      assert.equal(r.parked.invalid, 10);
      const parked = await fetchDeadLetters(own.pool, own.schema, {}, 100);
      const stub = parked.find((p) => p.source.sequenceNumber === bad.source.sequenceNumber);
      assert.ok(stub);
      assert.match(stub.error, /^type: required \[parked without its properties: the database refused it as it was: 23514 .*no_forbidden_property/);
      assert.deepEqual(stub.body, bad.body);
      assert.deepEqual(stub.properties, {});
      for (const p of parked.filter((x) => x !== stub)) assert.equal(p.error, 'type: required');
      // Redelivery parks nothing new: the stub has the record's source key.
      const again = await handlerFor(own.pool, own.schema)(batch.messages, invocation('deadletter', batch.triggerMetadata, [], 1));
      assert.equal(again.alreadyParked, 10);
    } finally {
      await own.drop();
    }
  });

  test('parkOversize in ingest parks hostile records (NUL and lone surrogates in properties and keys, out-of-range times) without throwing', async () => {
    const hostile = [
      rec({ reason: 'rejected', properties: { 'k\u0000ey': 'v\u0000', lone: '\udfff', ['\ud83d']: 1 }, source: { ...rec().source, partitionKey: 'p\u0000k' } }),
      rec({ firstFailureAt: new Date(-8.64e15), lastFailureAt: new Date(8.64e15), source: { ...rec().source, enqueuedTime: new Date(Number.NaN) } }),
      rec({ error: 'bad \ud800 text \u0000 here' }),
    ];
    await parkOversize(s.pool, s.schema)(hostile);
    for (const h of hostile) {
      const [row] = await fetchDeadLetters(s.pool, s.schema, {}, 1000).then((all) => all.filter((p) => p.source.sequenceNumber === h.source.sequenceNumber));
      assert.ok(row, `record ${h.source.sequenceNumber} parked`);
    }
    const [first] = await fetchDeadLetters(s.pool, s.schema, {}, 1000).then((all) => all.filter((p) => p.source.sequenceNumber === hostile[0]?.source.sequenceNumber));
    assert.equal(first?.properties.lone, '\udfff');
  });

  test('a transient outage while parking is thrown for the caller to retry, not bisected into stubs', async () => {
    const down = await downPool();
    try {
      await assert.rejects(parkDeadLetters(down, s.schema, [rec(), rec()]), /ECONNREFUSED/);
    } finally {
      await down.end();
    }
  });
});
