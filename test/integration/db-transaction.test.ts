import { afterAll, beforeAll, test } from 'vitest';
import assert from 'node:assert/strict';
import pg from 'pg';
import { inTransaction } from '../../src/db/queryable.js';
import { createTestSchema, testDatabaseUrl, type TestSchema } from '../support/services.js';

let s: TestSchema;
let pool: pg.Pool;

beforeAll(async () => {
  s = await createTestSchema('dbtx_');
  await s.pool.query(`CREATE TABLE "${s.schema}".tx (n int)`);
  // One connection, so every assertion about the client is about the one inTransaction had.
  pool = new pg.Pool({ connectionString: testDatabaseUrl(), max: 1 });
  pool.on('error', () => undefined);
});

afterAll(async () => {
  await pool.end();
  await s.drop();
});

async function rows(): Promise<number[]> {
  const { rows: r } = await s.pool.query<{ n: number }>(`SELECT n FROM "${s.schema}".tx ORDER BY n`);
  return r.map((x) => x.n);
}

test('inTransaction commits what its function did, returns its value and gives the client back', async () => {
  await s.pool.query(`TRUNCATE "${s.schema}".tx`);
  const out = await inTransaction(pool, async (client) => {
    await client.query(`INSERT INTO "${s.schema}".tx VALUES (1)`);
    // Uncommitted: another connection does not see it yet.
    const seen = await rows();
    return seen;
  });
  assert.deepEqual(out, []);
  assert.deepEqual(await rows(), [1]);
  assert.equal(pool.totalCount, 1);
  assert.equal(pool.idleCount, 1, 'the client went back to the pool');
});

test('inTransaction rolls back on a failure and throws that failure itself; the client is reused', async () => {
  await s.pool.query(`TRUNCATE "${s.schema}".tx`);
  const { rows: before } = await pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  const boom = new Error('boom');
  await assert.rejects(
    inTransaction(pool, async (client) => {
      await client.query(`INSERT INTO "${s.schema}".tx VALUES (2)`);
      throw boom;
    }),
    (err) => err === boom,
  );
  assert.deepEqual(await rows(), [], 'the insert was rolled back');
  const { rows: open } = await s.pool.query<{ n: string }>("SELECT count(*)::text AS n FROM pg_stat_activity WHERE pid = $1 AND state LIKE 'idle in transaction%'", [before[0]?.pid]);
  assert.equal(open[0]?.n, '0', 'no transaction left open on the connection');
  const { rows: after } = await pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  assert.equal(after[0]?.pid, before[0]?.pid, 'the same connection was reused');
});

test('inTransaction destroys a client whose ROLLBACK failed, and still throws the original failure', async () => {
  const { rows: before } = await pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  const pid = before[0]?.pid;
  assert.ok(pid);
  const admin = new pg.Client({ connectionString: testDatabaseUrl() });
  await admin.connect();
  let original: unknown;
  try {
    await assert.rejects(
      inTransaction(pool, async (client) => {
        // The test's own listener: a terminated connection reports on the client as well as on the query.
        client.on('error', () => undefined);
        // Its failure is caught at once: the termination can reject it while the admin query is
        // still awaited, and a rejection without a handler by then is an unhandled one.
        const sleeping = client.query('SELECT pg_sleep(30)').then(
          () => {
            throw new Error('the sleep was not interrupted');
          },
          (err: unknown) => {
            original = err;
            throw err;
          },
        );
        sleeping.catch(() => undefined);
        await waitForQuery(admin, pid);
        // The cast: Citus adds pg_terminate_backend(bigint) beside the int one, so an untyped $1 is ambiguous.
        await admin.query('SELECT pg_terminate_backend($1::int)', [pid]);
        await sleeping;
      }),
      (err) => err === original && err !== undefined,
    );
  } finally {
    await admin.end();
  }
  assert.equal(pool.totalCount, 0, 'the broken client was destroyed, not put back');
  const { rows: after } = await pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  assert.notEqual(after[0]?.pid, pid, 'the next query got a new connection');
});

async function waitForQuery(admin: pg.Client, pid: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const { rows: r } = await admin.query<{ n: string }>("SELECT count(*)::text AS n FROM pg_stat_activity WHERE pid = $1 AND query LIKE 'SELECT pg_sleep%' AND state = 'active'", [pid]);
    if (r[0]?.n === '1') return;
    if (Date.now() > deadline) throw new Error(`backend ${pid} never ran the sleep`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
