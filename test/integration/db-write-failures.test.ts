/**
 * The write path under failures users meet: a day whose partition is missing, a database that
 * blips twice within one batch, a database that cannot be reached at all, a statement that times
 * out while the database serves others. Real PostgreSQL (or TEST_DATABASE_URL); faults are real:
 * a dropped partition, a TCP proxy that cuts the connection, a lock held by another session.
 */
import { afterAll, beforeAll, describe, test } from 'vitest';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { createTestSchema, testDatabaseUrl, type TestSchema } from '../support/services.js';
import { countingPool } from '../support/countingPool.js';
import { startTcpProxy } from '../support/tcpProxy.js';
import { makeRow, makeRows } from '../support/rows.js';
import { hostBatch, invocationContext, type HostEvent } from '../support/functions-batch.js';
import { RecordingDeadLetterSink } from '../support/sinks.js';
import { migrate } from '../../src/db/migrate.js';
import { listPartitions, maintainPartitions, partitionName, partitionWindow } from '../../src/db/partitions.js';
import { detectCapabilities } from '../../src/db/capabilities.js';
import { writeEvents } from '../../src/db/events.js';
import { makeIngestHandler } from '../../src/ingest/ingestHandler.js';
import { loadConfig } from '../../src/config.js';

const DAY_MS = 86_400_000;

function schemaPool(schema: string, extra: pg.PoolConfig = {}) {
  return countingPool({ connectionString: testDatabaseUrl(), max: 4, options: `-c search_path=${schema},public`, ...extra });
}

async function eventCount(pool: pg.Pool, schema: string): Promise<number> {
  const { rows } = await pool.query<{ n: string }>(`SELECT count(*) AS n FROM "${schema}".events`);
  return Number(rows[0]?.n);
}

/** A clock that only moves when the code under test sleeps; `onSleep` sees the time slept so far in this call. */
function fakeClock(onSleep: (sleptMs: number) => Promise<void> | void = () => undefined) {
  let t = 1_000_000;
  const sleeps: number[] = [];
  return {
    sleeps,
    now: () => t,
    sleep: async (ms: number) => {
      sleeps.push(ms);
      t += ms;
      await onSleep(sleeps.reduce((a, b) => a + b, 0));
    },
  };
}

function event(tenantId: number, occurredAt: Date): HostEvent {
  return {
    body: { eventId: randomUUID(), tenantId, type: 'page_view', occurredAt: occurredAt.toISOString() },
    properties: { TenantId: String(tenantId) },
    partitionKey: String(tenantId),
  };
}

describe('a row of the accepted window that finds no partition', () => {
  let s: TestSchema;
  beforeAll(async () => {
    s = await createTestSchema('dbwf_');
    await migrate(s.pool, s.schema);
  });
  afterAll(() => s.drop());

  test("a 1,000-event batch for a day whose partition was dropped is written whole in a handful of statements, nothing dead-lettered", async () => {
    const now = new Date();
    await maintainPartitions(s.pool, s.schema, { now, aheadDays: 3, retentionDays: 30, caps: await detectCapabilities(s.pool) });
    const yesterday = new Date(Math.floor(now.getTime() / DAY_MS) * DAY_MS - DAY_MS / 2);
    const missing = partitionName(yesterday);
    await s.pool.query(`DROP TABLE "${s.schema}"."${missing}"`);
    assert.ok(!(await listPartitions(s.pool, s.schema)).some((p) => p.name === missing));

    const counted = schemaPool(s.schema);
    try {
      const sink = new RecordingDeadLetterSink();
      const config = loadConfig({ HUBSINK_SCHEMA: s.schema });
      const handler = makeIngestHandler(() => Promise.resolve({ hub: 'clickstream', consumerGroup: '$Default', ingest: { pool: counted.pool, config, sink } }));
      const events = Array.from({ length: 1000 }, (_, i) => event((i % 50) + 1, new Date(yesterday.getTime() + i * 1000)));
      const batch = hostBatch(events, { hub: 'clickstream', partitionId: '1', firstSequence: 0 });
      counted.reset();
      const result = await handler(batch.messages, invocationContext('ingest', batch.triggerMetadata, []));
      assert.equal(result.inserted, 1000);
      assert.deepEqual(result.deadLettered, { invalid: 0, rejected: 0, transient: 0 });
      assert.equal(sink.records.length, 0);
      // The failed write (COPY or INSERT), the partition's DDL in its own short transaction, the write again; the
      // bisection this replaces sent about 2,000 statements and parked all 1,000 events.
      const inserts = counted.statements.filter((t) => /^(INSERT INTO|COPY) .*\.events /.test(t));
      assert.equal(inserts.length, 2, counted.statements.join('\n'));
      assert.ok(counted.statements.length <= 12, `${counted.statements.length} statements:\n${counted.statements.join('\n')}`);
      assert.ok((await listPartitions(s.pool, s.schema)).some((p) => p.name === missing));
      assert.equal(await eventCount(s.pool, s.schema), 1000);
    } finally {
      await counted.pool.end();
    }
  });

  test('with no partitions at all (migrate only), a batch over three days creates exactly those days', async () => {
    const fresh = await createTestSchema('dbwf_fresh_');
    try {
      await migrate(fresh.pool, fresh.schema);
      for (const p of await listPartitions(fresh.pool, fresh.schema)) await fresh.pool.query(`DROP TABLE "${fresh.schema}"."${p.name}"`);
      const now = new Date();
      const rows = makeRows(300, 7).map((r, i) => ({ ...r, occurredAt: new Date(now.getTime() - (i % 3) * DAY_MS) }));
      const window = partitionWindow(now, 3, 30);
      const out = await writeEvents(fresh.pool, fresh.schema, rows, { chunkSize: 1000, transientRetryMs: 1000, partitionWindow: window });
      assert.deepEqual([out.inserted, out.rejected.length], [300, 0]);
      const expected = [2, 1, 0].map((d) => partitionName(new Date(now.getTime() - d * DAY_MS)));
      assert.deepEqual(out.createdPartitions, expected);
      assert.deepEqual((await listPartitions(fresh.pool, fresh.schema)).map((p) => p.name), expected);
    } finally {
      await fresh.drop();
    }
  });

  test('a row outside the window is still isolated and rejected, and gets no partition; its neighbours are written', async () => {
    const now = new Date();
    const good = makeRows(40, 4).map((r) => ({ ...r, occurredAt: new Date(now.getTime() - 2 * DAY_MS) }));
    const ancient = makeRow({ occurredAt: new Date('2001-01-01T00:00:00Z') });
    const before = (await listPartitions(s.pool, s.schema)).length;
    const out = await writeEvents(s.pool, s.schema, [...good.slice(0, 20), ancient, ...good.slice(20)], {
      chunkSize: 1000,
      transientRetryMs: 1000,
      partitionWindow: partitionWindow(now, 3, 30),
    });
    assert.equal(out.inserted, 40);
    assert.deepEqual(out.rejected.map((r) => r.row.eventId), [ancient.eventId]);
    assert.match(out.rejected[0]?.error ?? '', /^23514 no partition of relation/);
    assert.deepEqual(out.createdPartitions, []);
    assert.equal((await listPartitions(s.pool, s.schema)).length, before);
  });
});

describe('retries and outages', () => {
  let s: TestSchema;
  beforeAll(async () => {
    s = await createTestSchema('dbwf_r_');
    await migrate(s.pool, s.schema);
    await maintainPartitions(s.pool, s.schema, { now: new Date(), aheadDays: 3, retentionDays: 30, caps: await detectCapabilities(s.pool) });
  });
  afterAll(() => s.drop());

  test('the retry budget is per statement: a second blip late in the batch gets its own retries', async () => {
    const target = new URL(testDatabaseUrl());
    const proxy = await startTcpProxy(target.hostname, Number(target.port || 5432));
    const c = countingPool({ connectionString: proxy.url(testDatabaseUrl()), max: 1, connectionTimeoutMillis: 2000, options: `-c search_path=${s.schema},public` });
    let writes = 0;
    let sleptAtCut = 0;
    try {
      // Each successful insert of a chunk cuts the network; each outage lasts 1.5 s of the 2 s budget.
      c.pool.on('release', (err: Error | undefined) => {
        if (!err && c.statements.at(-1)?.startsWith('INSERT') && ++writes < 3) void proxy.cut();
      });
      const clock = fakeClock(async (slept) => {
        if (slept - sleptAtCut >= 1500) {
          sleptAtCut = slept;
          await proxy.restore();
        }
      });
      const rows = makeRows(30, 3);
      const out = await writeEvents(c.pool, s.schema, rows, { chunkSize: 10, transientRetryMs: 2000, sleep: clock.sleep, now: clock.now, random: () => 0.5 });
      assert.equal(out.transient, undefined);
      assert.equal(out.inserted, 30);
      assert.equal(writes, 3);
      assert.ok(out.retries >= 8, `retries ${out.retries}`);
      const { rows: n } = await s.pool.query<{ n: string }>(`SELECT count(*) AS n FROM "${s.schema}".events WHERE event_id = ANY($1::uuid[])`, [rows.map((r) => r.eventId)]);
      assert.equal(Number(n[0]?.n), 30);
    } finally {
      await c.pool.end();
      await proxy.stop();
    }
  });

  test('a database that cannot be reached for the whole budget is thrown as unavailable, never handed back as transient rows', async () => {
    const target = new URL(testDatabaseUrl());
    const proxy = await startTcpProxy(target.hostname, Number(target.port || 5432));
    const c = countingPool({ connectionString: proxy.url(testDatabaseUrl()), max: 2, connectionTimeoutMillis: 2000, options: `-c search_path=${s.schema},public` });
    try {
      assert.equal((await writeEvents(c.pool, s.schema, makeRows(5, 1), { chunkSize: 10, transientRetryMs: 1000 })).inserted, 5);
      await proxy.cut();
      const clock = fakeClock();
      const rows = makeRows(30, 3);
      await assert.rejects(writeEvents(c.pool, s.schema, rows, { chunkSize: 10, transientRetryMs: 2000, sleep: clock.sleep, now: clock.now, random: () => 0.5 }), (err: unknown) => {
        assert.ok(err instanceof Error && err.name === 'DatabaseUnavailableError', String(err));
        assert.match(err.message, /30 row\(s\) not written: .*(ECONNREFUSED|terminated|ECONNRESET)/);
        return true;
      });
      // 100, 200, 400, 800 ms (jitter at mid-range gives 3/4 of each), then the budget's remainder.
      assert.deepEqual(clock.sleeps, [75, 150, 300, 600, 875]);
    } finally {
      await c.pool.end();
      await proxy.stop();
    }
  });

  test('a statement that times out while the database serves others is still handed back as transient rows', async () => {
    const c = schemaPool(s.schema, { options: `-c search_path=${s.schema},public -c statement_timeout=150` });
    const holder = new pg.Client({ connectionString: testDatabaseUrl() });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query(`LOCK TABLE "${s.schema}".events IN ACCESS EXCLUSIVE MODE`);
      const clock = fakeClock();
      const rows = makeRows(12, 2);
      const out = await writeEvents(c.pool, s.schema, rows, { chunkSize: 5, transientRetryMs: 500, sleep: clock.sleep, now: clock.now, random: () => 0.5 });
      assert.ok(out.transient);
      assert.match(out.transient.error, /^57014 /);
      assert.deepEqual(out.transient.rows.map((r) => r.eventId), rows.map((r) => r.eventId));
    } finally {
      await holder.query('ROLLBACK');
      await holder.end();
      await c.pool.end();
    }
  });
});
