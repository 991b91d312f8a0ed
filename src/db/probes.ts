/**
 * Cheap reads for gauges and readiness probes, run when a metrics reader collects (every scrape, or
 * once a minute in the Function App): the parked count uses dead_letters' (status, id) index. Rollup
 * freshness is in rollups/freshness.ts.
 */
import type pg from 'pg';
import { PARK_REASONS } from '../pipeline/types.js';
import { ident } from './ident.js';
import type { Queryable } from './queryable.js';
import type { Statement } from './statement.js';

export function parkedCountSql(schema: string): Statement {
  return {
    text: `SELECT reason, count(*)::bigint::text AS n FROM ${ident(schema)}.dead_letters WHERE status = 'parked' GROUP BY reason ORDER BY reason`,
    values: [],
  };
}

/** Parked dead letters per reason; every parked reason is present (0 when none). */
export async function parkedByReason(db: Queryable, schema: string): Promise<{ reason: string; count: number }[]> {
  const { rows } = await db.query<{ reason: string; n: string }>(parkedCountSql(schema));
  return parkedCounts(rows);
}

/** Pure: the rows of parkedCountSql, with a zero for every parked reason that has none. */
export function parkedCounts(rows: readonly { reason: string; n: string }[]): { reason: string; count: number }[] {
  const counts = new Map<string, number>(PARK_REASONS.map((r) => [r, 0]));
  for (const r of rows) counts.set(r.reason, Number(r.n));
  return [...counts].map(([reason, count]) => ({ reason, count }));
}

/** True when the database answers within `timeoutMs` (a pool that cannot connect fails fast anyway). */
export async function databaseReachable(pool: pg.Pool, timeoutMs = 2000): Promise<{ ok: boolean; error?: string }> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      pool.query('SELECT 1'),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    return { ok: true };
  } catch (err) {
    return { ok: false, error: err instanceof Error ? err.message : String(err) };
  } finally {
    clearTimeout(timer);
  }
}

/** The pool's own counters: checked-out connections and waiting requests. */
export function poolUsage(pool: pg.Pool): { inUse: number; waiting: number } {
  return { inUse: pool.totalCount - pool.idleCount, waiting: pool.waitingCount };
}
