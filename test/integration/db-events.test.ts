import { afterAll, beforeAll, test } from 'vitest';
import assert from 'node:assert/strict';
import { createTestSchema, type TestSchema } from '../support/services.js';
import { countEventsOf, createEventsSchema, startOwnServer } from '../support/database.js';
import { makeRow, makeRows } from '../support/rows.js';
import { insertEventRows, writeEvents, type WriteOptions } from '../../src/db/events.js';
import { TenantRegistry } from '../../src/db/tenants.js';
import type { EventRow } from '../../src/pipeline/types.js';
import { DatabaseUnavailableError } from '../../src/pipeline/classify.js';

let s: TestSchema;

beforeAll(async () => {
  ({ s } = await createEventsSchema('dbe_'));
});

afterAll(async () => {
  await s.drop();
});

const countEvents = (rows: readonly EventRow[]): Promise<number> => countEventsOf(s, rows);

/** A clock that only moves when the code under test sleeps, so backoff is observable without waiting. */
function fakeClock() {
  let t = 1_000_000;
  const sleeps: number[] = [];
  return {
    sleeps,
    now: () => t,
    sleep: (ms: number) => {
      sleeps.push(ms);
      t += ms;
      return Promise.resolve();
    },
  };
}

test('1,000 rows across 50 tenants insert 1,000; the same rows again insert 0 and report 1,000 duplicates', async () => {
  const rows = makeRows(1000, 50);
  const first = await insertEventRows(s.pool, s.schema, rows);
  assert.deepEqual(first, { inserted: 1000, duplicates: 0 });
  assert.equal(await countEvents(rows), 1000);
  const { rows: tenants } = await s.pool.query<{ n: string }>(
    `SELECT count(DISTINCT tenant_id) AS n FROM "${s.schema}".events WHERE event_id = ANY($1::uuid[])`,
    [rows.map((r) => r.eventId)],
  );
  assert.equal(Number(tenants[0]?.n), 50);
  const again = await insertEventRows(s.pool, s.schema, rows);
  assert.deepEqual(again, { inserted: 0, duplicates: 1000 });
  assert.equal(await countEvents(rows), 1000);
});

test('overlapping batches count exactly what is new', async () => {
  const rows = makeRows(300, 7);
  const a = await insertEventRows(s.pool, s.schema, rows.slice(0, 200));
  const b = await insertEventRows(s.pool, s.schema, rows.slice(100, 300));
  assert.deepEqual(a, { inserted: 200, duplicates: 0 });
  assert.deepEqual(b, { inserted: 100, duplicates: 100 });
  // Concurrent overlapping batches: every row lands once, counts add up.
  const more = makeRows(200, 13);
  const [c, d] = await Promise.all([insertEventRows(s.pool, s.schema, more.slice(0, 150)), insertEventRows(s.pool, s.schema, more.slice(50))]);
  assert.equal(c.inserted + d.inserted, 200);
  assert.equal(c.duplicates + d.duplicates, 100);
  assert.equal(await countEvents([...rows, ...more]), 500);
  // The same key twice in one statement: DO NOTHING keeps the first, the second counts as a duplicate.
  const twin = makeRow({ tenantId: 3 });
  assert.deepEqual(await insertEventRows(s.pool, s.schema, [twin, makeRow({ tenantId: 4 }), { ...twin, type: 'click' }]), { inserted: 2, duplicates: 1 });
  const { rows: kept } = await s.pool.query<{ type: string }>(`SELECT type FROM "${s.schema}".events WHERE event_id = $1`, [twin.eventId]);
  assert.deepEqual(kept.map((r) => r.type), ['page_view']);
});

test('every column round-trips, including hostile strings, numeric revenue and jsonb properties', async () => {
  const hostile = "'); drop table events; --";
  const row = makeRow({
    tenantId: 4242,
    type: 'purchase',
    sessionId: hostile,
    userId: 'NULL',
    deviceId: 'a"b\\c{d}',
    url: 'https://shop.example/ä?q=1,2',
    referrer: '',
    campaignId: 'spring',
    country: 'FR',
    browser: 'safari',
    revenue: 1234.5678,
    properties: { nested: { list: [1, 'two', null] }, quote: '"', hostile },
  });
  assert.deepEqual(await insertEventRows(s.pool, s.schema, [row]), { inserted: 1, duplicates: 0 });
  const { rows } = await s.pool.query<Record<string, unknown>>(
    `SELECT tenant_id::text, event_id::text, occurred_at, type, session_id, user_id, device_id, url, referrer, campaign_id,
            country, browser, revenue::text, properties, ingest_seq::text, ingested_at, source_partition, source_sequence::text,
            source_offset, source_enqueued_at
     FROM "${s.schema}".events WHERE event_id = $1`,
    [row.eventId],
  );
  const got = rows[0];
  assert.ok(got);
  assert.equal(got.tenant_id, '4242');
  assert.equal(got.event_id, row.eventId);
  assert.equal((got.occurred_at as Date).toISOString(), row.occurredAt.toISOString());
  assert.equal(got.type, 'purchase');
  assert.equal(got.session_id, hostile);
  assert.equal(got.user_id, 'NULL');
  assert.equal(got.device_id, 'a"b\\c{d}');
  assert.equal(got.url, 'https://shop.example/ä?q=1,2');
  assert.equal(got.referrer, '');
  assert.equal(got.campaign_id, 'spring');
  assert.equal(got.country, 'FR');
  assert.equal(got.browser, 'safari');
  assert.equal(got.revenue, '1234.5678');
  assert.deepEqual(got.properties, row.properties);
  assert.match(String(got.ingest_seq), /^\d+$/);
  assert.ok(got.ingested_at instanceof Date);
  assert.equal(got.source_partition, row.raw.source.partitionId);
  assert.equal(got.source_sequence, String(row.raw.source.sequenceNumber));
  assert.equal(got.source_offset, row.raw.source.offset);
  assert.equal((got.source_enqueued_at as Date).toISOString(), row.raw.source.enqueuedTime.toISOString());
  const { rows: t } = await s.pool.query(`SELECT 1 FROM "${s.schema}".events LIMIT 1`);
  assert.equal(t.length, 1, 'the hostile string did not drop the table');
});

test('writeEvents isolates the rows the database refuses by bisection and writes the rest', async () => {
  const rows = makeRows(100, 10);
  const tooLongType = makeRow({ type: 'x'.repeat(65) });
  const outsidePartitions = makeRow({ occurredAt: new Date('2001-01-01T00:00:00Z') });
  const nulByte = makeRow({ url: 'bad\u0000byte' });
  const all = [...rows.slice(0, 17), tooLongType, ...rows.slice(17, 60), outsidePartitions, ...rows.slice(60), nulByte];
  const out = await writeEvents(s.pool, s.schema, all, { chunkSize: 40, transientRetryMs: 1000 });
  assert.equal(out.inserted, 100);
  assert.equal(out.duplicates, 0);
  assert.equal(out.transient, undefined);
  assert.equal(out.retries, 0);
  assert.deepEqual(
    out.rejected.map((r) => r.row.eventId),
    [tooLongType.eventId, outsidePartitions.eventId, nulByte.eventId],
  );
  assert.match(out.rejected[0]?.error ?? '', /^23514 .*events_type_length/);
  assert.match(out.rejected[1]?.error ?? '', /^23514 no partition of relation/);
  assert.match(out.rejected[2]?.error ?? '', /^22021 /);
  assert.equal(await countEvents(all), 100);
  // Replaying the same input: the good rows are duplicates now, the bad ones still refused.
  const replay = await writeEvents(s.pool, s.schema, all, { chunkSize: 40, transientRetryMs: 1000 });
  assert.deepEqual([replay.inserted, replay.duplicates, replay.rejected.length], [0, 100, 3]);
});

test('writeEvents registers unseen tenants and counts across chunks', async () => {
  const registry = new TenantRegistry(1000);
  const base = 900_000 + Math.floor(Math.random() * 1000) * 100;
  const rows = makeRows(250, 20).map((r) => ({ ...r, tenantId: base + r.tenantId }));
  const out = await writeEvents(s.pool, s.schema, rows, { chunkSize: 64, transientRetryMs: 1000, tenants: registry });
  assert.deepEqual([out.inserted, out.duplicates, out.rejected.length], [250, 0, 0]);
  const { rows: t } = await s.pool.query<{ n: string }>(`SELECT count(*) AS n FROM "${s.schema}".tenants WHERE tenant_id BETWEEN $1 AND $2`, [
    base + 1,
    base + 20,
  ]);
  assert.equal(Number(t[0]?.n), 20);
  assert.equal(registry.size, 20);
});

test('writeEvents throws on a fatal error (a schema without tables)', async () => {
  const empty = await createTestSchema('dbe_empty_');
  try {
    await assert.rejects(writeEvents(empty.pool, empty.schema, makeRows(3, 1), { chunkSize: 10, transientRetryMs: 1000 }), (err: unknown) => {
      assert.equal((err as { code?: string }).code, '42P01');
      return true;
    });
  } finally {
    await empty.drop();
  }
});

test('writeEvents against a stopped server retries within the budget, then throws DatabaseUnavailableError (nothing is handed back to dead-letter)', async () => {
  const server = await startOwnServer('stopped', { aheadDays: 1, retentionDays: 2 });
  const { pool } = server;
  try {
    const warm = makeRows(10, 2);
    assert.equal((await writeEvents(pool, 'public', warm, { chunkSize: 5, transientRetryMs: 1000 })).inserted, 10);
    await server.stop();

    const rows = makeRows(30, 3);
    const clock = fakeClock();
    const retried: number[] = [];
    const opts: WriteOptions = { chunkSize: 10, transientRetryMs: 2_000, sleep: clock.sleep, now: clock.now, random: () => 0.5, onRetry: (n) => retried.push(n) };
    await assert.rejects(writeEvents(pool, 'public', rows, opts), (err: unknown) => {
      assert.ok(err instanceof DatabaseUnavailableError);
      assert.match(err.message, /\(6 attempt\(s\)\), 30 row\(s\) not written: .*(ECONNREFUSED|connect|terminat)/i);
      return true;
    });
    // 100, 200, 400, 800 ms (jitter at mid-range gives 3/4 of each), then the budget's remainder.
    assert.deepEqual(clock.sleeps, [75, 150, 300, 600, 875]);
    assert.deepEqual(retried, [1, 2, 3, 4, 5]);
  } finally {
    await server.close();
  }
});

test('a server that comes back during the retries: rows are written once and counted exactly', async () => {
  const server = await startOwnServer('restart', { aheadDays: 1, retentionDays: 2 });
  const { pool } = server;
  try {
    const rows = makeRows(40, 4);
    // The first chunk is written, then the server goes away before the second.
    assert.equal((await insertEventRows(pool, 'public', rows.slice(0, 20))).inserted, 20);
    await server.stop();
    let restarts = 0;
    const out = await writeEvents(pool, 'public', rows, {
      chunkSize: 20,
      transientRetryMs: 60_000,
      random: () => 0,
      sleep: async () => {
        if (restarts++ === 0) await server.start();
      },
    });
    assert.equal(out.transient, undefined);
    assert.equal(out.inserted, 20);
    assert.equal(out.duplicates, 20);
    assert.ok(out.retries >= 1);
    const { rows: n } = await pool.query<{ n: string }>('SELECT count(*) AS n FROM public.events');
    assert.equal(Number(n[0]?.n), 40);
  } finally {
    await server.close();
  }
});

test('TenantRegistry inserts each unseen tenant once, keeps existing names, and bounds its cache', async () => {
  const base = 700_000 + Math.floor(Math.random() * 1000) * 100;
  await s.pool.query(`INSERT INTO "${s.schema}".tenants (tenant_id, name) VALUES ($1, 'named shop')`, [base + 1]);
  const registry = new TenantRegistry(3);
  await registry.ensure(s.pool, s.schema, [base + 3, base + 1, base + 2, base + 3, base + 4, base + 5]);
  const { rows } = await s.pool.query<{ tenant_id: string; name: string | null }>(
    `SELECT tenant_id::text, name FROM "${s.schema}".tenants WHERE tenant_id BETWEEN $1 AND $2 ORDER BY 1`,
    [base + 1, base + 5],
  );
  assert.deepEqual(rows.map((r) => [Number(r.tenant_id) - base, r.name]), [[1, 'named shop'], [2, null], [3, null], [4, null], [5, null]]);
  // Only the three most recently registered ids are remembered; the others would be sent again.
  assert.equal(registry.size, 3);
  assert.deepEqual(registry.unseen(s.schema, [base + 1, base + 2, base + 3, base + 4, base + 5]), [base + 1, base + 2]);
  // The cache is per schema.
  assert.deepEqual(registry.unseen('other_schema', [base + 5]), [base + 5]);
});
