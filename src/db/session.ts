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
  /** Told when a new connection could not be configured; it still works, only slower. */
  onError?: (err: unknown) => void;
}

/**
 * Makes every new connection of the pool run the session settings. pg queues a client's queries in
 * order, so the SET issued in the 'connect' event runs before the first query of whoever got the
 * client.
 */
export function configureSession(pool: pg.Pool, caps: Capabilities, opts: SessionOptions): void {
  if (!caps.citus) return;
  const sql = citusSessionSql(opts.citusCachedConnsPerWorker);
  const onError = opts.onError ?? (() => undefined);
  pool.on('connect', (client: pg.PoolClient) => {
    client.query(sql).catch(onError);
  });
}
