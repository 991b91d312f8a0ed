/**
 * Per-connection settings. With Citus's defaults every multi-shard batch opens fresh connections
 * to the workers; caching them per session made the batched upsert 6.5x faster (notes/citus.md).
 */
import type pg from 'pg';
import type { Capabilities } from './capabilities.js';

/** Pure: the statement for a validated integer (SET cannot take bind parameters). */
export function citusSessionSql(cachedConnsPerWorker: number): string {
  if (!Number.isSafeInteger(cachedConnsPerWorker) || cachedConnsPerWorker < 0) {
    throw new RangeError(`citus.max_cached_conns_per_worker must be a non-negative integer, got ${String(cachedConnsPerWorker)}`);
  }
  return `SET citus.max_cached_conns_per_worker = ${cachedConnsPerWorker}`;
}

export interface SessionOptions {
  citusCachedConnsPerWorker: number;
}

/** pg-pool's hook, run on each new connection before the pool hands it out (not in @types/pg yet). */
type ConnectHook = (client: pg.PoolClient) => Promise<void>;

/**
 * Runs `sql` on every new connection of the pool before anyone gets the connection. The pool's
 * onConnect hook is used rather than the 'connect' event: the event cannot delay the caller's
 * first query (pg deprecates queueing on a busy client), and a hook's failure reaches the caller
 * as the connection's error instead of leaving an unconfigured connection in the pool.
 */
export function onNewConnection(pool: pg.Pool, sql: string): void {
  const options = pool.options as pg.PoolOptions & { onConnect?: ConnectHook };
  const previous = options.onConnect;
  options.onConnect = async (client) => {
    if (previous) await previous(client);
    await client.query(sql);
  };
}

/** Applies the session settings the server's capabilities call for. Call once per pool. */
export function configureSession(pool: pg.Pool, caps: Capabilities, opts: SessionOptions): void {
  if (!caps.citus) return;
  onNewConnection(pool, citusSessionSql(opts.citusCachedConnsPerWorker));
}
