/**
 * Rollup freshness for the gauge: one row of the ingest_seq index per rollup, never a count over
 * events, so it is cheap enough to read at every metrics collection.
 */
import type { Queryable } from '../db/queryable.js';
import { ROLLUPS } from './definitions.js';
import { oldestPendingSql, stateSql } from './sql.js';

/**
 * Per rollup, the age of the oldest event it has not folded in: `now − ingested_at` of the first
 * event after its watermark, 0 when it has caught up. The same figure as `hubsink rollup --status`'s
 * lag column, without its pending count.
 */
export async function rollupFreshness(db: Queryable, schema: string, now: Date): Promise<{ rollup: string; seconds: number }[]> {
  const names = ROLLUPS.map((r) => r.name);
  const state = await db.query<{ name: string; last_seq: string }>(stateSql(schema, names));
  const lastSeq = new Map(state.rows.map((r) => [r.name, r.last_seq]));
  const out: { rollup: string; seconds: number }[] = [];
  for (const name of names) {
    const { rows } = await db.query<{ ingested_at: Date }>(oldestPendingSql(schema, lastSeq.get(name) ?? '0'));
    const oldest = rows[0]?.ingested_at;
    out.push({ rollup: name, seconds: oldest ? Math.max(0, (now.getTime() - oldest.getTime()) / 1000) : 0 });
  }
  return out;
}

