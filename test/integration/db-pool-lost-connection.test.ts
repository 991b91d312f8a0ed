/**
 * A connection lost while its client is checked out between two queries (PostgreSQL stopped under
 * `hubsink local`, a failover) must not kill the process: pg-pool removes its idle 'error' listener
 * on checkout, and pg emits 'error' on a client with no listener as an uncaught exception.
 */
import { test } from 'vitest';
import assert from 'node:assert/strict';
import pg from 'pg';
import { loadConfig } from '../../src/config.js';
import { createPool } from '../../src/db/pool.js';
import { testDatabaseUrl } from '../support/services.js';

test('a checked-out client whose backend is terminated: no uncaught error, and the pool serves the next query', async () => {
  const pool = await createPool(loadConfig({ DATABASE_URL: testDatabaseUrl() }));
  const uncaught: unknown[] = [];
  let crashed: () => void = () => undefined;
  const onUncaught = (err: unknown): void => {
    uncaught.push(err);
    crashed();
  };
  process.prependListener('uncaughtException', onUncaught);
  const admin = new pg.Client({ connectionString: testDatabaseUrl() });
  await admin.connect();
  try {
    const client = await pool.connect();
    const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    // Without a listener the 'error' is thrown from the socket's handler and 'end' never comes.
    const ended = new Promise<void>((resolve) => {
      client.once('end', () => resolve());
      crashed = resolve;
    });
    // ::int: Citus adds a bigint overload, so an untyped parameter would be ambiguous.
    await admin.query('SELECT pg_terminate_backend($1::int)', [rows[0]?.pid]);
    await ended;
    // Let the socket's last events run before looking.
    await new Promise((r) => setTimeout(r, 200));
    client.release(true);
    assert.deepEqual(uncaught.map(String), []);
    const after = await pool.query<{ one: number }>('SELECT 1 AS one');
    assert.equal(after.rows[0]?.one, 1);
  } finally {
    process.removeListener('uncaughtException', onUncaught);
    await admin.end();
    await pool.end();
  }
});
