/**
 * What runs statements (a pool, or one client inside a transaction), and the one way hubsink runs
 * a transaction.
 */
import type pg from 'pg';

export type Queryable = pg.Pool | pg.PoolClient;

/**
 * Runs `fn` in a transaction on a client of its own. The client is always released; after a failure
 * it is rolled back, and the failure is what the caller sees even when ROLLBACK fails too. A client
 * whose ROLLBACK failed is in an unknown state (the connection may be half-broken or still in the
 * transaction): it is destroyed rather than returned to the pool.
 */
export async function inTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    const out = await fn(client);
    await client.query('COMMIT');
    return out;
  } catch (err) {
    try {
      await client.query('ROLLBACK');
    } catch (rollbackErr) {
      broken = rollbackErr instanceof Error ? rollbackErr : new Error(String(rollbackErr));
    }
    throw err;
  } finally {
    client.release(broken);
  }
}
