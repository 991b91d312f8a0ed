/**
 * Cheap reads for gauges and readiness probes, run when a metrics reader collects (every scrape, or
 * once a minute in the Function App). Each is an index lookup, never a count over events: the
 * parked count uses dead_letters' (status, id) index, freshness one row of the ingest_seq index per
 * rollup.
 */
import type pg from 'pg';
import { ROLLUPS } from '../rollups/definitions.js';
import { oldestPendingSql, stateSql } from '../rollups/sql.js';
import { ident } from './ident.js';

type Queryable = pg.Pool | pg.PoolClient;

export function parkedCountSql(schema: string): string {
  return `SELECT reason, count(*)::bigint::text AS n FROM ${ident(schema)}.dead_letters WHERE status = 'parked' GROUP BY reason ORDER BY reason`;
}

/** Parked dead letters per reason; both reasons are always present (0 when none). */
export async function parkedByReason(db: Queryable, schema: string): Promise<{ reason: string; count: number }[]> {
  const { rows } = await db.query<{ reason: string; n: string }>(parkedCountSql(schema));
  const counts = new Map<string, number>([
    ['invalid', 0],
    ['rejected', 0],
  ]);
  for (const r of rows) counts.set(r.reason, Number(r.n));
  return [...counts].map(([reason, count]) => ({ reason, count }));
}

/**
 * Per rollup, the age of the oldest event it has not folded in: `now − ingested_at` of the first
 * event after its watermark, 0 when it has caught up. The same figure as `hubsink rollup --status`'s
 * lag column, without its pending count.
 */
export async function rollupFreshness(db: Queryable, schema: string, now: Date): Promise<{ rollup: string; seconds: number }[]> {
  const names = ROLLUPS.map((r) => r.name);
  const state = await db.query<{ name: string; last_seq: string }>(stateSql(schema), [names]);
  const lastSeq = new Map(state.rows.map((r) => [r.name, r.last_seq]));
  const out: { rollup: string; seconds: number }[] = [];
  for (const name of names) {
    const { rows } = await db.query<{ ingested_at: Date }>(oldestPendingSql(schema), [lastSeq.get(name) ?? '0']);
    const oldest = rows[0]?.ingested_at;
    out.push({ rollup: name, seconds: oldest ? Math.max(0, (now.getTime() - oldest.getTime()) / 1000) : 0 });
  }
  return out;
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
