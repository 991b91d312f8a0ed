/**
 * Per-connection settings. With Citus's defaults every multi-shard batch opens fresh connections
 * to the workers; caching them per session made the batched upsert 6.5x faster (docs/design.md, "Citus facts").
 */
import type pg from 'pg';
import type { Capabilities } from './capabilities.js';
import { ident } from './ident.js';
import type { Statement } from './statement.js';

/** Pure: the statement for a validated integer (SET cannot take bind parameters). */
export function citusSessionSql(cachedConnsPerWorker: number): Statement {
  if (!Number.isSafeInteger(cachedConnsPerWorker) || cachedConnsPerWorker < 0) {
    throw new RangeError(`citus.max_cached_conns_per_worker must be a non-negative integer, got ${String(cachedConnsPerWorker)}`);
  }
  return { text: `SET citus.max_cached_conns_per_worker = ${cachedConnsPerWorker}`, values: [] };
}

export interface SessionOptions {
  citusCachedConnsPerWorker: number;
}

/**
 * Pure: the search_path of every hubsink session: pg_catalog first, so no schema's function can
 * replace a built-in of the same signature, then the hubsink schema. `public` is left out: any
 * role with CREATE there could plant a function that matches a call more exactly than the
 * built-in (say `unnest(bigint[])` against the built-in `unnest(anyarray)`) and run it as hubsink.
 * Extensions the code calls (hll) are schema-qualified where they are used.
 */
export function searchPathSql(schema: string): Statement {
  return { text: `SELECT pg_catalog.set_config('search_path', $1, false)`, values: [`pg_catalog, ${ident(schema)}`] };
}

/** Pure: a statement_timeout for every statement of a session. */
export function statementTimeoutSql(ms: number): Statement {
  if (!Number.isSafeInteger(ms) || ms < 1) throw new RangeError(`statement_timeout must be a positive integer of milliseconds, got ${String(ms)}`);
  return { text: `SELECT pg_catalog.set_config('statement_timeout', $1, false)`, values: [`${ms}ms`] };
}

/** pg-pool's hook, run on each new connection before the pool hands it out (not in @types/pg yet). */
type ConnectHook = (client: pg.PoolClient) => Promise<void>;

/**
 * Runs `statement` on every new connection of the pool before anyone gets the connection. The pool's
 * onConnect hook is used rather than the 'connect' event: the event cannot delay the caller's
 * first query (pg deprecates queueing on a busy client), and a hook's failure reaches the caller
 * as the connection's error instead of leaving an unconfigured connection in the pool.
 */
export function onNewConnection(pool: pg.Pool, statement: Statement): void {
  const options = pool.options as pg.PoolOptions & { onConnect?: ConnectHook };
  const previous = options.onConnect;
  options.onConnect = async (client) => {
    if (previous) await previous(client);
    await client.query(statement);
  };
}

/** Pins the search_path of every new connection of the pool (searchPathSql). */
export function pinSearchPath(pool: pg.Pool, schema: string): void {
  onNewConnection(pool, searchPathSql(schema));
}

/** Applies the session settings the server's capabilities call for. Call once per pool. */
export function configureSession(pool: pg.Pool, caps: Capabilities, opts: SessionOptions): void {
  if (!caps.citus) return;
  onNewConnection(pool, citusSessionSql(opts.citusCachedConnsPerWorker));
}
