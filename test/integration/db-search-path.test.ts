/**
 * search_path is pinned (issue: a role with CREATE on `public` could plant a function that matches a
 * call more exactly than the built-in, and hubsink would run it). Functions planted in `public`
 * here shadow built-ins that hubsink calls: `unnest(bigint[])` beats the built-in `unnest(anyarray)`
 * of ingest's tenant registration, `format(text, name)` the `format(text, VARIADIC "any")` of migration 003,
 * `hashtextextended(text, integer)` the `(text, bigint)` one of the KMV sketch. Each plant returns
 * what the built-in would (so a concurrent test that does call it still gets the right answer)
 * and raises a NOTICE, which the connections of hubsink's own pools must never receive.
 */
import { afterAll, beforeAll, test } from 'vitest';
import assert from 'node:assert/strict';
import pg from 'pg';
import { loadConfig } from '../../src/config.js';
import { createPool, createServingPool } from '../../src/db/pool.js';
import { migrate } from '../../src/db/migrate.js';
import { maintainPartitions } from '../../src/db/partitions.js';
import { detectCapabilities } from '../../src/db/capabilities.js';
import { insertEventRows } from '../../src/db/events.js';
import { TenantRegistry } from '../../src/db/tenants.js';
import { runRollups } from '../../src/rollups/run.js';
import { sketchProfile } from '../../src/rollups/sketches.js';
import { createTestSchema, testDatabaseUrl, type TestSchema } from '../support/services.js';
import { makeRow } from '../support/rows.js';

const PLANTS = [
  {
    signature: 'public.unnest(bigint[])',
    create: `CREATE OR REPLACE FUNCTION public.unnest(a bigint[]) RETURNS SETOF bigint LANGUAGE plpgsql AS $$
      BEGIN RAISE NOTICE 'hubsink-planted unnest'; RETURN QUERY SELECT pg_catalog.unnest(a); END $$`,
  },
  {
    signature: 'public.format(text, name)',
    create: `CREATE OR REPLACE FUNCTION public.format(f text, a name) RETURNS text LANGUAGE plpgsql AS $$
      BEGIN RAISE NOTICE 'hubsink-planted format'; RETURN pg_catalog.format(f, a); END $$`,
  },
  {
    signature: 'public.hashtextextended(text, integer)',
    create: `CREATE OR REPLACE FUNCTION public.hashtextextended(t text, s integer) RETURNS bigint LANGUAGE plpgsql AS $$
      BEGIN RAISE NOTICE 'hubsink-planted hashtextextended'; RETURN pg_catalog.hashtextextended(t, s::bigint); END $$`,
  },
];

let s: TestSchema;
let admin: pg.Client;

beforeAll(async () => {
  s = await createTestSchema('sp_');
  admin = new pg.Client({ connectionString: testDatabaseUrl() });
  await admin.connect();
  for (const p of PLANTS) await admin.query(p.create);
});

afterAll(async () => {
  for (const p of PLANTS) await admin.query(`DROP FUNCTION IF EXISTS ${p.signature}`);
  await admin.end();
  await s.drop();
});

/** Every NOTICE any connection of the pool receives. */
function recordNotices(pool: pg.Pool): string[] {
  const notices: string[] = [];
  pool.on('connect', (client) => client.on('notice', (n) => notices.push(n.message ?? '')));
  return notices;
}

test('the plants work: a session whose search_path includes public calls them', async () => {
  const c = new pg.Client({ connectionString: testDatabaseUrl(), options: `-c search_path=${s.schema},public` });
  const notices: string[] = [];
  c.on('notice', (n) => notices.push(n.message ?? ''));
  await c.connect();
  try {
    await c.query(`SELECT * FROM unnest($1::bigint[])`, [[1, 2]]);
    await c.query(`SELECT format('%I.x', nspname) FROM pg_namespace LIMIT 1`);
    await c.query(`SELECT hashtextextended('a', 0)`);
  } finally {
    await c.end();
  }
  assert.deepEqual(notices, ['hubsink-planted unnest', 'hubsink-planted format', 'hubsink-planted hashtextextended']);
});

test('migrations, inserts and rollups through hubsink pools never call a function planted in public', async () => {
  const cfg = loadConfig({ DATABASE_URL: testDatabaseUrl(), HUBSINK_SCHEMA: s.schema });
  const pool = await createPool(cfg);
  const notices = recordNotices(pool);
  try {
    await migrate(pool, s.schema);
    const caps = await detectCapabilities(pool);
    await maintainPartitions(pool, s.schema, { now: new Date(), aheadDays: 1, retentionDays: 3, caps });
    await new TenantRegistry().ensure(pool, s.schema, [7]);
    const n = await insertEventRows(pool, s.schema, [
      makeRow({ eventId: '0190f5c2-8a4e-7cc1-9a53-2b1c8f0e4d11', tenantId: 7, occurredAt: new Date(Date.now() - 60_000), sessionId: 'a', userId: 'b' }),
    ]);
    assert.equal(n.inserted, 1);
    const results = await runRollups(pool, s.schema, { caps, maxWindowRows: 1000 });
    assert.ok(results.every((r) => r.rows === 1), JSON.stringify(results));
    // The KMV sketch's builder, whatever sketch the tables were created with (hll when installed).
    const { rows } = await pool.query<{ k: string[] }>(`SELECT ${sketchProfile('kmv').build('v')} AS k FROM (VALUES ('a'), ('b')) AS t(v)`);
    assert.equal(rows[0]?.k.length, 2);
    assert.deepEqual(notices.filter((m) => m.startsWith('hubsink-planted')), []);
    const { rows: sp } = await pool.query<{ search_path: string }>('SHOW search_path');
    assert.equal(sp[0]?.search_path, `pg_catalog, "${s.schema}"`);
  } finally {
    await pool.end();
  }
});

test('the metrics pool: its own size, a statement_timeout on every connection, the same pinned search_path', async () => {
  const cfg = loadConfig({
    DATABASE_URL: testDatabaseUrl(),
    HUBSINK_SCHEMA: s.schema,
    HUBSINK_METRICS_POOL_MAX: '3',
    HUBSINK_METRICS_STATEMENT_TIMEOUT_MS: '250',
  });
  const pool = await createServingPool(cfg);
  try {
    assert.equal(pool.options.max, 3);
    const clients = await Promise.all([pool.connect(), pool.connect()]);
    try {
      for (const c of clients) {
        const { rows } = await c.query<{ t: string; sp: string }>(`SELECT current_setting('statement_timeout') AS t, current_setting('search_path') AS sp`);
        assert.deepEqual(rows[0], { t: '250ms', sp: `pg_catalog, "${s.schema}"` });
      }
      await assert.rejects(clients[0].query('SELECT pg_sleep(2)'), (err: { code?: string }) => err.code === '57014');
    } finally {
      for (const c of clients) c.release();
    }
  } finally {
    await pool.end();
  }
});
